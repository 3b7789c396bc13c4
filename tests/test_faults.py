"""Nothing lost, nothing aborted: odd sizes on every engine, bad files of every kind, colliding names, and
the one-line error contract of every entry point.  Each CPU test that touches a GPU code path has a
`gpu`-marked twin below that runs the same inputs through the GPU engines and decoders."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import decode_rgb, jpeg_bytes
from harness import HarnessError
from harness.config import Config
from harness.resolve import resolve
from harness.decode import DECODERS
from harness.ops import ENGINES
from harness.inputs import BadImage, check_jpeg, output_names, prepare_output_dir, read_jpeg
from harness.ops import per_image
from harness.ops.opencv_engine import OpencvEngine
from harness.ops.torch_engine import reflect101
from harness.pipeline import Pipeline
from harness.tolerances import ODD_SIZE_OVERLAY_MEAN_ABS_DIFF
from helpers import ROOT, SMALL_MODEL, assert_one_line_error, harness, in_process, python_env

#: Sizes (height, width) that have broken a library before: single pixels and strips (CV-CUDA's LINEAR
#: needs 2x2), sides under the blur's reach of 13 pixels (torch's reflect padding), odd sizes.
ODD_SIZES = [(1, 1), (1, 9), (9, 1), (2, 2), (3, 5), (13, 13), (14, 14), (15, 9), (17, 31), (64, 48)]


def odd_jpegs(photo: np.ndarray) -> list[bytes]:
    return [jpeg_bytes(np.ascontiguousarray(cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)))
            for h, w in ODD_SIZES]


def run_sizes(config: Config, datas: list[bytes]) -> None:
    """Every image of one mixed batch gives an overlay of its own size, and a one-image batch the same
    overlay as the mixed batch."""
    pipeline = Pipeline(config)
    result = pipeline.run(datas)
    assert result.failed == [] and result.done == list(range(len(datas)))
    overlays = [o.cpu() for o in per_image(result.overlays)]
    for (h, w), overlay, encoded in zip(ODD_SIZES, overlays, result.jpegs):
        assert tuple(overlay.shape) == (h, w, 3)
        assert decode_rgb(encoded).shape == (h, w, 3)
    for index in (0, 1, 4):  # alone, as a uniform batch of one
        alone = pipeline.run([datas[index]])
        assert torch.equal(per_image(alone.overlays)[0].cpu(), overlays[index])


CPU_ENGINES = [dict(ops="torch"), dict(ops="opencv"), dict(ops="torch", blur_mode="downscaled"),
               dict(ops="opencv", blur_mode="downscaled")]


@pytest.mark.parametrize("options", CPU_ENGINES, ids=lambda o: "-".join(o.values()))
def test_every_size_gives_an_overlay_on_the_cpu(photo, options):
    config = Config(device="cpu", decoder="cpu", model="lraspp_mobilenet_v3_large", weights="synthetic",
                    batch_size=len(ODD_SIZES), **options)
    run_sizes(config, odd_jpegs(photo))


@pytest.mark.parametrize("length", [1, 2, 3, 5, 14, 40])
def test_reflect101_is_opencvs_border_for_any_length(length):
    row = np.arange(length, dtype=np.float32)[None, :]
    pad = 13
    expected = cv2.copyMakeBorder(row, 0, 0, pad, pad, cv2.BORDER_REFLECT_101)[0]
    assert np.array_equal(row[0][reflect101(length, pad, torch.device("cpu")).numpy()], expected)


def test_the_torch_blur_matches_opencv_on_images_smaller_than_the_kernel(photo):
    """Where the torch engine gathers the border itself, it still applies OpenCV's Gaussian."""
    from harness.ops.torch_engine import TorchEngine

    plan = resolve(Config(device="cpu"))  # the sample's 27x27 blur
    torch_engine, opencv = TorchEngine(plan), OpencvEngine(plan)
    for h, w in ODD_SIZES:
        image = torch.from_numpy(np.ascontiguousarray(cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)))
        ours, theirs = torch_engine.blur([image])[0], opencv.blur([image])[0]
        assert (ours.int() - theirs.int()).abs().max() <= 1, (h, w)


