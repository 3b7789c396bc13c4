"""Per-stage benchmarks: each stage of each ops engine, each decoder, and inference per backend precision.

Each stage runs on inputs that the same engine produced from real photographs.  GPU time is measured as
described in harness.benchkit.TIMER_NOTE; CUDA-event durations of the same rounds are kept in extra_info.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch

from harness import STAGES
from harness import benchkit
from harness.benchkit import SOURCE_SIZES, Case, flops_per_image, photographs
from harness.chain import postprocess, preprocess
from harness.config import Config, channels_last_default, torch_device
from harness.resolve import resolve
from harness.decode import DECODERS
from harness.models import CLASS_NAMES
from harness.ops import ENGINES
from harness.pipeline import stack_if_uniform
from harness.results import add, gpu_seconds


CLASS = CLASS_NAMES.index(Config().class_name)


def measure(*args, **kwargs) -> dict:
    """benchkit.measure with its blocking kernel: every case here is one stage's (or chain's) GPU work, which
    the events must time without the host's launch gaps (HARNESS_BENCH_BLOCK=0 times them as launched, to
    see what the blocking kernel changes)."""
    return benchkit.measure(*args, block=os.environ.get("HARNESS_BENCH_BLOCK", "1") != "0", **kwargs)


def seconds(info: dict) -> float:
    return gpu_seconds(info.get("cuda_event_median_ms"), info["median_s"])


def need(engine_name: str) -> None:
    if reason := ENGINES.unavailable(engine_name):
        pytest.skip(reason)


def _output_of(stage: str) -> functools.cached_property:
    """A StageInputs attribute holding `stage`'s output, computed the first time it is read."""
    return functools.cached_property(lambda inputs: inputs.call(stage)())


class StageInputs:
    """Every stage's input for one engine, batch and size, produced by that engine itself, each made the
    first time a case asks for it (a CPU engine's full-size blur is not computed for a resize case)."""

    def __init__(self, engine_name: str, device: str, source: str, batch_size: int, model_size=(224, 224),
                 blur_mode: str = "exact"):
        need(engine_name)
        # the sample's blur, quality 90; "fused": the engine's mask from the logits and its blur_overlay stage
        plan = resolve(Config(device=device, blur_mode=blur_mode, postprocess="fused"))
        self.device = plan.device
        self.engine = ENGINES[engine_name](plan)
        self.source, self.batch_size, self.model_size = source, batch_size, model_size

    @functools.cached_property
    def frames(self):
        decoded = DECODERS["cpu"](torch.device("cpu"))(photographs(self.source, self.batch_size))
        return stack_if_uniform(decoded).to(self.device)

    # Each stage's output, made once from the expression call() times: the next stage's input.
    resized = _output_of("resize")
    converted = _output_of("convert")
    normalized = _output_of("normalize")

    @functools.cached_property
    def logits(self):
        generator = torch.Generator().manual_seed(0)
        return (torch.randn(self.batch_size, 21, *self.model_size, generator=generator) * 3).to(self.device)

    probs = _output_of("softmax")
    masks = _output_of("mask")
    full_masks = _output_of("upscale")
    blurred = _output_of("blur")
    overlays = _output_of("overlay")

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
            "blur_overlay": lambda: e.blur_overlay(self.frames, self.masks),
            "encode": lambda: e.encode(self.overlays),
        }[stage]

    def preprocess(self, fused: bool):
        """Resize through reformat as the pipeline runs them: the four stages, or CV-CUDA's fused kernel plus
        the normalization (harness.chain)."""
        mode = "fused" if fused else "staged"
        return lambda: preprocess(self.engine, self.frames, self.model_size, mode)

    def postprocess(self, fused: bool = False):
        """Softmax through overlay, as the pipeline runs them (--postprocess staged or fused)."""
        mode = "fused" if fused else "staged"
        return lambda: postprocess(self.engine, self.frames, self.logits, CLASS, mode)[1]


@functools.lru_cache(maxsize=2)
def stage_inputs(*args) -> StageInputs:
    """Consecutive cases share their inputs (the stage parameter varies fastest); two are kept."""
    return StageInputs(*args)


