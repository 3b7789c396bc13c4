"""Finding, checking and batching JPEG inputs, and naming and preparing the outputs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

from harness import HarnessError
from harness.errors import first_line
from harness.files import probe_writable

JPEG_SUFFIXES = (".jpg", ".jpeg")
MAX_PIXELS = 16384 * 16384  # nvJPEG's and CV-CUDA's practical ceiling; larger files are refused up front
MAX_FILE_BYTES = 1 << 30  # larger files are refused before they are read (16384 x 16384 photographs are smaller)
#: The most pixels one batch decodes at once: a batch over it (three 16384 x 16384 images, or 130 1080p ones)
#: is decoded and processed in parts within it, so a batch never needs more memory than the largest image.
MAX_BATCH_PIXELS = MAX_PIXELS
MAX_STEM_BYTES = 200  # output names stay well under the file systems' 255-byte limit, suffixes included


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
    """The inputs of a run: a directory's JPEG-named entries sorted by name (sub-directories left out; FIFOs,
    devices and broken links kept, for read_jpeg to report), or one file replicated batch_size times."""
    if str(path) == "":
        raise HarnessError("-i/--input_path is empty: give a JPEG file or a directory of them")
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"input path not found: {path}: pass -i an existing JPEG file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in JPEG_SUFFIXES and not p.is_dir())
        if not files:
            raise HarnessError(f"no .jpg/.jpeg files in directory {path}: pass -i a directory that holds JPEGs")
        return files
    if path.suffix.lower() not in JPEG_SUFFIXES:
        raise HarnessError(f"{path} is not a .jpg/.jpeg file: pass -i a JPEG file or a directory of them")
    _regular_file(path)
    return [path] * batch_size


def _regular_file(path: Path) -> None:
    """`path` must be a regular file of at most MAX_FILE_BYTES: opening a FIFO would block for ever, and a
    huge sparse file would be read whole."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as error:
        raise BadImage(f"cannot read {path}: {error.strerror}: check its permissions") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadImage(f"{path} is not a regular file (a FIFO, socket or device): give JPEG files only")
    if info.st_size > MAX_FILE_BYTES:
        raise BadImage(f"{path} is too large: {info.st_size} bytes, the limit is {MAX_FILE_BYTES} bytes for one "
                       "JPEG file: downscale it or remove it")


def _missing(path: Path) -> BadImage:
    """A path that was listed but cannot be found: a link to nothing, or a file removed since."""
    if path.is_symlink():
        return BadImage(f"{path} is a broken link: point it at a file or remove it")
    return BadImage(f"{path} does not exist (removed after the run listed it): put it back or leave it out")


def check_jpeg(data: bytes, name: str, strict: bool = True) -> tuple[int, int]:
    """(height, width) of a JPEG that every decoder can take, else BadImage saying why.

    The header gives the size, checked against MAX_PIXELS before any pixel is decoded.  With `strict`,
    libjpeg-turbo then decodes the image data at 1/8 scale (every coefficient, little arithmetic: a third of
    a full decode) and any warning it raises is an error: a truncated file, an end marker appended to a
    truncated file, a marker where compressed data should be, compressed data that ends early or runs
    over.  The metadata before the first scan (APP1-APP13, APP15 and COM segments: EXIF, XMP, ICC profile
    chunks, comments; the JFIF version; bytes between segments) is left out of that decode (_image_data), so
    what libjpeg says about it ("bad ICC marker", say) is no error: no pixel depends on it.  Wrong compressed
    data that still decodes as valid Huffman codes of the right length raises no warning and passes: no
    decoder can tell it from a real image.  Data after the end marker is fine."""
    import simplejpeg

    if not data:
        raise BadImage(f"{name} is empty: replace it with a JPEG image")
    if not data.startswith(b"\xff\xd8\xff"):
        kind = "a PNG image" if data.startswith(b"\x89PNG") else "not a JPEG image"
        raise BadImage(f"{name} is {kind} although it is named like one: convert it to JPEG or remove it")
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data, strict=False)
    except Exception as error:  # ValueError, and KeyError for a colour space it cannot name
        detail = f": {first_line(error)}" if isinstance(error, ValueError) else ""
        raise BadImage(f"{name} is corrupt or truncated (no readable JPEG header{detail}): replace it or remove it"
                       ) from None
    if height < 1 or width < 1:
        raise BadImage(f"{name} says it is {width}x{height} pixels: it is corrupt, replace it or remove it")
    if height * width > MAX_PIXELS:
        raise BadImage(f"{name} is too large: {width}x{height} pixels, the limit is {MAX_PIXELS} pixels "
                       "(16384x16384): downscale it")
    if strict:
        target = {"CMYK": "CMYK", "YCCK": "CMYK", "Gray": "GRAY"}.get(colorspace, "RGB")
        try:
            simplejpeg.decode_jpeg(_image_data(data), colorspace=target, min_height=1, min_width=1, strict=True)
        except ValueError as error:
            problem = "truncated" if "premature end of jpeg file" in str(error).lower() else "corrupt"
            raise BadImage(f"{name} is {problem} (libjpeg: {first_line(error)}): replace it, or pass --lenient "
                           "to decode what can be decoded") from None
    return height, width


