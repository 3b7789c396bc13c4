"""The TensorRT backend (FCN-ResNet101 through ONNX by default).

TensorRT cannot be installed on this project's development machines, so `tensorrt` is imported lazily
and a machine without it gets a one-line error.  The ONNX export and engine build that this backend
needs are the subject of the ONNX-backends work (issue 3); until then it stops with a clear message
instead of pretending to run.
"""

from __future__ import annotations

import torch

from harness import HarnessError
from harness.backends import BACKENDS, Backend


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise HarnessError(
            "-bk tensorrt needs NVIDIA TensorRT 10, which is not installed here: "
            "pip install 'harness[trt]' on a machine where it is available, or use -bk pytorch"
        ) from None
    return tensorrt


@BACKENDS.register("tensorrt")
class TensorrtBackend(Backend):
    name = "tensorrt"
    default_model = "fcn_resnet101"

    def __init__(self, config, device: torch.device):
        super().__init__(config, device)
        trt = import_tensorrt()
        raise HarnessError(
            f"-bk tensorrt: TensorRT {trt.__version__} is installed, but this version of the harness does not "
            "build engines yet (ONNX export and engine build come with the ONNX backends): use -bk pytorch"
        )
