"""End to end: one batch from JPEG bytes to JPEG bytes, with the per-stage breakdown taken inside the same
iteration (CUDA events on the pipeline's stream, one synchronization per iteration), and throughput over
a run of consecutive batches (images / wall time, not 1 / latency).  The photographs are known good, so the
timed batches skip the library's strict libjpeg check (strict=False; the header checks stay), as the
executor does after its reader threads."""

from __future__ import annotations

import functools
import os
import time

import numpy as np
import pytest
import torch

from harness import stages
from harness.benchkit import SOURCE_SIZES, Case, measure, paired_breakdown, photographs, sleep_cycles_per_ms, \
    whole_runs
from harness.config import Config
from harness.results import add
from harness.ops import ENGINES
from harness.pipeline import Pipeline
from harness.config import EXECUTORS
from harness.runner import run_jobs, write_jobs
from harness.timing import StageClock

THROUGHPUT_BATCHES = 10


def pipeline_for(engine, model, precision, batch_size, model_size) -> Pipeline:
    """A pipeline prepared for this batch size.  Pipelines are kept across cases (building a ResNet-101
    with synthetic weights takes seconds; the three tests of a case and every batch size share one)."""
    pipeline = _pipeline(engine, model, precision, model_size)
    pipeline.prepare(batch_size)
    return pipeline


@functools.lru_cache(maxsize=None)
def _pipeline(engine, model, precision, model_size) -> Pipeline:
    name, device = engine
    if reason := ENGINES.unavailable(name):
        pytest.skip(reason)
    if device == "cpu" and precision != "fp32":
        pytest.skip(f"{precision} inference needs a GPU")
    config = Config(device=device, ops=name, model=model, weights="synthetic", precision=precision,
                    target_img_height=model_size[0], target_img_width=model_size[1])
    return Pipeline(config)


def case(stage: str, pipeline: Pipeline, engine, model, precision, batch_size, model_size, source,
         variant: str = "") -> Case:
    label = f"{engine[0]}+{pipeline.config.decoder}+pytorch:{model}"
    return Case(stage, label, engine[1], precision, batch_size, model_size, source, variant)


def slowdown(engine_name: str) -> float:
    """HARNESS_BENCH_SLOWDOWN=ENGINE:FRACTION, for checking the gate only: the instrumented end-to-end cases
    of that ops engine do FRACTION more work (a GPU sleep, or a host sleep on the CPU) under the same case name,
    a known slowdown that the gate must flag, nothing else changed."""
    name, _, fraction = os.environ.get("HARNESS_BENCH_SLOWDOWN", "").partition(":")
    return float(fraction) if name == engine_name and fraction else 0.0


def extra_work(device: torch.device, seconds: float) -> None:
    if device.type == "cuda":
        torch.cuda._sleep(int(sleep_cycles_per_ms(device) * seconds * 1e3))
    else:
        time.sleep(seconds)


def test_end_to_end(benchmark, bench_settings, engine, model, precision, batch_size, model_size, source):
    """One batch, its stage times and its total taken in the same round; the breakdown is made of per-round
    differences (benchkit.paired_breakdown)."""
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    datas = photographs(source, batch_size)
    timings: list[dict] = []
    durations: list[float] = []
    slower = slowdown(engine[0])

    def run():
        started = time.perf_counter()
        timings.append(pipeline.run(datas, strict=False).timings_ms)  # pipeline.run waits for its batch
        durations.append(time.perf_counter() - started)
        if slower and len(durations) > 5:  # sized from rounds 3-5, past the warm-up
            extra_work(pipeline.device, slower * float(np.median(durations[2:5])))

    info = measure(benchmark, run, pipeline.device, bench_settings,
                   case("end_to_end", pipeline, engine, model, precision, batch_size, model_size, source))
    if not info:
        return  # benchmarks disabled
    measured = timings[-info["rounds"]:]  # the timed rounds' (before them: the warm-up and the pilot)
    config = pipeline.config
    round_stage_ms = {s: [t[s] for t in measured] for s in stages(config.preprocess, config.postprocess)}
    add(benchmark, executor="sequential", depth=0,  # pipeline.run: one batch, every stage in turn
        clock_total_ms=float(np.median([t["total"] for t in measured])), round_stage_ms=round_stage_ms,
        **paired_breakdown(benchmark.stats.stats.data, round_stage_ms, None))
    assert info["images_per_s"] > 0


def test_end_to_end_uninstrumented(benchmark, bench_settings, engine, model, precision, batch_size, model_size,
                                   source):
    """The same batch without stage events or NVTX ranges; each round follows an instrumented twin, timed the
    same way, so that what the instrumentation costs is a per-round ratio."""
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    datas = photographs(source, batch_size)
    twins: list[float] = []

    def twin():
        clock = StageClock(pipeline.device)
        with clock.stage("round"):
            pipeline.run(datas, strict=False)
        twins.append(clock.result()["round"])

    info = measure(benchmark, lambda: pipeline.run(datas, instrumented=False, strict=False), pipeline.device,
                   bench_settings,
                   case("end_to_end", pipeline, engine, model, precision, batch_size, model_size, source,
                        "uninstrumented"), between=twin)
    if info:
        paired = twins[-info["rounds"]:]
        add(benchmark, round_paired_ms=paired, **paired_breakdown(benchmark.stats.stats.data, None, paired))


def test_throughput(benchmark, bench_settings, engine, model, precision, batch_size, model_size, source, pytestconfig):
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    datas = photographs(source, batch_size)
    count = 3 if pipeline.device.type == "cpu" else THROUGHPUT_BATCHES

    def run():
        for _ in range(count):
            pipeline.run(datas, strict=False)

    measure(benchmark, run, pipeline.device, whole_runs(bench_settings),
            case("throughput", pipeline, engine, model, precision, batch_size, model_size, source), warmup=1,
            unit="run")
    if benchmark.stats is None:
        return  # benchmarks disabled
    seconds = benchmark.stats.stats.median
    height, width = SOURCE_SIZES[source]
    images = batch_size * count / seconds
    add(benchmark, executor="sequential", depth=0,  # pipeline.run in a loop, in memory
        batches=count, images_per_s=images, megapixels_per_s=images * height * width / 1e6)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_throughput_from_files(benchmark, bench_settings, tmp_path_factory, executor, engine, model, precision,
                               batch_size, model_size, source):
    """Throughput as a directory run has it: files read, decoded, segmented, encoded and written by the
    executor (variant `files-overlapped` or `files-sequential`), with its lanes, bound and steady rate."""
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    count = 3 if pipeline.device.type == "cpu" else THROUGHPUT_BATCHES
    jobs = write_jobs(photographs(source, batch_size * count), tmp_path_factory.mktemp("throughput-in"))
    out = tmp_path_factory.mktemp("throughput-out")
    runs = []
    measure(benchmark, lambda: runs.append(run_jobs(pipeline, jobs, out, batch_size, executor=executor)),
            pipeline.device, whole_runs(bench_settings),
            case("throughput", pipeline, engine, model, precision, batch_size, model_size, source,
                 f"files-{executor}"), warmup=1, unit="run")
    assert all(run.written == len(jobs) for run in runs)
    if benchmark.stats is None:
        return  # benchmarks disabled
    images = len(jobs) / benchmark.stats.stats.median  # whole runs, the pipeline's fill included
    height, width = SOURCE_SIZES[source]
    add(benchmark, batches=count, images_per_s=images, megapixels_per_s=images * height * width / 1e6,
        **runs[-1].info())
