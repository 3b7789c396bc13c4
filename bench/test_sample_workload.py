"""The work CV-CUDA's v0.15 segmentation sample was measured on, run by this pipeline: 256 baseline
1920x1080 JPEGs read from files, decoded, segmented with FCN-ResNet101 and written back as overlay files,
in steady state (one warm-up pass over all files, then timed passes), through the overlapped executor
(harness.runner), whose lanes, bound and steady rate each entry carries.  The sample's own images/s are
measured beside this project's in one device call by tools/peer_compare.sh, never stored here.

The sample ran PyTorch's defaults: float32 tensors with cuDNN's TF32 convolutions, the auxiliary head
computed.  The like-for-like case is therefore `tf32` with `aux_head` (channels-last, this harness's
default for tf32 on a GPU; `sample-work-nchw` without it); the others show what IEEE fp32, fp16 and this
harness's faster options (fused or folded preprocessing, compiled inference, fused post-processing,
downscaled blur, no auxiliary head) change.
"""

from __future__ import annotations

import pytest

from harness.benchkit import Case, measure, photographs, whole_runs
from harness.config import Config
from harness.ops import ENGINES
from harness.pipeline import Pipeline
from harness.results import add
from harness.presets import PRESETS
from harness.runner import run_jobs, write_jobs

IMAGES = 256
#: The sample's (batch size, model size) cases.  Its own images/s are not stored here: they move 5-20%
#: between machines, so a ratio holds only with both programs run in one call (tools/peer_compare.sh).
SAMPLE_CASES = [(32, 224), (32, 520), (4, 224)]
OPTIONS = PRESETS  # one set of names with tools/peer_compare.sh (harness/presets.py)


@pytest.fixture(scope="module")
def input_jobs(tmp_path_factory):
    return write_jobs(photographs("1920x1080", IMAGES), tmp_path_factory.mktemp("sample-inputs"))


def run_files(pipeline: Pipeline, jobs, out_dir, batch_size: int):
    """What the sample's main loop does: read a batch of files, run it, write each overlay to a file (here
    through the overlapped executor, the default)."""
    return run_jobs(pipeline, jobs, out_dir, batch_size)


@pytest.mark.gpu
@pytest.mark.parametrize("options", list(OPTIONS))
def test_sample_workload(benchmark, bench_settings, input_jobs, tmp_path, options, sample_case):
    batch_size, side = sample_case
    if reason := ENGINES.unavailable("cvcuda"):
        pytest.skip(reason)
    config = Config(device="cuda", ops="cvcuda", model="fcn_resnet101", weights="synthetic", batch_size=batch_size,
                    target_img_height=side, target_img_width=side, **OPTIONS[options])
    pipeline = Pipeline(config)
    pipeline.prepare(batch_size)
    runs = []
    label = f"cvcuda+{pipeline.config.decoder}+pytorch:fcn_resnet101"
    info = measure(benchmark, lambda: runs.append(run_files(pipeline, input_jobs, tmp_path, batch_size)),
                   pipeline.device, whole_runs(bench_settings),
                   Case("sample_workload", label, "cuda", config.precision, batch_size, (side, side), "1920x1080",
                        options), warmup=1, unit="run")
    if not info:
        return  # benchmarks disabled
    assert {run.written for run in runs} == {IMAGES}
    images = IMAGES / benchmark.stats.stats.median  # whole runs, the pipeline's fill included
    add(benchmark, images=IMAGES, images_per_s=images, megapixels_per_s=images * 1920 * 1080 / 1e6,
        options=OPTIONS[options], setup_seconds=pipeline.backend.setup_seconds, **runs[-1].info())
