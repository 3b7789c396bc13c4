"""The strict check (inputs.check_jpeg) is about the image data, not the metadata: a photograph whose EXIF, ICC
profile, comments or other APPn segments libjpeg warns about passes and is processed at its full size, and
corrupt compressed data is still refused with libjpeg's words, metadata problems or not.  Every file is made
here from a real photograph; each metadata case first shows what simplejpeg's strict decode of the whole
file says about it (what the check said before it left the metadata out).  The `gpu`-marked twin at the end
decodes the files that pass with each GPU decoder."""

from __future__ import annotations

import io
import re

import cv2
import numpy as np
import pytest
import simplejpeg
import torch
from PIL import Image

from conftest import decode_rgb, jpeg_bytes
from harness.config import Config
from harness.decode import DECODERS, Decoder
from harness.inputs import BadImage, check_jpeg, read_jpeg
from harness.ops import ENGINES, per_image
from harness.pipeline import Pipeline

HEIGHT, WIDTH = 128, 192
SMALL = {"model": "lraspp_mobilenet_v3_large", "weights": "synthetic", "target_img_height": 64, "target_img_width": 64}
JUNK = bytes(range(1, 255))  # no 0xFF: never a marker
LENIENT_ADVICE = "replace it, or pass --lenient to decode what can be decoded"


def segment(code: int, payload: bytes) -> bytes:
    """A marker segment: 0xFF, its code, its length (two bytes, counted in) and its payload."""
    return bytes([0xFF, code]) + (len(payload) + 2).to_bytes(2, "big") + payload


def icc_chunk(sequence: int, count: int) -> bytes:
    """One APP2 chunk of an ICC profile: chunk `sequence` (from 1) of `count`."""
    return segment(0xE2, b"ICC_PROFILE\x00" + bytes([sequence, count]) + JUNK)


def with_metadata(data: bytes, *inserted: bytes) -> bytes:
    """`data` with `inserted` put after its first segment (JFIF APP0, or Adobe APP14 for CMYK), where cameras
    put theirs."""
    at = 4 + int.from_bytes(data[4:6], "big")
    return data[:at] + b"".join(inserted) + data[at:]


def jfif_version_2(data: bytes) -> bytes:
    assert data[6:11] == b"JFIF\x00"
    return data[:11] + b"\x02" + data[12:]


