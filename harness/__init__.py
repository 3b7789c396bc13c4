"""CV-CUDA semantic-segmentation pipeline harness: the pipeline, its stages and its command line."""

__version__ = "0.1.0"

#: Stage names, in pipeline order: the one table the pipeline, the benchmarks, the tests and the reports
#: read.  The same words name NVTX ranges, timing keys, benchmark ids and report columns.  A run has either
#: the four staged preprocessing stages or the fused one ("preprocess"): see `stages`.
STAGES = (
    "decode",
    "resize",
    "convert",
    "normalize",
    "reformat",
    "preprocess",
    "inference",
    "softmax",
    "mask",
    "upscale",
    "blur",
    "overlay",
    "encode",
)


PREPROCESS_STAGES = {"staged": ("resize", "convert", "normalize", "reformat"), "fused": ("preprocess",)}


def stages(preprocess: str = "staged") -> tuple[str, ...]:
    """The stages a run with this --preprocess goes through, in order."""
    other = {s for mode, names in PREPROCESS_STAGES.items() if mode != preprocess for s in names}
    return tuple(s for s in STAGES if s not in other)


class HarnessError(Exception):
    """A problem the user can fix: printed as one line, without a traceback."""
