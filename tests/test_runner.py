"""Files through a pipeline with both executors: the same overlays, the same skips, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import HarnessError
from harness.config import Config
from harness.ops.opencv_engine import OpencvEngine
from harness.ops import per_image
from harness.pipeline import Pipeline
from harness.config import EXECUTORS
from harness.runner import LANES, run_jobs


@pytest.fixture(scope="module")
def pipeline():
    config = Config(device="cpu", model="lraspp_mobilenet_v3_large", weights="synthetic", target_img_height=64,
                    target_img_width=64)
    return Pipeline(config)


@pytest.fixture
def jobs(tmp_path, sample_paths):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for index in range(11):
        path = folder / f"img_{index}.jpg"
        path.write_bytes(sample_paths[index % len(sample_paths)].read_bytes())
        paths.append(path)
    (folder / "img_3.jpg").write_bytes(b"\xff\xd8\xff truncated")  # a bad file in the middle of a batch
    (folder / "img_9.jpg").write_bytes(b"")  # and an empty one in the last, partial batch
    return [(path, f"out_{path.stem}.jpg") for path in paths]


def run_both(tmp_path, pipeline, jobs, **options) -> dict:
    outputs = {}
    for executor in EXECUTORS:
        out = tmp_path / f"out-{executor}-{len(options)}"
        out.mkdir()
        seen: list[str] = []
        result = run_jobs(pipeline, jobs, out, 3, executor=executor, on_written=lambda p: seen.append(p.name),
                          on_skip=lambda path, reason: seen.append(f"skip {path.name}"), **options)
        assert result.written == 9 and len(result.batch_seconds) == 4 and result.images == 9
        assert [path.name for path, _ in result.skipped] == ["img_3.jpg", "img_9.jpg"]
        assert seen == sorted(seen, key=lambda n: int(n.split("_")[-1].split(".")[0]))  # input order
        outputs[executor] = {p.name: p.read_bytes() for p in out.iterdir()}
        assert len(result.lanes) == 4 and set(result.lanes[0]) >= {"read", "write"}
        assert result.bound_images_per_s() > 0
    return outputs


@pytest.mark.parametrize("depth", [1, 3])
def test_overlapped_writes_the_same_overlays_as_sequential(tmp_path, pipeline, jobs, depth):
    outputs = run_both(tmp_path, pipeline, jobs, depth=depth)
    assert outputs["overlapped"] == outputs["sequential"] and len(outputs["overlapped"]) == 9  # byte for byte


def test_a_stage_failing_for_one_image_costs_only_that_image_in_both_executors(tmp_path, jobs):
    """A batch that fails in the compute lane is taken again image by image; the rest flow on."""

    class FailsOnOneWidth(OpencvEngine):
        def blur(self, frames):
            if any(f.shape[1] == 600 for f in per_image(frames)):
                raise RuntimeError("this library cannot blur 600 pixels wide")
            return super().blur(frames)

    pipeline = Pipeline(Config(device="cpu", ops="opencv", decoder="cpu", model="lraspp_mobilenet_v3_large",
                               weights="synthetic", target_img_height=64, target_img_width=64))
    widths = {path.name: _width(path) for path, _ in jobs if path.stat().st_size > 100}
    assert 600 in widths.values(), "the shipped images should include one 600 pixels wide"
    pipeline.engine = FailsOnOneWidth(pipeline.plan)
    for executor in EXECUTORS:
        out = tmp_path / f"fail-{executor}"
        out.mkdir()
        skipped = []
        result = run_jobs(pipeline, jobs, out, 3, executor=executor, on_skip=lambda p, r: skipped.append((p.name, r)))
        lost = sorted(name for name, width in widths.items() if width == 600)
        assert sorted(n for n, r in skipped if "blur stage" in r) == lost
        assert result.written == len(widths) - len(lost)


def test_a_batch_whose_every_image_fails_to_decode_is_reported_in_both_executors(tmp_path, jobs):
    """Batches of one: the batch holding the image the decoder refuses has nothing to compute or encode."""
    import torch

    from harness.decode import CpuDecoder

    class RefusesOneWidth(CpuDecoder):
        def _decode(self, datas):
            return [f"refused {d.shape[1]} wide" if isinstance(d, torch.Tensor) and d.shape[1] == 600 else d
                    for d in super()._decode(datas)]

    pipeline = Pipeline(Config(device="cpu", ops="opencv", decoder="cpu", model="lraspp_mobilenet_v3_large",
                               weights="synthetic", target_img_height=64, target_img_width=64))
    pipeline.decoder = RefusesOneWidth(pipeline.device)
    for executor in EXECUTORS:
        out = tmp_path / executor
        out.mkdir()
        skipped = []
        result = run_jobs(pipeline, jobs, out, 1, executor=executor, on_skip=lambda p, r: skipped.append((p.name, r)))
        assert ("img_8.jpg", "refused 600 wide") in skipped and result.written == 8, executor


def _width(path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.width


def test_a_failed_write_stops_the_run_in_both_executors(tmp_path, pipeline, jobs):
    for executor in EXECUTORS:
        with pytest.raises(HarnessError, match="cannot write .*missing"):
            run_jobs(pipeline, jobs, tmp_path / "missing" / "dir", 3, executor=executor)


def test_a_skip_that_raises_stops_every_lane(tmp_path, pipeline, jobs):
    def strict(path, reason):
        raise HarnessError(f"{path.name}: {reason}")

    with pytest.raises(HarnessError, match="img_3.jpg"):
        run_jobs(pipeline, jobs, tmp_path, 3, on_skip=strict)
    assert len(list(tmp_path.glob("out_*.jpg"))) <= 3  # the first batch at most: the run stopped


def test_lanes_are_named_and_bad_options_refused(tmp_path, pipeline, jobs):
    assert LANES == ("read", "decode", "compute", "encode", "write")
    with pytest.raises(HarnessError, match="executor"):
        run_jobs(pipeline, jobs, tmp_path, 3, executor="parallel")
    with pytest.raises(HarnessError, match="depth"):
        run_jobs(pipeline, jobs, tmp_path, 3, depth=0)


@pytest.mark.gpu
@pytest.mark.parametrize("options", [{}, dict(compile="default", cuda_graph=True, preprocess="folded",
                                              postprocess="fused")], ids=["eager", "compiled-graph-fused"])
def test_on_the_gpu_both_executors_write_the_same_overlays_and_skip_the_same_files(tmp_path, jobs, options):
    """The GPU twin: lanes on their own CUDA streams, handing tensors over with events; compiled, the model's
    CUDA graph (captured on the main thread) replays on the compute lane's thread and stream."""
    import numpy as np
    import torch

    from conftest import decode_rgb

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    pipeline = Pipeline(Config(device="cuda", model="lraspp_mobilenet_v3_large", weights="synthetic",
                               target_img_height=64, target_img_width=64, batch_size=3, **options))
    pipeline.prepare(3)
    outputs = {}
    for executor in EXECUTORS:
        out = tmp_path / executor
        out.mkdir()
        result = run_jobs(pipeline, jobs, out, 3, executor=executor, on_skip=lambda p, r: None)
        assert result.written == 9 and [p.name for p, _ in result.skipped] == ["img_3.jpg", "img_9.jpg"]
        assert result.lane_seconds()["compute"] > 0 and result.bound_images_per_s() > 0
        assert result.lane_cpu_seconds()["compute"] > 0 and result.process_cpu_seconds > 0
        outputs[executor] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert outputs["overlapped"].keys() == outputs["sequential"].keys()
    for name, data in outputs["overlapped"].items():
        a, b = decode_rgb(data).astype(np.int16), decode_rgb(outputs["sequential"][name]).astype(np.int16)
        assert np.abs(a - b).mean() <= 0.5, name  # the same work; nvJPEG's encode may differ in a few bits