#: The cases of every stage an engine runs on its own, from the one stage table (harness.STAGES), by what their
#: cost depends on; the blur has its own cases (its two modes), decode and inference theirs below.
ON_LOGITS = ("softmax", "mask")
AT_SOURCE_SIZE = ("overlay", "blur_overlay", "encode")
AT_MODEL_SIZE = tuple(s for s in STAGES if s not in ("decode", "preprocess", "inference", "blur")
                      + ON_LOGITS + AT_SOURCE_SIZE)


@pytest.mark.parametrize("stage", AT_MODEL_SIZE)
def test_stage_at_model_size(benchmark, bench_settings, stage, engine, batch_size, source, model_size):
    """Stages whose cost depends on the model input size (and the source size, for resize and upscale)."""
    name, device = engine
    inputs = stage_inputs(name, device, source, batch_size, model_size, "exact")
    measure(benchmark, inputs.call(stage), inputs.device, bench_settings,
            Case(stage, name, device, "fp32", batch_size, model_size, source))


@pytest.mark.parametrize("stage", ON_LOGITS)
def test_stage_on_logits(benchmark, bench_settings, stage, engine, batch_size, model_size):
    name, device = engine
    inputs = stage_inputs(name, device, "640x480", batch_size, model_size, "exact")
    measure(benchmark, inputs.call(stage), inputs.device, bench_settings,
            Case(stage, name, device, "fp32", batch_size, model_size, "640x480"))


@pytest.mark.parametrize("stage", AT_SOURCE_SIZE)
def test_stage_at_source_size(benchmark, bench_settings, stage, engine, batch_size, source):
    name, device = engine
    inputs = stage_inputs(name, device, source, batch_size, (224, 224), "exact")
    measure(benchmark, inputs.call(stage), inputs.device, bench_settings,
            Case(stage, name, device, "fp32", batch_size, (224, 224), source))


@pytest.mark.parametrize("blur_mode", ["exact", "downscaled"])
def test_blur(benchmark, bench_settings, blur_mode, engine, batch_size, source):
    """The sample's 27x27 Gaussian, and the downscaled blur that gives the same look (tests/test_ops.py)."""
    name, device = engine
    inputs = stage_inputs(name, device, source, batch_size, (224, 224), blur_mode)
    measure(benchmark, inputs.call("blur"), inputs.device, bench_settings,
            Case("blur", name, device, "fp32", batch_size, (224, 224), source, variant=blur_mode))


DECODER_CASES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("torchvision", id="torchvision", marks=pytest.mark.gpu),
    pytest.param("nvimgcodec", id="nvimgcodec", marks=pytest.mark.gpu),
]


@pytest.mark.parametrize("decoder", DECODER_CASES)
def test_decode(benchmark, bench_settings, decoder, batch_size, source):
    if reason := DECODERS.unavailable(decoder):
        pytest.skip(reason)
    device = torch_device("cpu" if decoder == "cpu" else "cuda", 0)
    run = DECODERS[decoder](device)
    datas = photographs(source, batch_size)
    measure(benchmark, lambda: run(datas), device, bench_settings,
            Case("decode", decoder, device.type, "fp32", batch_size, (224, 224), source))


INFERENCE_OPTIONS = {"": {}, "nchw": dict(channels_last=False), "channels_last": dict(channels_last=True),
                     "no_cudnn_benchmark": dict(cudnn_benchmark=False), "cuda_graph": dict(cuda_graph=True),
                     "compiled": dict(compile="default", cuda_graph=True),
                     "compiled_fused": dict(compile="default", cuda_graph=True, fuse_conv=True)}


