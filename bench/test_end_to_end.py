"""End to end: one batch from JPEG bytes to JPEG bytes, with the per-stage breakdown taken inside the same
iteration (CUDA events on the pipeline's stream, one synchronization per iteration), and throughput over
a run of consecutive batches (images / wall time, not 1 / latency)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from harness import stages
from harness.benchkit import SOURCE_SIZES, Case, measure, photographs, whole_runs
from harness.config import Config
from harness.results import add
from harness.ops import ENGINES
from harness.pipeline import Pipeline
from harness.runner import EXECUTORS, run_jobs, write_jobs

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


def test_end_to_end(benchmark, bench_settings, engine, model, precision, batch_size, model_size, source):
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    datas = photographs(source, batch_size)
    timings: list[dict] = []
    warmup = 2
    info = measure(benchmark, lambda: timings.append(pipeline.run(datas).timings_ms), pipeline.device, bench_settings,
                   case("end_to_end", pipeline, engine, model, precision, batch_size, model_size, source),
                   warmup=warmup)
    if not info:
        return  # benchmarks disabled
    measured = timings[-info["rounds"]:]  # the timed rounds' (before them: the warm-up and the pilot)
    config = pipeline.config
    stage_ms = {s: float(np.median([t[s] for t in measured])) for s in stages(config.preprocess, config.postprocess)}
    stage_sum = sum(stage_ms.values())
    clock_total = float(np.median([t["total"] for t in measured]))
    end_to_end = benchmark.stats.stats.median * 1e3
    add(benchmark, executor="sequential", depth=0,  # pipeline.run: one batch, every stage in turn
        stage_ms=stage_ms, stage_sum_ms=stage_sum, clock_total_ms=clock_total, end_to_end_ms=end_to_end,
        unattributed_ms=end_to_end - stage_sum, unattributed_fraction=(end_to_end - stage_sum) / end_to_end,
        stage_fraction={s: v / end_to_end for s, v in stage_ms.items()})
    assert info["images_per_s"] > 0


def test_end_to_end_uninstrumented(benchmark, bench_settings, engine, model, precision, batch_size, model_size,
                                   source):
    """The same batch without stage events or NVTX ranges: what the instrumentation costs."""
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    datas = photographs(source, batch_size)
    measure(benchmark, lambda: pipeline.run(datas, instrumented=False), pipeline.device, bench_settings,
            case("end_to_end", pipeline, engine, model, precision, batch_size, model_size, source, "uninstrumented"))


def test_throughput(benchmark, bench_settings, engine, model, precision, batch_size, model_size, source, pytestconfig):
    pipeline = pipeline_for(engine, model, precision, batch_size, model_size)
    datas = photographs(source, batch_size)
    count = 3 if pipeline.device.type == "cpu" else THROUGHPUT_BATCHES

    def run():
        for _ in range(count):
            pipeline.run(datas)

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
