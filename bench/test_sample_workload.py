"""The work CV-CUDA's v0.15 segmentation sample was measured on, run by this pipeline: 256 baseline
1920x1080 JPEGs read from files, decoded, segmented with FCN-ResNet101 and written back as overlay files,
in steady state (one warm-up pass over all files, then timed passes).  File reads and writes run on
their own threads while the pipeline works (harness.runner; the recorded run of 2026-11-24 predates this:
its reads and writes were sequential).  Each case's images/s is set
against the sample's measured images/s on the H100 (benchmark issue) in extra_info.

The sample ran PyTorch's defaults: float32 tensors with cuDNN's TF32 convolutions, the auxiliary head
computed.  The like-for-like case is therefore `tf32` with `aux_head` (channels-last, this harness's
default for tf32 on a GPU; `sample-work-nchw` without it); the others show what IEEE fp32, fp16 and this
harness's faster options (fused preprocessing, downscaled blur, no auxiliary head) change.
"""

from __future__ import annotations

import pytest

from harness.benchkit import Case, measure, photographs
from harness.config import Config
from harness.ops import ENGINES
from harness.pipeline import Pipeline
from harness.results import add
from harness.runner import run_jobs

IMAGES = 256
#: CV-CUDA v0.15 segmentation sample, PyTorch backend, on the H100 of this project (the issue's numbers).
SAMPLE_IMAGES_PER_S = {(32, 224): 624.0, (32, 520): 173.0, (4, 224): 200.0}
OPTIONS = {
    "sample-work": dict(precision="tf32", aux_head=True),
    "ieee-fp32": dict(precision="fp32", aux_head=True),
    "fp16": dict(precision="fp16", aux_head=True),
    "fp16-fused-downscaled": dict(precision="fp16", aux_head=True, preprocess="fused", blur_mode="downscaled"),
    "fp16-fused-downscaled-noaux": dict(precision="fp16", preprocess="fused", blur_mode="downscaled"),
    "sample-work-nchw": dict(precision="tf32", aux_head=True, channels_last=False),
}


@pytest.fixture(scope="module")
def input_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample-inputs")
    paths = []
    for index, data in enumerate(photographs("1920x1080", IMAGES)):
        path = folder / f"image_{index:04d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


def run_files(pipeline: Pipeline, paths, out_dir, batch_size: int) -> int:
    """What the sample's main loop does: read a batch of files, run it, write each overlay to a file."""
    jobs = [(path, f"out_{path.stem}.jpg") for path in paths]
    return run_jobs(pipeline, jobs, out_dir, batch_size).written


@pytest.mark.gpu
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("sample_case", [pytest.param(k, id=f"b{k[0]}-m{k[1]}") for k in SAMPLE_IMAGES_PER_S])
def test_sample_workload(benchmark, bench_settings, input_files, tmp_path, options, sample_case):
    batch_size, side = sample_case
    if reason := ENGINES.unavailable("cvcuda"):
        pytest.skip(reason)
    config = Config(device="cuda", ops="cvcuda", model="fcn_resnet101", weights="synthetic", batch_size=batch_size,
                    target_img_height=side, target_img_width=side, **OPTIONS[options])
    pipeline = Pipeline(config)
    pipeline.prepare(batch_size)
    written: list[int] = []
    label = f"cvcuda+{pipeline.config.decoder}+pytorch:fcn_resnet101"
    info = measure(benchmark, lambda: written.append(run_files(pipeline, input_files, tmp_path, batch_size)),
                   pipeline.device, {**bench_settings, "rounds": 3},
                   Case("sample_workload", label, "cuda", config.precision, batch_size, (side, side), "1920x1080",
                        options), warmup=1)
    if not info:
        return  # benchmarks disabled
    assert set(written) == {IMAGES}
    images = IMAGES / benchmark.stats.stats.median
    sample = SAMPLE_IMAGES_PER_S[sample_case]
    add(benchmark, images=IMAGES, images_per_s=images, megapixels_per_s=images * 1920 * 1080 / 1e6,
        sample_images_per_s=sample, speedup_over_sample=images / sample, options=OPTIONS[options])