@pytest.mark.parametrize("options", [pytest.param(k, id=k or "default") for k in INFERENCE_OPTIONS])
def test_inference(benchmark, bench_settings, options, device_kind, model, precision, batch_size, model_size):
    """The PyTorch backend alone, with its defaults and with each option that changes its speed."""
    from harness.backends import BACKENDS

    if device_kind == "cpu" and (precision != "fp32" or options):
        pytest.skip(f"{precision} inference needs a GPU" if precision != "fp32" else "GPU options")
    memory_format = INFERENCE_OPTIONS[options].get("channels_last")
    if memory_format is not None and memory_format == channels_last_default(device_kind, precision):
        pytest.skip(f"{options} is the default for {precision} on {device_kind}: the default case measures it")
    plan = resolve(Config(device=device_kind, ops="torch", model=model, weights="synthetic", precision=precision,
                  batch_size=batch_size, **INFERENCE_OPTIONS[options]))
    device = plan.device
    backend = BACKENDS["pytorch"](plan)
    backend.prepare(batch_size, *model_size)
    x = torch.randn(batch_size, 3, *model_size, generator=torch.Generator().manual_seed(0)).to(device)
    info = measure(benchmark, lambda: backend(x), device, bench_settings,
                   Case("inference", f"pytorch:{model}", device_kind, precision, batch_size, model_size, "640x480",
                        options))
    if info:  # what the report sets against the GPU's tensor-core (or FP32) peak
        flops = flops_per_image(model, *model_size) * batch_size
        add(benchmark, flops=flops, tflops_per_s=flops / seconds(info) / 1e12, setup_seconds=backend.setup_seconds)


def floor_info(benchmark, info: dict, floor_bytes: int) -> None:
    """The bytes a stage chain cannot avoid moving, and the bandwidth it achieved on them: the report
    divides by the copy bandwidth of the same run (test_copy_bandwidth) for the fraction of the floor."""
    if info:
        add(benchmark, floor_bytes=floor_bytes, floor_gb_per_s=floor_bytes / seconds(info) / 1e9)


@pytest.mark.parametrize("variant", ["staged", "fused"])
def test_preprocess_chain(benchmark, bench_settings, variant, gpu_engine, batch_size, source, model_size):
    """Resize through reformat.  Floor: read the decoded frames once, write the float32 NCHW batch once."""
    name, device = gpu_engine
    if variant == "fused" and name != "cvcuda":
        pytest.skip("the fused preprocessing is CV-CUDA's operator")
    inputs = stage_inputs(name, device, source, batch_size, model_size, "exact")
    info = measure(benchmark, inputs.preprocess(variant == "fused"), inputs.device, bench_settings,
                   Case("preprocess", name, device, "fp32", batch_size, model_size, source, variant))
    height, width = SOURCE_SIZES[source]
    floor_info(benchmark, info, batch_size * (height * width * 3 + 3 * model_size[0] * model_size[1] * 4))


@pytest.mark.parametrize("blur_mode", ["exact", "downscaled", "fused"])
def test_postprocess_chain(benchmark, bench_settings, blur_mode, gpu_engine, batch_size, source, model_size):
    """Softmax through overlay (fused: --postprocess fused, with the exact blur).  Floor: read the float32
    logits and the frames once, write the overlays once."""
    name, device = gpu_engine
    fused = blur_mode == "fused"
    inputs = stage_inputs(name, device, source, batch_size, model_size, "exact" if fused else blur_mode)
    info = measure(benchmark, inputs.postprocess(fused), inputs.device, bench_settings,
                   Case("postprocess", name, device, "fp32", batch_size, model_size, source, blur_mode))
    height, width = SOURCE_SIZES[source]
    floor_info(benchmark, info, batch_size * (21 * model_size[0] * model_size[1] * 4 + 2 * height * width * 3))


COPY_BYTES = 1 << 30


@pytest.mark.gpu
def test_copy_bandwidth(benchmark, bench_settings):
    """Device-to-device copy of 1 GiB: the memory bandwidth the floors are measured against (bytes read
    plus bytes written, per second)."""
    device = torch_device("cuda", 0)
    src = torch.ones(COPY_BYTES, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    info = measure(benchmark, lambda: dst.copy_(src), device, bench_settings,
                   Case("d2d_copy", "torch", "cuda", "", 1, (0, 0), ""))
    if info:
        add(benchmark, bytes_moved=2 * COPY_BYTES, copy_gb_per_s=2 * COPY_BYTES / seconds(info) / 1e9)
