"""Finding, checking, naming and writing files."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from conftest import decode_rgb, jpeg_bytes
from harness import HarnessError
from harness.inputs import BadImage, batches, check_jpeg, find_jpegs, output_names, prepare_output_dir
from harness.files import write_atomic


def test_directory_inputs_are_sorted_and_any_case(tmp_path, sample_bytes):
    for name in ["b.JPG", "a.jpeg", "c.Jpeg", "notes.txt", "d.png"]:
        (tmp_path / name).write_bytes(sample_bytes[0])
    (tmp_path / "sub.jpg").mkdir()
    assert [p.name for p in find_jpegs(tmp_path, 4)] == ["a.jpeg", "b.JPG", "c.Jpeg"]


def test_single_file_is_replicated_batch_size_times(sample_paths):
    assert find_jpegs(sample_paths[0], 3) == [sample_paths[0]] * 3


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "missing", "input path not found"),
    (lambda p: p, "no .jpg/.jpeg files"),
    (lambda p: (p / "x.png").write_bytes(b"x") and p / "x.png", "is not a .jpg/.jpeg file"),
])
def test_unusable_paths(tmp_path, make, message):
    with pytest.raises(HarnessError, match=message):
        find_jpegs(make(tmp_path), 1)


def test_batches_keep_order_and_a_partial_last_batch():
    assert list(batches(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_output_names_never_collide(tmp_path):
    paths = [tmp_path / "dog.jpg"] * 3 + [tmp_path / "Dog.JPEG", tmp_path / "cat.jpg"]
    assert output_names(paths) == ["out_dog.jpg", "out_dog_1.jpg", "out_dog_2.jpg", "out_Dog_3.jpg", "out_cat.jpg"]


@pytest.mark.parametrize("data,message", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "is a PNG image"),
    (b"hello, I am text\n", "not a JPEG image"),
    (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9", "is corrupt"),
])
def test_check_jpeg_rejects(data, message):
    with pytest.raises(BadImage, match=message):
        check_jpeg(data, "x.jpg")


def test_check_jpeg_rejects_truncation_and_reads_size(photo):
    data = jpeg_bytes(photo)
    assert check_jpeg(data, "x.jpg") == photo.shape[:2]
    with pytest.raises(BadImage, match="truncated"):
        check_jpeg(data[: len(data) // 2], "x.jpg")


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "out.jpg"
    write_atomic(target, b"old")
    write_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["out.jpg"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.jpg"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.jpg"]


def test_output_dir_is_created_and_must_be_writable(tmp_path):
    assert prepare_output_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(HarnessError, match="is not writable"):
        prepare_output_dir(blocker / "sub")


def test_grayscale_and_cmyk_jpegs_pass_the_checks(photo):
    for mode in ("L", "CMYK"):
        assert check_jpeg(jpeg_bytes(photo, mode), "x.jpg") == photo.shape[:2]
    assert np.asarray(photo).ndim == 3


def test_a_file_removed_after_listing_is_missing_and_a_dangling_link_is_broken(tmp_path, sample_bytes):
    from harness.inputs import read_jpeg

    removed = tmp_path / "removed.jpg"
    removed.write_bytes(sample_bytes[0])
    listed = find_jpegs(tmp_path, 1)
    removed.unlink()
    with pytest.raises(BadImage, match="removed.jpg does not exist") as error:
        read_jpeg(listed[0])
    assert "broken link" not in str(error.value)
    (tmp_path / "link.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(BadImage, match="link.jpg is a broken link"):
        read_jpeg(tmp_path / "link.jpg")


@pytest.fixture(scope="module")
def scan_photo(photo) -> bytes:
    """A 256x256 photograph as JPEG (about 23 KB: its compressed data is long enough to corrupt in the middle)."""
    import cv2

    return jpeg_bytes(np.ascontiguousarray(cv2.resize(photo, (256, 256))))


def _garbage(data: bytes, length: int, seed: int) -> bytes:
    """`data` with `length` random bytes without 0xFF (so no marker) put over the middle of its compressed
    data: the same length, the headers whole."""
    middle = len(data) // 2
    noise = np.random.default_rng(seed).integers(0, 255, length, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    return data[:middle] + noise + data[middle + length:]


@pytest.mark.parametrize("corrupt,word", [
    (lambda d: d[:len(d) // 2], "truncated (libjpeg: Premature end of JPEG file)"),
    (lambda d: d[:len(d) // 2] + b"\xff\xd9", "corrupt (libjpeg: Corrupt JPEG data: premature end of data segment)"),
    (lambda d: d[:len(d) // 2] + b"\xff\x12" * 50 + d[len(d) // 2 + 100:], "corrupt (libjpeg: Unsupported marker"),
    (lambda d: d[:len(d) // 2] + bytes(range(1, 200)) + d[len(d) // 2:], "extraneous bytes before marker"),
    (lambda d: _garbage(d, 1000, 0), "corrupt (libjpeg: Corrupt JPEG data"),
], ids=["truncated", "truncated-end-marker", "bad-marker", "inserted-bytes", "long-garbage"])
def test_the_strict_check_detects_what_libjpeg_warns_about(scan_photo, corrupt, word):
    with pytest.raises(BadImage, match=re.escape(word)):
        check_jpeg(corrupt(scan_photo), "x.jpg")
    check_jpeg(corrupt(scan_photo), "x.jpg", strict=False)  # --lenient: the header is enough


def test_the_strict_check_cannot_detect_garbage_that_decodes(scan_photo):
    """The documented limit (docs/cli.md, 'Checked inputs'): 16 bytes of garbage without markers, the file's length
    kept, can decode as other valid Huffman codes that end where the real ones did, and libjpeg has nothing
    to warn about (4 of these 60 seeds with simplejpeg 1.9.0's libjpeg-turbo).  Such a file passes the strict check
    and decodes to a different image."""
    undetected = []
    for seed in range(60):
        data = _garbage(scan_photo, 16, seed)
        try:
            check_jpeg(data, "x.jpg")
        except BadImage:
            continue
        undetected.append(data)
    assert undetected, "libjpeg now detects all of them: the limit in docs/cli.md can be narrowed"
    assert len(undetected[0]) == len(scan_photo) and undetected[0] != scan_photo
    assert not np.array_equal(decode_rgb(undetected[0]), decode_rgb(scan_photo))
