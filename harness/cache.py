"""The cache folder (ONNX files, TensorRT engines, TorchInductor's code): where it is and a writable folder
in it per kind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from harness import HarnessError


def default_cache_dir() -> Path:
    """$HARNESS_CACHE, else the user's cache folder; an empty variable counts as unset (Path("") is the
    current directory)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("HARNESS_CACHE") or Path(base) / "harness")


def cache_folder(cache_dir: str | Path | None, kind: str) -> Path:
    """The cache's folder for `kind` (onnx, tensorrt) under --cache_dir or the default, created; a HarnessError
    naming --cache_dir when it cannot be written."""
    folder = Path(cache_dir or default_cache_dir()) / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied")
    except OSError as error:
        raise HarnessError(f"cache directory {folder} is not writable ({error.strerror}): pass --cache_dir a "
                           "directory you can write to, or set HARNESS_CACHE") from None
    return folder