@pytest.mark.gpu
def test_on_the_gpu_decode_and_encode_take_turns_and_a_redo_takes_their_lock(tmp_path, jobs, monkeypatch,
                                                                             nvimgcodec_module):
    """With nvImageCodec the decode and encode lanes share one reentrant lock (its binding's waits for the
    interpreter lock); every batch run again by Pipeline.run on the calling thread takes every lock, that one
    twice, and must not wait for itself."""
    import threading

    from harness.runner import _Run

    pipeline = Pipeline(Config(device="cuda", decoder="nvimgcodec", model="lraspp_mobilenet_v3_large",
                               weights="synthetic", target_img_height=64, target_img_width=64, batch_size=3))
    locks = _Run(pipeline, tmp_path, True, False, None, None, None).locks
    assert locks["encode"] is locks["decode"] and locks["compute"] is not locks["decode"]
    monkeypatch.setattr("harness.runner.MAX_BATCH_PIXELS", 1)  # every batch over it: Pipeline.run takes it
    results = []
    out = tmp_path / "out"
    out.mkdir()
    runner = threading.Thread(target=lambda: results.append(run_jobs(pipeline, jobs, out, 3,
                                                                     on_skip=lambda p, r: None)))
    runner.start()
    runner.join(300)
    assert not runner.is_alive(), "the run waits for itself"
    assert results[0].written == 9 and [p.name for p, _ in results[0].skipped] == ["img_3.jpg", "img_9.jpg"]