# name: (the file made from the photograph, what simplejpeg's strict decode of the whole file says or None)
METADATA = {
    "icc-bad-sequence": (lambda d: with_metadata(d, icc_chunk(0, 1)), "Corrupt JPEG data: bad ICC marker"),
    "icc-bad-count": (lambda d: with_metadata(d, icc_chunk(1, 0)), "Corrupt JPEG data: bad ICC marker"),
    "icc-chunk-missing": (lambda d: with_metadata(d, icc_chunk(1, 2)), "Corrupt JPEG data: bad ICC marker"),
    "exif-garbage": (lambda d: with_metadata(d, segment(0xE1, b"Exif\x00\x00" + JUNK * 4)), None),
    "xmp-garbage": (lambda d: with_metadata(d, segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpm" + JUNK)),
                    None),
    "comment": (lambda d: with_metadata(d, segment(0xFE, b"made by a test")), None),
    "app5": (lambda d: with_metadata(d, segment(0xE5, b"vendor data")), None),
    "app11-garbage": (lambda d: with_metadata(d, segment(0xEB, JUNK * 3)), None),
    "bytes-between-app-segments": (
        lambda d: with_metadata(d, segment(0xE1, b"Exif\x00\x00"), JUNK[:59], segment(0xE5, b"x")),
        "Corrupt JPEG data: 59 extraneous bytes before marker 0xe5"),
    "jfif-version-2": (jfif_version_2, "Warning: unknown JFIF revision number 2.01"),
}


def bad_metadata(data: bytes) -> bytes:
    """Several metadata problems at once, each of which libjpeg warns about."""
    return jfif_version_2(with_metadata(data, icc_chunk(0, 1), segment(0xE1, b"Exif\x00\x00"), JUNK[:59],
                                        segment(0xFE, b"x")))


def scan_middle(data: bytes) -> int:
    """The offset halfway through the compressed data (after the first SOS)."""
    start = data.index(b"\xff\xda")
    return start + (len(data) - start) // 2


def overwritten(data: bytes, length: int = 600) -> bytes:
    """`length` random bytes without 0xFF over the middle of the compressed data, the file's length kept."""
    at = scan_middle(data)
    noise = np.random.default_rng(0).integers(0, 255, length, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    return data[:at] + noise + data[at + length:]


def inserted(data: bytes, extra: bytes) -> bytes:
    at = scan_middle(data)
    return data[:at] + extra + data[at:]


# name: (the damage done to a file, the start of check_jpeg's reason after the file's name)
CORRUPT = {
    "truncated": (lambda d: d[:scan_middle(d)], "is truncated (libjpeg: Premature end of JPEG file)"),
    "truncated-end-marker": (lambda d: d[:scan_middle(d)] + b"\xff\xd9",
                             "is corrupt (libjpeg: Corrupt JPEG data: premature end of data segment)"),
    "garbage-over-scan": (overwritten, "is corrupt (libjpeg: Corrupt JPEG data: "),
    "bytes-inserted-in-scan": (lambda d: inserted(d, JUNK), "is corrupt (libjpeg: Corrupt JPEG data: "),
    "unknown-marker-in-scan": (lambda d: inserted(d, b"\xff\x12"),
                               "is corrupt (libjpeg: Unsupported marker type 0x12)"),
    "restart-marker-in-scan": (lambda d: inserted(d, b"\xff\xd3"),
                               "is corrupt (libjpeg: Corrupt JPEG data: premature end of data segment)"),
}


@pytest.fixture(scope="module")
def image(photo) -> bytes:
    """The photograph at 192x128 as a baseline JFIF file (about 12 KB)."""
    return jpeg_bytes(np.ascontiguousarray(cv2.resize(photo, (WIDTH, HEIGHT))))


@pytest.fixture(scope="module")
def passing(image) -> list[bytes]:
    return [make(image) for make, _ in METADATA.values()]


def strict_decode(data: bytes) -> np.ndarray:
    """What check_jpeg did before: simplejpeg's strict 1/8-scale decode of the whole file."""
    return simplejpeg.decode_jpeg(data, min_height=1, min_width=1, strict=True)


def reason(data: bytes, strict: bool = True) -> str:
    with pytest.raises(BadImage) as error:
        check_jpeg(data, "x.jpg", strict)
    return str(error.value)


@pytest.mark.parametrize("kind", METADATA)
def test_metadata_problems_pass_the_strict_check(image, kind):
    make, warning = METADATA[kind]
    data = make(image)
    if warning:
        with pytest.raises(ValueError, match=re.escape(warning)):
            strict_decode(data)
    else:  # libjpeg says nothing about it: a case that must keep passing
        strict_decode(data)
    assert check_jpeg(data, "x.jpg") == (HEIGHT, WIDTH)
    assert check_jpeg(data, "x.jpg", strict=False) == (HEIGHT, WIDTH)
    assert np.array_equal(decode_rgb(data), decode_rgb(image))  # the photograph's pixels


@pytest.mark.parametrize("layout", ["gray", "cmyk", "progressive"])
def test_a_bad_icc_chunk_passes_in_other_layouts(photo, layout):
    """The colour transform (APP14 for CMYK) and later scans (progressive) are kept as they were."""
    array = np.ascontiguousarray(cv2.resize(photo, (WIDTH, HEIGHT)))
    if layout == "progressive":
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=90, progressive=True)
        good = buffer.getvalue()
    else:
        good = jpeg_bytes(array, {"gray": "L", "cmyk": "CMYK"}[layout])
    data = with_metadata(good, icc_chunk(0, 1), segment(0xFE, b"x"))
    with pytest.raises(ValueError, match="bad ICC marker"):
        strict_decode(data)
    assert check_jpeg(data, "x.jpg") == (HEIGHT, WIDTH)
    assert np.array_equal(decode_rgb(data), decode_rgb(good))
    assert "is truncated" in reason(data[:scan_middle(data)])


@pytest.mark.parametrize("kind", CORRUPT)
def test_corrupt_image_data_is_refused(image, kind):
    damage, words = CORRUPT[kind]
    data = damage(image)
    with pytest.raises(ValueError):
        strict_decode(data)
    said = reason(data)
    assert said.startswith(f"x.jpg {words}") and said.endswith(LENIENT_ADVICE) and "\n" not in said, said
    assert check_jpeg(data, "x.jpg", strict=False) == (HEIGHT, WIDTH)  # --lenient: the header is enough


@pytest.mark.parametrize("kind", CORRUPT)
def test_corrupt_image_data_is_refused_beside_bad_metadata(image, kind):
    """Metadata problems hide no data problem: the reason is the one the file without them gets."""
    damage = CORRUPT[kind][0]
    assert reason(damage(bad_metadata(image))) == reason(damage(image))


def test_a_header_cut_inside_its_metadata_keeps_its_error(image):
    data = with_metadata(image, icc_chunk(0, 1), segment(0xE1, b"Exif\x00\x00" + JUNK * 4))
    cut = data[:data.index(b"Exif") + 100]
    assert "is corrupt or truncated (no readable JPEG header" in reason(cut)
    assert "no readable JPEG header" in reason(cut, strict=False)


def test_a_header_of_many_segments_is_checked(image):
    """A header of 20,000 comments (more than the walk through the metadata takes) is checked whole."""
    many = with_metadata(image, segment(0xFE, b"") * 20_000)
    assert check_jpeg(many, "x.jpg") == (HEIGHT, WIDTH)
    assert "is truncated" in reason(many[:scan_middle(many)])


def test_read_jpeg_reads_a_file_with_a_bad_icc_chunk(image, tmp_path):
    """The command line's path (harness.runner reads every file with read_jpeg): the file is kept as it is."""
    data = METADATA["icc-bad-sequence"][0](image)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    read = read_jpeg(path)
    assert (read.height, read.width) == (HEIGHT, WIDTH) and read.data == data


def check_pipeline(pipeline: Pipeline, passing: list[bytes]) -> None:
    result = pipeline.run(passing)
    assert result.failed == [] and result.done == list(range(len(passing)))
    assert [tuple(frame.shape) for frame in per_image(result.overlays)] == [(HEIGHT, WIDTH, 3)] * len(passing)
    assert all(decode_rgb(data).shape == (HEIGHT, WIDTH, 3) for data in result.jpegs)


def test_files_with_metadata_problems_go_through_the_cpu_pipeline(passing):
    check_pipeline(Pipeline(Config(device="cpu", decoder="cpu", ops="opencv", batch_size=len(passing), **SMALL)),
                   passing)


# the same on the GPU --------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("decoder", ["nvimgcodec", "torchvision"])
def test_files_with_metadata_problems_decode_on_the_gpu(passing, decoder, monkeypatch):
    """Each GPU decoder decodes them at their full size, itself, but for one file: nvImageCodec's parser
    refuses stray bytes between two APP segments ("Invalid marker", H100, dc5eb59) and hands that file to
    libjpeg on the CPU, which decodes it; torchvision's nvJPEG decodes every one."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: torch.cuda.is_available() is False here")
    if missing := ENGINES.unavailable("torch") or DECODERS.unavailable(decoder):
        pytest.skip(missing)
    handed_over: list[bytes] = []
    on_cpu = Decoder._on_cpu
    monkeypatch.setattr(Decoder, "_on_cpu",
                        lambda self, data, error: handed_over.append(data) or on_cpu(self, data, error))
    pipeline = Pipeline(Config(device="cuda", ops="torch", decoder=decoder, batch_size=len(passing), **SMALL))
    check_pipeline(pipeline, passing)
    refused = ["bytes-between-app-segments"] if decoder == "nvimgcodec" else []
    assert handed_over == [passing[list(METADATA).index(name)] for name in refused]
