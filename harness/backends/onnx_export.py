"""ONNX export with a disk cache: the graph that ONNX Runtime and TensorRT run.

The exported graph has one input `input` (float32 N x 3 x H x W, N dynamic) and one output `logits`
(the segmentation head only; the auxiliary head is never built).  Files are cached under a key made of
everything that changes the graph: model, weights digest, input size, opset and exporter (torch version).
Each file has a sidecar `.json` with its key and SHA-256; a file whose hash or key does not match, or
that onnx.checker rejects, is rebuilt, never trusted; so is anything there that is not a regular file.  Writes
go to a temporary file and are renamed.  `onnx` is imported only to export or check a graph: importing it
takes about 1.5 s, which every start of the command line would otherwise pay.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from harness import HarnessError
from harness.cache import cache_folder
from harness.files import read_regular_file, sha256_hex, write_atomic
from harness.models import LoadedModel

OPSET = 18  # supported by ONNX Runtime >= 1.14 and TensorRT 10's ONNX parser
INPUT, OUTPUT = "input", "logits"
MAX_ONNX_BYTES = 2 << 30  # protobuf's limit: a larger cached file is not an ONNX graph
MAX_SIDECAR_BYTES = 1 << 20  # a key and a hash


class _LogitsOnly(torch.nn.Module):
    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)["out"]


def export_key(model: LoadedModel, height: int, width: int, opset: int = OPSET) -> dict:
    return {"model": model.name, "weights_sha256": model.weights_digest, "height": height, "width": width,
            "opset": opset, "exporter": f"torch {torch.__version__} torchscript"}


def cached_onnx(model: LoadedModel, height: int, width: int, cache_dir: Path | None = None,
                opset: int = OPSET) -> Path:
    """The ONNX file for this model and size: from the cache when it is intact, otherwise exported anew."""
    key = export_key(model, height, width, opset)
    digest = sha256_hex(json.dumps(key, sort_keys=True).encode())[:16]
    folder = cache_folder(cache_dir, "onnx")
    path = folder / f"{model.name}-{height}x{width}-opset{opset}-{digest}.onnx"
    meta = path.with_suffix(".json")
    if _intact(path, meta, key):
        return path
    data = export_onnx(model, height, width, opset)
    write_atomic(path, data)
    write_atomic(meta, json.dumps({"key": key, "sha256": sha256_hex(data)}, indent=1, sort_keys=True).encode())
    return path


def _intact(path: Path, meta: Path, key: dict) -> bool:
    import onnx

    try:  # a FIFO would block the reader for ever, a huge file be read whole: both are rebuilt
        recorded = json.loads(read_regular_file(meta, MAX_SIDECAR_BYTES, "a sidecar"))
        data = read_regular_file(path, MAX_ONNX_BYTES, "an ONNX file")
    except (HarnessError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("key") != key or recorded.get("sha256") != sha256_hex(data):
        return False
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception:
        return False
    return True


def export_onnx(model: LoadedModel, height: int, width: int, opset: int = OPSET) -> bytes:
    """Export on the CPU in float32 (TensorRT makes its own fp16), checked by onnx.checker."""
    import onnx

    # eval() on the wrapper itself: the exporter puts the wrapper's training flag back afterwards, and
    # train(True) on a wrapper would switch the model's batch norms to batch statistics.
    wrapper = _LogitsOnly(model.module).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch >= 2.9 prefers its torch.export-based exporter, which needs onnxscript; the TorchScript
        # exporter is still supported and handles these convolutional models completely.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(wrapper, (torch.zeros(1, 3, height, width),), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data
