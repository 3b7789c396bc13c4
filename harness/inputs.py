"""Finding, checking and batching JPEG inputs, and writing outputs atomically."""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

from PIL import Image

from harness import HarnessError

JPEG_SUFFIXES = (".jpg", ".jpeg")
MAX_PIXELS = 16384 * 16384  # nvJPEG's and CV-CUDA's practical ceiling; larger files are refused up front


class BadImage(HarnessError):
    """One input file cannot be used; a directory run reports and skips it."""


@dataclass(frozen=True)
class JpegFile:
    path: Path
    data: bytes
    height: int
    width: int


def sample_dir() -> Path:
    """The JPEGs shipped inside the package: the default input (see harness/data/SOURCES.md)."""
    return Path(str(resources.files("harness") / "data"))


def find_jpegs(path: str | os.PathLike, batch_size: int) -> list[Path]:
    """The inputs of a run: a directory's JPEGs sorted by name, or one file replicated batch_size times."""
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"input path not found: {path}: pass -i an existing JPEG file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in JPEG_SUFFIXES)
        if not files:
            raise HarnessError(f"no .jpg/.jpeg files in directory {path}: pass -i a directory that holds JPEGs")
        return files
    if path.suffix.lower() not in JPEG_SUFFIXES:
        raise HarnessError(f"{path} is not a .jpg/.jpeg file: pass -i a JPEG file or a directory of them")
    return [path] * batch_size


def check_jpeg(data: bytes, name: str) -> tuple[int, int]:
    """Cheap host-side checks that catch empty, foreign, truncated and corrupt files before the GPU sees them."""
    if not data:
        raise BadImage(f"{name} is empty: replace it with a JPEG image")
    if not data.startswith(b"\xff\xd8\xff"):
        kind = "a PNG image" if data.startswith(b"\x89PNG") else "not a JPEG image"
        raise BadImage(f"{name} is {kind} although it is named like one: convert it to JPEG or remove it")
    if b"\xff\xd9" not in data[-4096:]:
        raise BadImage(f"{name} is truncated (no JPEG end marker): copy it again or remove it")
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            width, height = image.size
    except Exception as error:  # PIL raises many types for bad headers
        raise BadImage(f"{name} is corrupt ({error}): replace it or remove it") from None
    if width * height > MAX_PIXELS or width < 1 or height < 1:
        raise BadImage(f"{name} is {width}x{height} pixels, outside what the decoders take: downscale it")
    return height, width


def read_jpeg(path: Path) -> JpegFile:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadImage(f"cannot read {path}: {error.strerror}: check its permissions") from None
    height, width = check_jpeg(data, str(path))
    return JpegFile(path, data, height, width)


def batches(items: list, batch_size: int) -> Iterator[list]:
    """Consecutive slices of batch_size; the last one may be shorter."""
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def output_names(paths: list[Path]) -> list[str]:
    """out_<stem>.jpg for each input; repeated stems (replicated or same-named inputs) get _1, _2, ... so
    that no output of a run overwrites another.  Names compare case-insensitively, as some file systems do."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        base = f"out_{path.stem}"
        count = seen.get(base.casefold(), 0)
        seen[base.casefold()] = count + 1
        names.append(f"{base}.jpg" if count == 0 else f"{base}_{count}.jpg")
    return names


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Create the output directory if needed and prove it is writable, before any work is done."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".harness-probe-"):
            pass
    except OSError as error:
        raise HarnessError(
            f"output directory {path} is not writable ({error.strerror}): pass -o a directory you can write to"
        ) from None
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