_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0, JFIF 1.01, no thumbnail
_MAX_SEGMENTS = 1024  # segments before the first scan that _image_data walks (an ICC profile takes 255 at most)


def _image_data(data: bytes) -> bytes:
    """`data` with what libjpeg reads but no pixel depends on left out of its header (before the first SOS):
    the APP1-APP13 and APP15 segments (EXIF, ICC profiles, XMP, ...) and comments, the bytes between
    segments that libjpeg skips with a warning, and non-JFIF APP0 segments; a JFIF APP0 becomes a plain
    JFIF 1.01 one (it tells libjpeg the colour space).  The tables, the frame, APP14 (Adobe: the colour
    transform) and everything from the first SOS on stay as they are.  `data` itself where nothing is
    left out, where the header is not one that libjpeg reads to a first scan (libjpeg says why), or where
    it has more than _MAX_SEGMENTS segments."""
    import re

    marker = re.compile(rb"\xff[^\x00\xff]")  # as libjpeg finds one: fill 0xFF bytes, then a code other than 0
    parts = [b"\xff\xd8"]
    at = 2
    for _ in range(_MAX_SEGMENTS):
        found = marker.search(data, at)
        if found is None:
            return data
        at = found.start()
        code = data[at + 1]
        if code == 0xDA:  # SOS: the compressed data follows
            header = b"".join(parts)
            return data if header == data[:at] else header + data[at:]
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # TEM and RSTn have no length (libjpeg ignores them here)
            parts.append(data[at:at + 2])
            at += 2
            continue
        if code in (0xD8, 0xD9) or at + 4 > len(data):  # a second SOI, an EOI, no length: libjpeg stops
            return data
        end = at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
        if end < at + 4 or end > len(data):
            return data
        if code == 0xE0 and data[at + 4:at + 9] == b"JFIF\x00" and end - at >= 18:
            parts.append(_JFIF)
        elif not (0xE0 <= code <= 0xED or code in (0xEF, 0xFE)):  # metadata: APPn but APP14, and COM
            parts.append(data[at:end])
        at = end
    return data


def read_jpeg(path: Path, strict: bool = True) -> JpegFile:
    """Read and check one input; its size and type are checked before a byte is read."""
    _regular_file(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as error:
        raise BadImage(f"cannot read {path}: {error.strerror}: check its permissions") from None
    height, width = check_jpeg(data, str(path), strict)
    return JpegFile(path, data, height, width)


def batches(items: list, batch_size: int) -> Iterator[list]:
    """Consecutive slices of batch_size; the last one may be shorter."""
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _fit(name: str, limit: int = MAX_STEM_BYTES) -> str:
    """`name` cut to at most `limit` bytes as the file system stores it (undecodable bytes included)."""
    while len(os.fsencode(name)) > limit:
        name = name[:-1]
    return name


def output_names(paths: list[Path], out_dir: str | os.PathLike | None = None) -> list[str]:
    """out_<stem>.jpg for each input, unique within the run and never the name of an input in out_dir.

    Each input first claims its own name (the first of several that share one wins); the others then get
    the smallest free suffix, out_<stem>_1.jpg, _2, ..., free of every claimed name, so that `x.jpg` beside
    `x_1.jpg` can neither take nor lose `out_x_1.jpg`.  Names compare case-insensitively, as some file
    systems do, and long stems are cut to MAX_STEM_BYTES."""
    here = Path(out_dir).resolve() if out_dir is not None else None
    taken = {p.name.casefold() for p in paths if here is not None and p.parent.resolve() == here}
    bases = [_fit(f"out_{path.stem}") for path in paths]
    names: list[str | None] = [None] * len(paths)
    for index, base in enumerate(bases):
        if f"{base}.jpg".casefold() not in taken:
            names[index] = f"{base}.jpg"
            taken.add(names[index].casefold())
    counters: dict[str, int] = {}
    for index, base in enumerate(bases):
        if names[index] is None:
            number = counters.get(base.casefold(), 0)
            while True:
                number += 1
                candidate = f"{base}_{number}.jpg"
                if candidate.casefold() not in taken:
                    break
            counters[base.casefold()] = number
            names[index] = candidate
            taken.add(candidate.casefold())
    return names  # type: ignore[return-value]


def prepare_output_dir(path: str | os.PathLike, input_path: str | os.PathLike | None = None) -> Path:
    """Create the output directory if needed and prove it is writable, before any work is done.  It may not be
    the input directory: the next run would read this run's overlays back as inputs."""
    if str(path) == "":
        raise HarnessError("-o/--output_dir is empty: give the directory the overlays go to")
    path = Path(path)
    if input_path is not None and Path(input_path).is_dir() and Path(input_path).resolve() == path.resolve():
        raise HarnessError(f"-o {path} is the input directory: the overlays would become inputs of the next run; "
                           "pass -o another directory (a sub-directory is fine)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe_writable(path)
    except OSError as error:
        raise HarnessError(
            f"output directory {path} is not writable ({error.strerror}): pass -o a directory you can write to"
        ) from None
    return path