def test_on_the_cpu_decode_and_encode_keep_their_own_locks(tmp_path, pipeline):
    from harness.runner import _Run

    locks = _Run(pipeline, tmp_path, True, False, None, None, None).locks
    assert len({id(lock) for lock in locks.values()}) == 3


@pytest.mark.parametrize("budget", [None, 1], ids=["lanes", "every-batch-run-again"])
def test_decode_and_encode_taking_turns_write_what_the_sequential_executor_writes(tmp_path, pipeline, jobs,
                                                                                 monkeypatch, budget):
    """The shared lock as nvImageCodec runs get it, on the CPU's decoder: the same overlays and skips in input
    order, and a batch run again on the calling thread (over the pixel budget: every batch) takes the shared
    lock twice without waiting for itself."""
    import threading

    monkeypatch.setattr("harness.runner.codecs_take_turns", lambda pipeline: True)
    if budget:
        monkeypatch.setattr("harness.runner.MAX_BATCH_PIXELS", budget)
    outputs = {}
    finished = threading.Thread(target=lambda: outputs.update(run_both(tmp_path, pipeline, jobs)))
    finished.start()
    finished.join(300)
    assert not finished.is_alive(), "the run waits for itself"
    assert outputs["overlapped"] == outputs["sequential"] and len(outputs["overlapped"]) == 9


def test_warm_up_runs_the_executor_and_leaves_nothing(tmp_path, pipeline, sample_bytes, monkeypatch):
    import tempfile

    from harness.runner import warm_up

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its own: tests running beside it warm up too
    before = set(Path(tempfile.gettempdir()).glob("harness-warmup-*"))
    warm_up(pipeline, sample_bytes[:2], batches=2)
    assert set(Path(tempfile.gettempdir()).glob("harness-warmup-*")) == before


def test_the_bound_counts_only_the_lanes_work_inside_the_steady_window():
    """Three batches of 10, finishing at 1.0, 2.0 and 3.0 s; the read lane works 0-0.9, 0.9-1.9 and 1.9-2.9 s,
    so 0.1 s of batch 2's read falls before the window (1.0-3.0 s) opens.  On the GPU the compute lane's
    stream runs 0.1 s longer than its host span: the larger one counts."""
    from harness.runner import JobsResult

    result = JobsResult(batch_seconds=[1.0, 1.0, 1.0], batch_written=[10, 10, 10])
    for number, (began, ended) in enumerate([(0.0, 0.9), (0.9, 1.9), (1.9, 2.9)], start=1):
        result.spans.append(["read", number, None, "host", began, ended])
        result.spans.append(["compute", number, None, "host", ended, ended + 0.05])
        result.spans.append(["compute", number, None, "cuda", ended, ended + 0.15])
        result.spans.append(["compute", number, "inference", "cuda", ended, ended + 0.1])  # a stage: not a lane
    window = result.window_lane_seconds()
    assert window["read"] == pytest.approx(1.9) and window["compute"] == pytest.approx(0.3)
    assert result.steady_images_per_s() == pytest.approx(10.0)
    assert result.bound_images_per_s() == pytest.approx(20 / 1.9)
    info = result.info()
    assert info["bound_lane"] == "read" and info["bound_fraction"] == pytest.approx(0.95)
    one = JobsResult(batch_seconds=[2.0], batch_written=[4], spans=[["read", 1, None, "host", 0.0, 1.0]])
    assert one.bound_images_per_s() == pytest.approx(4.0) and one.steady_images_per_s() is None
