"""torch.compile for the model (harness.backends.pytorch) and the fused post-processing (harness.ops), with
TorchInductor's caches under --cache_dir/inductor: a second process with the same shapes loads the compiled
code instead of compiling again."""

from __future__ import annotations

import os

import torch

from harness.backends.onnx_export import cache_folder


def compiled(fn, cache_dir: str | None, **options):
    """torch.compile(fn, **options); inductor reads its cache folder from the environment at compile time."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_folder(cache_dir, "inductor"))
    return torch.compile(fn, **options)
