"""Per-stage benchmarks: each stage of each ops engine, each decoder, and inference per backend precision.

Each stage runs on inputs that the same engine produced from real photographs.  GPU time is measured as
described in harness.benchkit.TIMER_NOTE; CUDA-event durations of the same rounds are kept in extra_info.
"""

from __future__ import annotations

import pytest
import torch

from harness.benchkit import Case, measure, photographs
from harness.config import Config, has_module
from harness.decode import DECODERS
from harness.ops import ENGINES
from harness.pipeline import stack_if_uniform


CLASS = 15


def device_of(kind: str) -> torch.device:
    return torch.device("cuda", 0) if kind == "cuda" else torch.device("cpu")


def need(engine_name: str) -> None:
    if engine_name == "cvcuda" and not has_module("cvcuda"):
        pytest.skip("CV-CUDA (the cvcuda package) is not installed")


class StageInputs:
    """Every stage's input for one engine, batch and size, produced by that engine itself."""

    def __init__(self, engine_name: str, device: str, source: str, batch_size: int, model_size=(224, 224),
                 blur_mode: str = "exact"):
        need(engine_name)
        self.device = device_of(device)
        self.engine = e = ENGINES[engine_name](self.device, 27, 25.0, 90, blur_mode=blur_mode)
        decoded = DECODERS["cpu"](torch.device("cpu"))(photographs(source, batch_size))
        self.frames = stack_if_uniform(decoded).to(self.device)
        self.model_size = model_size
        self.resized = e.resize(self.frames, model_size)
        self.converted = e.convert(self.resized)
        self.normalized = e.normalize(self.converted)
        generator = torch.Generator().manual_seed(0)
        self.logits = (torch.randn(batch_size, 21, *model_size, generator=generator) * 3).to(self.device)
        self.probs = e.softmax(self.logits)
        self.masks = e.mask(self.probs, CLASS)
        self.full_masks = e.upscale(self.masks, self.frames)
        self.blurred = e.blur(self.frames)
        self.overlays = e.overlay(self.frames, self.blurred, self.full_masks)

    def call(self, stage: str):
        e = self.engine
        return {
            "resize": lambda: e.resize(self.frames, self.model_size),
            "convert": lambda: e.convert(self.resized),
            "normalize": lambda: e.normalize(self.converted),
            "reformat": lambda: e.reformat(self.normalized),
            "softmax": lambda: e.softmax(self.logits),
            "mask": lambda: e.mask(self.probs, CLASS),
            "upscale": lambda: e.upscale(self.masks, self.frames),
            "blur": lambda: e.blur(self.frames),
            "overlay": lambda: e.overlay(self.frames, self.blurred, self.full_masks),
            "encode": lambda: e.encode(self.overlays),
        }[stage]


@pytest.mark.parametrize("stage", ["resize", "convert", "normalize", "reformat", "upscale"])
def test_stage_at_model_size(benchmark, bench_settings, stage, engine, batch_size, source, model_size):
    """Stages whose cost depends on the model input size (and the source size, for resize and upscale)."""
    name, device = engine
    inputs = StageInputs(name, device, source, batch_size, model_size)
    measure(benchmark, inputs.call(stage), inputs.device, bench_settings,
            Case(stage, name, device, "fp32", batch_size, model_size, source))


@pytest.mark.parametrize("stage", ["softmax", "mask"])
def test_stage_on_logits(benchmark, bench_settings, stage, engine, batch_size, model_size):
    name, device = engine
    inputs = StageInputs(name, device, "640x480", batch_size, model_size)
    measure(benchmark, inputs.call(stage), inputs.device, bench_settings,
            Case(stage, name, device, "fp32", batch_size, model_size, "640x480"))


@pytest.mark.parametrize("stage", ["overlay", "encode"])
def test_stage_at_source_size(benchmark, bench_settings, stage, engine, batch_size, source):
    name, device = engine
    inputs = StageInputs(name, device, source, batch_size)
    measure(benchmark, inputs.call(stage), inputs.device, bench_settings,
            Case(stage, name, device, "fp32", batch_size, (224, 224), source))


@pytest.mark.parametrize("blur_mode", ["exact", "downscaled"])
def test_blur(benchmark, bench_settings, blur_mode, engine, batch_size, source):
    """The sample's 27x27 Gaussian, and the downscaled blur that gives the same look (tests/test_ops.py)."""
    name, device = engine
    inputs = StageInputs(name, device, source, batch_size, blur_mode=blur_mode)
    measure(benchmark, inputs.call("blur"), inputs.device, bench_settings,
            Case("blur", name, device, "fp32", batch_size, (224, 224), source, variant=blur_mode))


DECODER_CASES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("torchvision", id="torchvision", marks=pytest.mark.gpu),
    pytest.param("nvimgcodec", id="nvimgcodec", marks=pytest.mark.gpu),
]


@pytest.mark.parametrize("decoder", DECODER_CASES)
def test_decode(benchmark, bench_settings, decoder, batch_size, source):
    if decoder == "nvimgcodec" and not has_module("nvidia.nvimgcodec"):
        pytest.skip("nvImageCodec (nvidia-nvimgcodec) is not installed")
    device = device_of("cpu" if decoder == "cpu" else "cuda")
    run = DECODERS[decoder](device)
    datas = photographs(source, batch_size)
    measure(benchmark, lambda: run(datas), device, bench_settings,
            Case("decode", decoder, device.type, "fp32", batch_size, (224, 224), source))


@pytest.mark.parametrize("device_kind", [pytest.param("cpu", id="cpu"),
                                         pytest.param("cuda", id="cuda", marks=pytest.mark.gpu)])
def test_inference(benchmark, bench_settings, device_kind, model, precision, batch_size, model_size):
    from harness.backends import BACKENDS

    if device_kind == "cpu" and precision != "fp32":
        pytest.skip(f"{precision} inference needs a GPU")
    device = device_of(device_kind)
    config = Config(device=device_kind, ops="torch", model=model, weights="synthetic", precision=precision,
                    batch_size=batch_size)
    backend = BACKENDS["pytorch"](config, device)
    backend.prepare(batch_size, *model_size)
    x = torch.randn(batch_size, 3, *model_size, generator=torch.Generator().manual_seed(0)).to(device)
    measure(benchmark, lambda: backend(x), device, bench_settings,
            Case("inference", f"pytorch:{model}", device_kind, precision, batch_size, model_size, "640x480"))
