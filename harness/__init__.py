"""CV-CUDA semantic-segmentation pipeline harness: the pipeline, its stages and its command line."""

__version__ = "0.1.0"

#: Stage names, in pipeline order.  The same words name NVTX ranges, timing keys,
#: benchmark ids and report columns.
STAGES = (
    "decode",
    "resize",
    "convert",
    "normalize",
    "reformat",
    "inference",
    "softmax",
    "mask",
    "upscale",
    "blur",
    "overlay",
    "encode",
)


class HarnessError(Exception):
    """A problem the user can fix: printed as one line, without a traceback."""
