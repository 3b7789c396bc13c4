"""Pipeline.run takes bytes from any caller: a hostile header is refused before anything is decoded and costs
only its image, --lenient keeps the size limits, and no decoder call gets more than MAX_BATCH_PIXELS.
The `gpu`-marked twins at the end run the same checks on the GPU engines and decoders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import decode_rgb, jpeg_bytes
from harness.config import Config
from harness.decode import DECODERS, CpuDecoder
from harness.ops import ENGINES
from harness.pipeline import Pipeline
from harness.config import EXECUTORS
from harness.runner import run_jobs, write_jobs
from helpers import SMALL_MODEL, in_process

SMALL = dict(model="lraspp_mobilenet_v3_large", weights="synthetic", target_img_height=64, target_img_width=64)
GPU_ENGINES = [dict(ops="torch", decoder="torchvision"), dict(ops="cvcuda", decoder="nvimgcodec")]
HEIGHT, WIDTH = 32, 48  # the good images'


def with_size(data: bytes, height: int, width: int) -> bytes:
    """`data` with its baseline frame header (SOF0) claiming another size."""
    at = data.index(b"\xff\xc0")
    return data[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 9:]


def cut_in_scan(data: bytes) -> bytes:
    """`data` cut 40 bytes into its compressed data, with an end marker appended: the header whole."""
    return data[:data.index(b"\xff\xda") + 40] + b"\xff\xd9"


@pytest.fixture(scope="module")
def good(photo) -> list[bytes]:
    return [jpeg_bytes(np.ascontiguousarray(cv2.resize(photo[i * 40:], (WIDTH, HEIGHT)))) for i in range(6)]


@pytest.fixture(scope="module")
def hostile(good) -> list[tuple[bytes, str]]:
    """What the command line refuses, as bytes a library caller might pass, with a word of the reason."""
    return [
        (with_size(good[0], 65500, 65500), "too large: 65500x65500 pixels"),  # 12.9 GB if decoded
        (with_size(good[0], 20000, 20000), "too large: 20000x20000 pixels"),
        (cut_in_scan(with_size(good[0], 9000, 9000)), "is corrupt"),
        (good[1][:len(good[1]) // 2] + b"\xff\xd9", "is corrupt"),  # truncated, an end marker appended
        (good[2][:900] + bytes(range(1, 255)) * 2 + good[2][1408:], "is corrupt"),  # garbage mid-scan
        (b"hello, I am text\n", "not a JPEG image"),
    ]


@pytest.fixture(scope="module")
def cpu_pipeline() -> Pipeline:
    return Pipeline(Config(device="cpu", decoder="cpu", ops="opencv", batch_size=4, **SMALL))


def recording(real, calls: list):
    """A decoder (or a decoder class's __call__) that records each call's bytes and the pixels it decoded."""
    def decode(*args):
        out = real(*args)
        calls.append((list(args[-1]), sum(t.shape[0] * t.shape[1] for t in out if isinstance(t, torch.Tensor))))
        return out
    return decode


def spy_on_decoder(monkeypatch, pipeline: Pipeline) -> list[tuple[list[bytes], int]]:
    calls: list = []
    monkeypatch.setattr(pipeline, "decoder", recording(pipeline.decoder, calls))
    return calls


def check_hostile_batch(pipeline: Pipeline, good: list[bytes], hostile: list, monkeypatch) -> None:
    """Good images around every hostile one in one batch: the good ones come back, each hostile one is in
    `failed` with its reason, and none reaches the decoder."""
    calls = spy_on_decoder(monkeypatch, pipeline)
    batch = [good[0], *(data for data, _ in hostile[:3]), good[1], *(data for data, _ in hostile[3:]), good[2]]
    good_at = [0, 4, len(batch) - 1]
    result = pipeline.run(batch)
    assert result.done == good_at and len(result.jpegs) == 3
    assert all(decode_rgb(data).shape == (HEIGHT, WIDTH, 3) for data in result.jpegs)
    hostile_at = [i for i in range(len(batch)) if i not in good_at]
    assert [i for i, _ in result.failed] == hostile_at
    for (_, reason), (_, word) in zip(result.failed, hostile):
        assert word in reason and "\n" not in reason, reason
    assert [data for call, _ in calls for data in call] == [good[0], good[1], good[2]]  # nothing hostile decoded


def test_a_hostile_image_costs_only_itself_in_a_library_batch(cpu_pipeline, good, hostile, monkeypatch):
    check_hostile_batch(cpu_pipeline, good, hostile, monkeypatch)


def test_lenient_keeps_the_size_limits(cpu_pipeline, good, hostile, monkeypatch):
    """strict=False (--lenient) decodes a truncated file as far as it goes, never a header over the limit."""
    calls = spy_on_decoder(monkeypatch, cpu_pipeline)
    truncated = hostile[3][0]
    result = cpu_pipeline.run([good[0], hostile[0][0], truncated, hostile[1][0]], strict=False)
    assert result.done == [0, 2] and decode_rgb(result.jpegs[1]).shape == (HEIGHT, WIDTH, 3)
    assert [i for i, _ in result.failed] == [1, 3] and all("too large" in r for _, r in result.failed)
    assert [data for call, _ in calls for data in call] == [good[0], truncated]


def check_budget(pipeline: Pipeline, good: list[bytes], hostile: list, monkeypatch) -> None:
    """The rule: no decoder call gets more than MAX_BATCH_PIXELS (here two good images' worth); the batch
    runs in consecutive parts within it and its results come back in the batch's order."""
    monkeypatch.setattr("harness.pipeline.MAX_BATCH_PIXELS", 2 * HEIGHT * WIDTH)
    calls = spy_on_decoder(monkeypatch, pipeline)
    result = pipeline.run([good[0], hostile[1][0], *good[1:5]])
    assert [call for call, _ in calls] == [[good[0], good[1]], [good[2], good[3]], [good[4]]]
    assert result.done == [0, 2, 3, 4, 5] and [i for i, _ in result.failed] == [1]
    assert len(result.jpegs) == 5 and result.masks.shape[0] == 5 and len(result.overlays) == 5


def test_a_batch_over_the_pixel_budget_runs_in_parts(cpu_pipeline, good, hostile, monkeypatch):
    check_budget(cpu_pipeline, good, hostile, monkeypatch)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_runner_keeps_batches_within_the_pixel_budget(cpu_pipeline, good, tmp_path, monkeypatch, executor):
    budget = 2 * HEIGHT * WIDTH
    monkeypatch.setattr("harness.pipeline.MAX_BATCH_PIXELS", budget)
    monkeypatch.setattr("harness.runner.MAX_BATCH_PIXELS", budget)
    calls = spy_on_decoder(monkeypatch, cpu_pipeline)
    jobs = write_jobs(good[:5], tmp_path)
    result = run_jobs(cpu_pipeline, jobs, tmp_path, batch_size=5, executor=executor, on_skip=pytest.fail)
    assert result.written == 5 and sorted(p.name for p in tmp_path.glob("out_*.jpg")) == [n for _, n in jobs]
    assert [pixels for _, pixels in calls] == [budget, budget, budget // 2]


def test_lenient_files_at_the_limit_are_decoded_one_at_a_time(tmp_path, capsys, good, monkeypatch):
    """The report: --lenient, three small files whose headers claim the pixel limit and 9 good images in one
    batch ran out of memory and lost the good ones.  Scaled down to a limit of 96x96 pixels: each file at
    the limit is decoded alone, one over it is skipped as too large, and every good image is written."""
    limit = 96 * 96
    for where in ("harness.inputs.MAX_PIXELS", "harness.pipeline.MAX_BATCH_PIXELS", "harness.runner.MAX_BATCH_PIXELS"):
        monkeypatch.setattr(where, limit)
    calls: list = []
    monkeypatch.setattr(CpuDecoder, "__call__", recording(CpuDecoder.__call__, calls))
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for index in range(9):
        (folder / f"good_{index}.jpg").write_bytes(good[index % len(good)])
    for index in range(3):
        (folder / f"limit_{index}.jpg").write_bytes(cut_in_scan(with_size(good[0], 96, 96)))
    (folder / "over.jpg").write_bytes(cut_in_scan(with_size(good[0], 97, 96)))
    result = in_process(capsys, "-i", str(folder), "-o", str(out), "-b", "13", "--lenient", "--device", "cpu",
                        "-th", "64", "-tw", "64", *SMALL_MODEL)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("Skipping")]
    assert len(skipped) == 1 and "over.jpg" in skipped[0] and "too large: 96x97 pixels" in skipped[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"out_good_{i}.jpg" for i in range(9)] + [f"out_limit_{i}.jpg" for i in range(3)])
    assert max(pixels for _, pixels in calls) <= limit and [pixels for _, pixels in calls].count(limit) >= 3


# the same on the GPU --------------------------------------------------------------------------------


def gpu_pipeline(options: dict) -> Pipeline:
    if reason := ENGINES.unavailable(options["ops"]) or DECODERS.unavailable(options["decoder"]):
        pytest.skip(reason)
    return Pipeline(Config(device="cuda", batch_size=4, **options, **SMALL))


@pytest.mark.gpu
@pytest.mark.parametrize("options", GPU_ENGINES, ids=lambda o: "-".join(o.values()))
def test_a_hostile_image_costs_only_itself_on_the_gpu(good, hostile, monkeypatch, options):
    check_hostile_batch(gpu_pipeline(options), good, hostile, monkeypatch)


@pytest.mark.gpu
@pytest.mark.parametrize("options", GPU_ENGINES, ids=lambda o: "-".join(o.values()))
def test_a_batch_over_the_pixel_budget_runs_in_parts_on_the_gpu(good, hostile, monkeypatch, options):
    check_budget(gpu_pipeline(options), good, hostile, monkeypatch)