def test_one_failing_image_costs_only_itself(sample_bytes, photo):
    """A stage that fails for one image: the batch is run again image by image, and only that one is lost."""

    class FailsOnSeven(OpencvEngine):  # a real engine that refuses one width, as a library might
        def blur(self, frames):
            if any(f.shape[1] == 7 for f in per_image(frames)):
                raise RuntimeError("this library cannot blur 7 pixels wide")
            return super().blur(frames)

    pipeline = Pipeline(Config(device="cpu", decoder="cpu", ops="opencv", model="lraspp_mobilenet_v3_large",
                               weights="synthetic", batch_size=4))
    pipeline.engine = FailsOnSeven(pipeline.plan)
    seven = jpeg_bytes(np.ascontiguousarray(photo[:20, :7]))
    result = pipeline.run([sample_bytes[0], seven, b"", sample_bytes[1]])
    assert result.done == [0, 3] and len(result.jpegs) == 2
    reasons = dict(result.failed)
    assert "blur stage" in reasons[1] and "7 pixels wide" in reasons[1]
    assert "is empty" in reasons[2]


def test_out_of_memory_is_not_an_image_problem(sample_bytes):
    """A failure of the whole run propagates (the run stops with one line) instead of skipping images."""

    class OutOfMemory(OpencvEngine):
        def blur(self, frames):
            raise MemoryError()

    pipeline = Pipeline(Config(device="cpu", decoder="cpu", ops="opencv", model="lraspp_mobilenet_v3_large",
                               weights="synthetic"))
    pipeline.engine = OutOfMemory(pipeline.plan)
    with pytest.raises(MemoryError):
        pipeline.run(sample_bytes[:2])


# names ----------------------------------------------------------------------------------------------


def test_output_names_are_unique_against_every_other_output(tmp_path):
    paths = [tmp_path / n for n in ("x.jpeg", "x.jpg", "x_1.jpg", "X_1.JPG", "x_2.jpg")]
    names = output_names(paths)
    assert len({n.casefold() for n in names}) == len(names)
    assert names[:3] == ["out_x.jpg", "out_x_3.jpg", "out_x_1.jpg"]


def test_output_names_never_name_an_input_in_the_output_directory(tmp_path):
    inputs = [tmp_path / "x.jpg", tmp_path / "out_x.jpg"]
    names = output_names(inputs, tmp_path)
    assert "out_x.jpg" not in names and len(set(names)) == 2


def test_long_stems_are_cut_to_a_name_the_file_system_takes(tmp_path):
    stem = "é" * 240  # 480 bytes in UTF-8
    names = output_names([tmp_path / f"{stem}.jpg"] * 2)
    assert all(len(os.fsencode(n)) < 255 for n in names) and names[0] != names[1]


