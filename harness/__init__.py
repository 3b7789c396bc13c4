"""CV-CUDA semantic-segmentation pipeline harness: the pipeline, its stages and its command line."""

import os
import sys

__version__ = "0.1.0"

#: Stage names, in pipeline order: the one table the pipeline, the benchmarks, the tests and the reports
#: read.  The same words name NVTX ranges, timing keys, benchmark ids and report columns.  A run has either
#: the preprocessing and post-processing stages of its --preprocess and --postprocess: see `stages`.
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
    "blur_overlay",
    "encode",
)


#: What each --preprocess runs: staged, four operators; fused, CV-CUDA's fused operator and one normalization
#: pass; folded, a resize and a cast to float NCHW ("convert"), the normalization being in the model.
PREPROCESS_STAGES = {"staged": ("resize", "convert", "normalize", "reformat"), "fused": ("preprocess",),
                     "folded": ("resize", "convert")}


#: What each --postprocess runs: staged, five operators; fused, the class mask straight from the logits
#: (the argmax needs no softmax) and one stage for upscale, blur and overlay (Engine.blur_overlay).
POSTPROCESS_STAGES = {"staged": ("softmax", "mask", "upscale", "blur", "overlay"),
                      "fused": ("mask", "blur_overlay")}


#: The overlapped executor's lanes (harness.runner), in order: the words of --trace files and the report's
#: lane timelines, kept here so that the report names them without importing torch.
LANES = ("read", "decode", "compute", "encode", "write")


def stages(preprocess: str = "staged", postprocess: str = "staged") -> tuple[str, ...]:
    """The stages a run with this --preprocess and --postprocess goes through, in order."""
    other = set()
    for table, chosen in ((PREPROCESS_STAGES, preprocess), (POSTPROCESS_STAGES, postprocess)):
        other |= {s for names in table.values() for s in names} - set(table[chosen])
    return tuple(s for s in STAGES if s not in other)


class HarnessError(Exception):
    """A problem the user can fix: printed as one line, without a traceback."""


def threads_setting(variable: str, maximum: int) -> int | None:
    """A number of threads the environment sets (HARNESS_READ_WORKERS, HARNESS_CODEC_THREADS), to measure
    what they are worth: None where unset, else 1 to `maximum`, or one line naming the fix."""
    chosen = os.environ.get(variable)
    if not chosen:
        return None
    if not (chosen.isascii() and chosen.isdigit()) or not 1 <= int(chosen) <= maximum:
        raise HarnessError(f"{variable}={chosen!r} is not a number of threads: give 1 to {maximum}, or unset it")
    return int(chosen)


def _missing_module_line(kind, error, traceback):
    """`python -m harness.<tool>`: a module missing while the tool's own imports run, before its error
    contract can, is the same one line as one missing later (`--debug` keeps the traceback)."""
    from harness.errors import fatal_message

    message = fatal_message(error) if issubclass(kind, ImportError) and "--debug" not in sys.argv else None
    if message is None:
        return sys.__excepthook__(kind, error, traceback)
    print(f"{sys.orig_argv[2]}: error: {message}", file=sys.stderr)


if sys.orig_argv[1:2] == ["-m"] and sys.orig_argv[2:3] and sys.orig_argv[2].split(".")[0] == "harness":
    sys.excepthook = _missing_module_line
