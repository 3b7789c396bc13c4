"""End-to-end time of one batch, decode through encode, on the shipped images.

Pipeline.run returns only after encode has copied the JPEGs to the host, so the host clock that
pytest-benchmark reads around it measures the GPU work, not just its launch.  The per-stage CUDA-event
(GPU) or host-clock (CPU) times of the last round go into extra_info.
"""

from __future__ import annotations

import pytest

from harness.config import Config, has_module
from harness.inputs import sample_dir
from harness.pipeline import Pipeline

CASES = [
    pytest.param("cpu", "opencv", "lraspp_mobilenet_v3_large", id="cpu-opencv-lraspp"),
    pytest.param("cuda", "torch", "deeplabv3_resnet101", id="cuda-torch-deeplabv3", marks=pytest.mark.gpu),
    pytest.param("cuda", "cvcuda", "deeplabv3_resnet101", id="cuda-cvcuda-deeplabv3", marks=pytest.mark.gpu),
]


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("device,ops,model", CASES)
def test_batch_end_to_end(benchmark, device, ops, model, batch_size):
    if ops == "cvcuda" and not has_module("cvcuda"):
        pytest.skip("CV-CUDA (the cvcuda package) is not installed")
    config = Config(device=device, ops=ops, model=model, weights="synthetic", batch_size=batch_size)
    pipeline = Pipeline(config)
    jpeg = (sample_dir() / "astronaut.jpg").read_bytes()
    batch = [jpeg] * batch_size
    pipeline.prepare(batch_size)
    result = benchmark.pedantic(pipeline.run, args=(batch,), rounds=5, warmup_rounds=1)
    assert result.done == list(range(batch_size))
    benchmark.extra_info.update(
        device=device, ops=ops, decoder=pipeline.config.decoder, model=model, batch_size=batch_size,
        model_size=list(config.model_size), source_size=[512, 512], timer="host clock around a synchronizing call",
        stage_ms=result.timings_ms,
    )