def test_directory_run_with_colliding_names_writes_every_overlay(tmp_path, sample_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.jpeg", "x.jpg", "x_1.jpg"):
        (folder / name).write_bytes(sample_bytes[2])
    result = harness("-i", str(folder), "-o", str(tmp_path / "out"), "-b", "2", *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 3 and "Wrote 3 overlay(s)" in result.stdout


def test_the_input_directory_is_refused_as_output_and_a_subdirectory_is_fine(tmp_path, sample_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "out_x.jpg").write_bytes(sample_bytes[0])
    (folder / "x.jpg").write_bytes(sample_bytes[1])
    assert_one_line_error(harness("-i", str(folder), "-o", str(folder / "." ), *SMALL_MODEL), "is the input directory")
    assert (folder / "out_x.jpg").read_bytes() == sample_bytes[0]
    with pytest.raises(HarnessError, match="is the input directory"):
        prepare_output_dir(folder, folder)
    result = harness("-i", str(folder), "-o", str(folder / "overlays"), *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (folder / "overlays").iterdir()) == ["out_out_x.jpg", "out_x.jpg"]


def test_odd_file_names_are_processed_and_printed(tmp_path, sample_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    long_name = "a" * 234 + ".jpg"
    (folder / long_name).write_bytes(sample_bytes[0])
    (Path(os.fsdecode(bytes(folder) + b"/bad-\xff\xfe-utf8.jpg"))).write_bytes(sample_bytes[1])
    result = harness("-i", str(folder), "-o", str(tmp_path / "out"), *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert "Wrote 2 overlay(s)" in result.stdout and "Traceback" not in result.stderr
    written = os.listdir(bytes(tmp_path / "out"))
    assert len(written) == 2 and b"out_bad-\xff\xfe-utf8.jpg" in written


# bad files ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg(photo) -> bytes:
    return jpeg_bytes(np.ascontiguousarray(cv2.resize(photo, (1920, 1080))))


def _with_size(data: bytes, height: int, width: int) -> bytes:
    """`data` with its baseline frame header (SOF0) claiming another size."""
    at = data.index(b"\xff\xc0")
    return data[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 9:]


def corrupt_files(big: bytes) -> dict[str, bytes]:
    half = len(big) // 2
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 255, 3000, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    return {
        "truncated-with-end-marker": big[:half] + b"\xff\xd9",
        "garbage-mid-scan": big[:half] + garbage + big[half + 3000:],
        "truncated": big[:half],
        "tiny-claims-9000x9000": _with_size(big, 9000, 9000)[:658] + b"\xff\xd9",
    }


@pytest.mark.parametrize("kind", ["truncated-with-end-marker", "garbage-mid-scan", "truncated",
                                  "tiny-claims-9000x9000"])
def test_corrupt_jpegs_are_refused(big_jpeg, kind):
    with pytest.raises(BadImage, match="corrupt|truncated"):
        check_jpeg(corrupt_files(big_jpeg)[kind], "x.jpg")
    check_jpeg(corrupt_files(big_jpeg)[kind], "x.jpg", strict=False)  # --lenient: the header is enough


def test_data_after_the_end_marker_is_fine(big_jpeg):
    assert check_jpeg(big_jpeg + bytes(5000) + b"trailer", "x.jpg") == (1080, 1920)


def test_the_size_limit_is_read_from_the_header_before_decoding(big_jpeg, monkeypatch):
    import simplejpeg

    decoded = []
    monkeypatch.setattr(simplejpeg, "decode_jpeg", lambda *a, **k: decoded.append(1))  # a spy: no decode allowed
    with pytest.raises(BadImage, match=r"too large: 20000x20000 pixels, the limit is"):
        check_jpeg(_with_size(big_jpeg, 20000, 20000), "x.jpg")
    assert not decoded  # nothing of 400 megapixels was decoded


def test_a_real_14000x14000_jpeg_is_accepted():
    """Under the project's limit; Pillow's decompression-bomb check once called it corrupt."""
    buffer = io.BytesIO()
    Image.new("RGB", (14000, 14000), (90, 120, 200)).save(buffer, "JPEG", quality=75)
    assert check_jpeg(buffer.getvalue(), "x.jpg") == (14000, 14000)


def test_huge_sparse_files_and_fifos_are_refused_without_reading(tmp_path):
    sparse = tmp_path / "sparse.jpg"
    with open(sparse, "wb") as handle:
        handle.write(b"\xff\xd8\xff")
        handle.truncate(64 << 30)  # 64 GiB of nothing, taking no disk
    with pytest.raises(BadImage, match="too large"):
        read_jpeg(sparse)
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(BadImage, match="not a regular file"):
        read_jpeg(fifo)


def test_directory_run_reports_every_bad_entry_and_processes_the_rest(tmp_path, sample_bytes, big_jpeg):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes(sample_bytes[0])
    for name, data in corrupt_files(big_jpeg).items():
        (folder / f"b_{name}.jpg").write_bytes(data)
    os.mkfifo(folder / "c_fifo.jpg")
    (folder / "d_broken.jpg").symlink_to(folder / "nowhere.jpg")
    with open(folder / "e_sparse.jpg", "wb") as handle:
        handle.write(b"\xff\xd8\xff")
        handle.truncate(8 << 30)
    (folder / "f_trailing.jpg").write_bytes(sample_bytes[1] + bytes(5000))
    (folder / "g_one_pixel.jpg").write_bytes(jpeg_bytes(np.zeros((1, 1, 3), np.uint8)))
    result = harness("-i", str(folder), "-o", str(tmp_path / "out"), "-b", "3", *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    skipped = sorted(line.split(":")[0].rsplit("/", 1)[-1] for line in result.stderr.splitlines()
                     if line.startswith("Skipping"))
    assert skipped == ["b_garbage-mid-scan.jpg", "b_tiny-claims-9000x9000.jpg", "b_truncated-with-end-marker.jpg",
                       "b_truncated.jpg", "c_fifo.jpg", "d_broken.jpg", "e_sparse.jpg"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "out_a_good.jpg", "out_f_trailing.jpg", "out_g_one_pixel.jpg"]


def test_lenient_lets_a_corrupt_file_through(tmp_path, big_jpeg):
    path = tmp_path / "cut.jpg"
    path.write_bytes(corrupt_files(big_jpeg)["truncated-with-end-marker"])
    assert_one_line_error(harness("-i", str(path), "-o", str(tmp_path / "out"), *SMALL_MODEL), "corrupt", "--lenient")
    result = harness("-i", str(path), "-o", str(tmp_path / "out"), "--lenient", *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert decode_rgb((tmp_path / "out" / "out_cut.jpg").read_bytes()).shape == (1080, 1920, 3)


# one line for every error ---------------------------------------------------------------------------


def test_a_fifo_given_as_input_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    assert_one_line_error(harness("-i", str(fifo), "-o", str(tmp_path / "out"), *SMALL_MODEL), "not a regular file")


@pytest.mark.parametrize("args,words", [
    (["-i", ""], ["-i/--input_path is empty"]),
    (["-o", ""], ["-o/--output_dir is empty"]),
    (["-b", "100000000000000000000"], ["-b/--batch_size is 100000000000000000000", "4096"]),
], ids=["empty-input", "empty-output", "huge-batch"])
def test_empty_paths_and_absurd_batches(tmp_path, args, words):
    base = ["-o", str(tmp_path / "out")] if "-o" not in args else []
    assert_one_line_error(harness(*SMALL_MODEL, *base, *args), *words)


def test_weights_file_holding_a_tensor(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(torch.zeros(3), path)
    assert_one_line_error(harness("--model", "lraspp_mobilenet_v3_large", "--weights", str(path),
                                  "-o", str(tmp_path / "out")), "holds a Tensor, not a state dict")


@pytest.mark.parametrize("make,words", [
    (lambda path: torch.save({1: torch.zeros(1)}, path), ["has the key 1 (int), not a parameter name"]),
    (lambda path: torch.save({"state_dict": {"x": torch.zeros(1)}}, path), ["'state_dict' holds a value of type dict"]),
    (lambda path: torch.save({"backbone.0.0.weight": torch.zeros(3)}, path),
     ["'backbone.0.0.weight' has the shape (3,), the model's has (16, 3, 3, 3)"]),
    (lambda path: torch.save({"backbone.0.0.weight": torch.zeros(16, 3, 3, 3, dtype=torch.complex64)}, path),
     ["'backbone.0.0.weight' is torch.complex64"]),
    (lambda path: path.write_text("not a torch file\n"), ["is not a readable PyTorch state dict"]),
], ids=["int-keys", "nested", "wrong-shape", "complex", "not-torch"])
def test_weights_of_any_shape_are_one_line_naming_the_file(tmp_path, capsys, sample_paths, make, words):
    path, out = tmp_path / "w.pt", tmp_path / "out"
    make(path)
    result = in_process(capsys, "--model", "lraspp_mobilenet_v3_large", "--weights", str(path), "--device", "cpu",
                        "-i", str(sample_paths[2]), "-o", str(out))
    assert_one_line_error(result, f"--weights {path}", *words)
    assert "internal error" not in result.stderr and list(out.iterdir()) == []


def test_an_empty_harness_cache_means_the_default_folder(tmp_path, monkeypatch):
    """HARNESS_CACHE="" is unset, not the current directory (which got an onnx/ folder)."""
    from harness.cache import cache_folder, default_cache_dir

    monkeypatch.setenv("HARNESS_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert default_cache_dir() == tmp_path / "xdg" / "harness"
    assert resolve(Config(device="cpu")).config.cache_dir == str(tmp_path / "xdg" / "harness")
    assert cache_folder(None, "onnx") == tmp_path / "xdg" / "harness" / "onnx"
    assert not (tmp_path / "onnx").exists()


def test_an_input_removed_after_listing_is_reported_as_missing(tmp_path, capsys, sample_bytes, monkeypatch):
    """Listed, then deleted before it is read: 'does not exist', not 'a broken link'; the others are written."""
    import harness.inputs

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (folder / name).write_bytes(sample_bytes[2])
    listed = harness.inputs.find_jpegs

    def find_then_remove(path, batch_size):
        paths = listed(path, batch_size)
        (folder / "b.jpg").unlink()
        return paths

    monkeypatch.setattr(harness.inputs, "find_jpegs", find_then_remove)
    result = in_process(capsys, "-i", str(folder), "-o", str(out), "-b", "3", "-th", "64", "-tw", "64", *SMALL_MODEL)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("Skipping")]
    assert len(skipped) == 1 and "b.jpg does not exist" in skipped[0] and "broken link" not in skipped[0]
    assert sorted(p.name for p in out.iterdir()) == ["out_a.jpg", "out_c.jpg"]


def test_unwritable_cache_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = harness(*SMALL_MODEL, "-bk", "onnxruntime", "--device", "cpu", "--cache_dir", str(blocker / "cache"),
                     "-o", str(tmp_path / "out"))
    assert_one_line_error(result, "cache directory", "--cache_dir")


def test_an_onnx_sidecar_holding_null_is_rebuilt(tmp_path):
    from harness.backends.onnx_export import cached_onnx
    from harness.models import build_model

    model = build_model("lraspp_mobilenet_v3_large", "synthetic")
    path = cached_onnx(model, 64, 64, tmp_path)
    path.with_suffix(".json").write_text("null")
    assert cached_onnx(model, 64, 64, tmp_path) == path
    assert json.loads(path.with_suffix(".json").read_text())["key"]["height"] == 64


def _limited(kind: int, limit: int, ignore: int | None = None):
    def apply():
        if ignore is not None:
            signal.signal(ignore, signal.SIG_IGN)
        resource.setrlimit(kind, (limit, limit))
    return apply


def _harness_limited(preexec, *args: str) -> subprocess.CompletedProcess:
    """The CPU path under a resource limit (hidden GPUs: CUDA's start-up wants address space and cache files)."""
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          env=python_env(CUDA_VISIBLE_DEVICES=""), timeout=600, preexec_fn=preexec)


def test_a_write_that_fails_stops_the_run_with_one_line_and_no_partial_file(tmp_path):
    """A file-size limit makes every write fail the way a full disk does (EFBIG instead of ENOSPC)."""
    out = tmp_path / "out"
    result = _harness_limited(_limited(resource.RLIMIT_FSIZE, 2000, signal.SIGXFSZ), *SMALL_MODEL, "-o", str(out))
    assert_one_line_error(result, "cannot write", str(out))
    assert [p for p in out.iterdir()] == []


def test_running_out_of_host_memory_is_one_line(tmp_path, sample_paths):
    """Address space limited to what the program takes once loaded plus 3 GiB; 4000 decoded copies need more."""
    probe = subprocess.run([sys.executable, "-c", "import torch, torchvision, cv2, harness.pipeline; "
                            "print(open('/proc/self/status').read().split('VmPeak:')[1].split()[0])"],
                           capture_output=True, text=True, env=python_env(CUDA_VISIBLE_DEVICES=""), check=True)
    loaded = int(probe.stdout.strip()) << 10
    result = _harness_limited(_limited(resource.RLIMIT_AS, loaded + (3 << 30)), *SMALL_MODEL, "--device", "cpu", "-i",
                              str(sample_paths[0]), "-b", "4000", "-o", str(tmp_path / "out"))
    assert_one_line_error(result, "out of host memory")


def test_sigterm_removes_partial_files_and_exits_143(tmp_path, sample_bytes):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(300):  # long enough to still be running on a GPU when the signal comes
        (folder / f"img_{index:03}.jpg").write_bytes(sample_bytes[index % 5])
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "harness", "-i", str(folder), "-o", str(out), *SMALL_MODEL],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=python_env(PYTHONUNBUFFERED="1"))
    for line in process.stdout:  # wait until overlays are being written
        if "Saving the overlay" in line:
            break
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    left = [p.name for p in out.iterdir()]
    assert left and all(name.startswith("out_img_") and name.endswith(".jpg") for name in left), left
    for name in left:
        assert decode_rgb((out / name).read_bytes()).ndim == 3  # whole files only


def _module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=python_env(), timeout=300)


def test_reports_of_empty_or_foreign_files_are_one_line_with_exit_2(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text('{"benchmarks": []}')
    for command in (["report", str(empty), "-o", str(tmp_path / "r")], ["compare", str(empty), str(empty)],
                    ["gate", str(empty), str(empty)]):
        result = _module("harness.report", *command)
        assert result.returncode == 2, result.stderr
        assert_one_line_error(result, "holds no benchmark")


def test_comparing_two_shipped_runs_of_different_kinds(tmp_path):
    result = _module("harness.report", "compare", str(ROOT / "reports/h100-2026-11-24/repeat-1.json"),
                     str(ROOT / "reports/h200x2-2026-11-24/default/world1.json"))
    assert result.returncode == 0, result.stderr
    assert "only in" in result.stdout


def test_golden_with_a_missing_folder_is_one_line(tmp_path):
    result = _module("harness.golden", "check", "--dir", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert_one_line_error(result, "cannot read", "regenerate")


# the same on the GPU --------------------------------------------------------------------------------

GPU_ENGINES = [dict(ops="torch", decoder="torchvision"),
               dict(ops="torch", decoder="torchvision", blur_mode="downscaled"),
               dict(ops="cvcuda", decoder="nvimgcodec"),
               dict(ops="cvcuda", decoder="nvimgcodec", blur_mode="downscaled"),
               dict(ops="cvcuda", decoder="nvimgcodec", preprocess="fused"),
               dict(ops="cvcuda", decoder="torchvision")]


def _needs(options: dict) -> None:
    if reason := ENGINES.unavailable(options["ops"]) or DECODERS.unavailable(options["decoder"]):
        pytest.skip(reason)


@pytest.mark.gpu
@pytest.mark.parametrize("options", GPU_ENGINES, ids=lambda o: "-".join(o.values()))
def test_every_size_gives_an_overlay_on_the_gpu(photo, options):
    _needs(options)
    config = Config(device="cuda", model="lraspp_mobilenet_v3_large", weights="synthetic",
                    batch_size=len(ODD_SIZES), **options)
    run_sizes(config, odd_jpegs(photo))


@pytest.mark.gpu
@pytest.mark.parametrize("options", GPU_ENGINES[:3:2], ids=lambda o: "-".join(o.values()))
def test_gpu_overlays_of_odd_sizes_match_the_cpu_reference(photo, options):
    """Close to the CPU torch engine for every odd size (the masks come from the same synthetic model;
    decoders differ by rounding, and a flipped mask pixel weighs much in a tiny image)."""
    _needs(options)
    datas = odd_jpegs(photo)
    common = dict(model="lraspp_mobilenet_v3_large", weights="synthetic", batch_size=len(datas))
    reference = Pipeline(Config(device="cpu", decoder="cpu", ops="torch", **common)).run(datas)
    candidate = Pipeline(Config(device="cuda", **options, **common)).run(datas)
    for (h, w), ref, got in zip(ODD_SIZES, per_image(reference.overlays), per_image(candidate.overlays)):
        difference = (ref.int() - got.cpu().int()).abs().float()
        assert difference.mean() <= ODD_SIZE_OVERLAY_MEAN_ABS_DIFF, (h, w, float(difference.mean()))


@pytest.mark.gpu
@pytest.mark.parametrize("options", GPU_ENGINES[::2], ids=lambda o: "-".join(o.values()))
def test_gpu_directory_run_with_bad_and_odd_files(tmp_path, sample_bytes, big_jpeg, photo, options):
    _needs(options)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes(sample_bytes[0])
    for name, data in corrupt_files(big_jpeg).items():
        (folder / f"b_{name}.jpg").write_bytes(data)
    for (h, w), data in zip(ODD_SIZES, odd_jpegs(photo)):
        (folder / f"c_{h}x{w}.jpg").write_bytes(data)
    (folder / "d_empty.jpg").write_bytes(b"")
    result = harness("-i", str(folder), "-o", str(tmp_path / "out"), "-b", "4", "--device", "cuda",
                     "--ops", options["ops"], "--decoder", options["decoder"], *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert len([l for l in result.stderr.splitlines() if l.startswith("Skipping")]) == 5
    assert len(list((tmp_path / "out").iterdir())) == 1 + len(ODD_SIZES)


@pytest.mark.gpu
@pytest.mark.parametrize("decoder", ["torchvision", "nvimgcodec"])
def test_gpu_decoders_with_lenient_corrupt_files_skip_or_decode_never_abort(big_jpeg, decoder, sample_bytes):
    """What nvJPEG does with files libjpeg calls corrupt (they reach it only with --lenient): an image of
    the right size or a reason, and the good image beside them always decoded."""
    _needs({"ops": "torch", "decoder": decoder})
    pipeline = Pipeline(Config(device="cuda", ops="torch", decoder=decoder, model="lraspp_mobilenet_v3_large",
                               weights="synthetic", batch_size=5))
    datas = [sample_bytes[0], *corrupt_files(big_jpeg).values()]
    result = pipeline.run(datas, strict=False)  # --lenient: the decoders get them
    assert 0 in result.done
    assert sorted(result.done + [i for i, _ in result.failed]) == list(range(len(datas)))
