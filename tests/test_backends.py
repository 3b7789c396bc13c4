"""One contract for every inference backend available here, and each backend against PyTorch on the
shipped images at two resolutions (logits and masks, with Polygraphy-style reports on failure)."""

from __future__ import annotations

import pytest
import torch

from harness.backends import BACKENDS
from harness.compare import compare_logits, compare_masks, save_mask_diff
from harness.chain import preprocess
from harness.config import Config
from harness.resolve import resolve
from harness.inputs import sample_dir
from harness.models import CLASS_NAMES, build_model
from harness.ops import ENGINES
from harness.tolerances import COMPILED_TOLERANCE, FUSED_CONV_TOLERANCE, LOGITS_TOLERANCE, MASK_TOLERANCE

SMALL = "lraspp_mobilenet_v3_large"
CLASS = CLASS_NAMES.index("person")


def ort_has(provider: str) -> bool:
    if BACKENDS.unavailable("onnxruntime"):
        return False
    import onnxruntime

    return provider in onnxruntime.get_available_providers()


needs_trt = pytest.mark.skipif(bool(BACKENDS.unavailable("tensorrt")), reason=str(BACKENDS.unavailable("tensorrt")))
needs_ort_cuda = pytest.mark.skipif(not ort_has("CUDAExecutionProvider"),
                                    reason="onnxruntime-gpu (ONNX Runtime's CUDA provider) is not installed")
COMPILED = {"compile": "default"}
GRAPHED = {"compile": "default", "cuda_graph": True}
CASES = [
    pytest.param("pytorch", "cpu", "fp32", {}, id="pytorch-cpu-fp32"),
    pytest.param("pytorch", "cpu", "fp32", COMPILED, id="pytorch-compiled-cpu-fp32"),
    pytest.param("pytorch", "cpu", "fp32", {"fuse_conv": True}, id="pytorch-fused-cpu-fp32"),
    pytest.param("onnxruntime", "cpu", "fp32", {}, id="onnxruntime-cpu-fp32"),
    pytest.param("pytorch", "cuda", "fp32", {}, id="pytorch-cuda-fp32", marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "tf32", {}, id="pytorch-cuda-tf32", marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "fp16", {}, id="pytorch-cuda-fp16", marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "fp16", {"cuda_graph": True}, id="pytorch-graphed-cuda-fp16",
                 marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "tf32", COMPILED, id="pytorch-compiled-cuda-tf32", marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "fp16", GRAPHED, id="pytorch-compiled-graphed-cuda-fp16", marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "tf32", {"fuse_conv": True}, id="pytorch-fused-cuda-tf32", marks=pytest.mark.gpu),
    pytest.param("pytorch", "cuda", "fp16", {**GRAPHED, "fuse_conv": True},
                 id="pytorch-fused-compiled-graphed-cuda-fp16",
                 marks=pytest.mark.gpu),
    pytest.param("onnxruntime", "cuda", "fp32", {}, id="onnxruntime-cuda-fp32",
                 marks=[pytest.mark.gpu, needs_ort_cuda]),
    pytest.param("tensorrt", "cuda", "fp32", {}, id="tensorrt-cuda-fp32", marks=[pytest.mark.gpu, needs_trt]),
    pytest.param("tensorrt", "cuda", "fp16", {}, id="tensorrt-cuda-fp16", marks=[pytest.mark.gpu, needs_trt]),
]


def make_backend(backend: str, device: str, precision: str, cache: str, model: str = SMALL, **changes):
    plan = resolve(Config(**{"backend": backend, "device": device, "precision": precision, "model": model,
                     "weights": "synthetic", "cache_dir": cache, "ops": "torch", **changes}))
    return BACKENDS[backend](plan)


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("harness-cache"))


@pytest.fixture(scope="session")
def batches():
    """The shipped images preprocessed once on the CPU (torch engine), at the two model sizes."""
    engine = ENGINES["torch"](resolve(Config(device="cpu")))
    from harness.decode import CpuDecoder

    frames = CpuDecoder(torch.device("cpu"))([p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))])
    return {size: preprocess(engine, frames, size) for size in ((224, 224), (520, 520))}


@pytest.mark.parametrize("backend,device,precision,options", CASES)
def test_backend_contract(backend, device, precision, options, cache, batches):
    """The batch shapes are test_backend_agrees_with_pytorch's (all five shipped images at each size), so
    that a compiled backend's graphs come from inductor's cache there instead of compiling twice."""
    x = batches[(224, 224)].to("cuda" if device == "cuda" else "cpu")
    count = len(x)
    runner = make_backend(backend, device, precision, cache, **options)
    identity = runner.identity()
    assert identity["backend"] == backend and identity["precision"] == precision
    assert all(identity[name] == value for name, value in options.items())
    assert identity["weights_sha256"] == build_model(SMALL, "synthetic").weights_digest
    runner.prepare(count, 224, 224)
    assert runner.setup_seconds > 0
    full = runner(x).clone()
    assert full.shape == (count, 21, 224, 224) and full.dtype == torch.float32 and full.device.type == device
    assert full.is_contiguous(), "logits are NCHW-contiguous whatever memory format the model ran in"
    assert torch.isfinite(full).all()
    assert torch.equal(runner(x), full), "the same input must give the same logits"
    tolerance = LOGITS_TOLERANCE[precision]
    short = count - 1
    partial = runner(x[:short]).clone()  # the last, partial batch of a run: dynamic batch axis, or padded
    assert partial.shape[0] == short and compare_logits(partial, full[:short], **tolerance).passed
    padded_runner = make_backend(backend, device, precision, cache, partial_batch="pad", **options)
    padded_runner.prepare(count, 224, 224)
    padded = padded_runner(x[:short])  # padded with zeros to the full batch, the padding's results dropped
    assert padded.shape[0] == short and compare_logits(padded, full[:short], **tolerance).passed
    other = runner(batches[(520, 520)].to(x.device))  # a new size prepares again
    assert other.shape == (count, 21, 520, 520)


@pytest.mark.parametrize("device,precision", [
    ("cpu", "fp32"), pytest.param("cuda", "fp32", marks=pytest.mark.gpu),
    pytest.param("cuda", "tf32", marks=pytest.mark.gpu)])
def test_the_model_runs_under_its_precision_tf32_switches(device, precision, cache, batches):
    """fp32 is IEEE and tf32 is TF32 for convolutions and matmuls alike (inductor's max-autotune turns 1x1
    convolutions into matmuls), whatever the process had set; the process's switches come back afterwards."""
    runner = make_backend("pytorch", device, precision, cache)
    seen = []
    runner.module.register_forward_hook(lambda *_: seen.append(
        (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)))
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    process = precision == "fp32"  # the process's own setting: the opposite of the run's
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = process
    try:
        runner(batches[(224, 224)][:1].to(device))
        after = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    assert seen and set(seen) == {(precision == "tf32",) * 2}  # every call, the warm-up too
    assert after == (process, process)


@pytest.mark.parametrize("size", [(224, 224), (520, 520)], ids=["224", "520"])
@pytest.mark.parametrize("backend,device,precision,options", [c for c in CASES if c.id != "pytorch-cpu-fp32"])
def test_backend_agrees_with_pytorch(backend, device, precision, options, size, cache, batches, tmp_path):
    """Candidates on the GPU are compared with ONNX Runtime on the CPU, ONNX graphs with PyTorch on the CPU."""
    x = batches[size]
    reference_backend = "onnxruntime" if backend == "pytorch" else "pytorch"
    reference = make_backend(reference_backend, "cpu", "fp32", cache)(x).clone()
    candidate = make_backend(backend, device, precision, cache, **options)(x.to(device)).cpu()
    stats = compare_logits(candidate, reference, **LOGITS_TOLERANCE[precision])
    masks = [(logits.argmax(1) == CLASS).to(torch.uint8) for logits in (candidate, reference)]
    mask_stats = compare_masks(*masks)
    limits = MASK_TOLERANCE[precision]
    report = (f"{backend}/{device}/{precision} against {reference_backend}/cpu/fp32 at {size}:\n"
              f"{stats.report()}\n{mask_stats.report()}")
    print(report)
    masks_ok = mask_stats.agreement >= limits["agreement"] and mask_stats.iou >= limits["iou"]
    if not (stats.passed and masks_ok):
        diff = save_mask_diff(tmp_path / "mask-diff.png", *masks)
        pytest.fail(f"{report}\n[E] mask disagreement picture (red: candidate only, blue: reference only): {diff}")


@pytest.mark.parametrize("model,precision,size", [
    pytest.param(SMALL, "fp32", (224, 224), id="cpu-lraspp-fp32-224"),
    pytest.param("fcn_resnet101", "tf32", (520, 520), id="fcn-tf32-520", marks=pytest.mark.gpu),
    pytest.param("deeplabv3_resnet101", "fp16", (224, 224), id="deeplabv3-fp16-224", marks=pytest.mark.gpu),
])
def test_compiled_agrees_with_eager(model, precision, size, cache, batches):
    """The golden check of compiled inference: the same model at the same precision, eager and compiled (in a
    CUDA graph on a GPU), on the shipped images; bounds measured on the H100 (harness.tolerances)."""
    device = "cpu" if precision == "fp32" and model == SMALL else "cuda"
    options = {"compile": "default", "cuda_graph": device == "cuda"}
    x = batches[size].to(device)
    made = [make_backend("pytorch", device, precision, cache, model, **changes) for changes in ({}, options)]
    eager, compiled = (backend(x).clone().cpu() for backend in made)
    limits = COMPILED_TOLERANCE[precision]
    stats = compare_logits(compiled, eager, atol=limits["atol"], rtol=0)
    mask_stats = compare_masks(*[(logits.argmax(1) == CLASS).to(torch.uint8) for logits in (compiled, eager)])
    print(f"compiled against eager, {model} {precision} {size}:\n{stats.report()}\n{mask_stats.report()}")
    assert stats.passed
    assert mask_stats.agreement >= limits["agreement"] and mask_stats.iou >= limits["iou"]


def with_batchnorm_statistics(model: str, folder, aux_head: bool = False) -> str:
    """A state dict of `model` whose BatchNorms have running means, variances, scales and shifts away from
    the synthetic weights' 0, 1, 1, 0 (with those, folding them would be nearly an identity): its path."""
    module = build_model(model, "synthetic", aux_head=aux_head).module
    generator = torch.Generator().manual_seed(0)

    def uniform(like: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return torch.rand(like.shape, generator=generator) * (high - low) + low

    for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.copy_(uniform(bn.running_mean, -0.2, 0.2))
        bn.running_var.copy_(uniform(bn.running_var, 0.8, 1.25))
        bn.weight.data.mul_(uniform(bn.weight, 0.8, 1.2))  # the synthetic scales keep activations in range
    path = folder / f"{model}-bn-statistics.pt"
    torch.save(module.state_dict(), path)
    return str(path)


@pytest.mark.parametrize("model,precision,size,options", [
    pytest.param("deeplabv3_resnet101", "fp32", (224, 224), {}, id="cpu-deeplabv3-fp32-224", marks=pytest.mark.slow),
    pytest.param("fcn_resnet101", "fp32", (224, 224), {"aux_head": True, "preprocess": "folded", "weights": "bn"},
                 id="cpu-fcn-aux-folded-bn-statistics-fp32-224", marks=pytest.mark.slow),
    pytest.param("deeplabv3_resnet101", "fp32", (224, 224), {}, id="deeplabv3-fp32-224", marks=pytest.mark.gpu),
    pytest.param("fcn_resnet101", "tf32", (520, 520), {"aux_head": True}, id="fcn-aux-tf32-520", marks=pytest.mark.gpu),
    pytest.param("deeplabv3_resnet101", "fp16", (520, 520), GRAPHED, id="deeplabv3-fp16-520-compiled-graphed",
                 marks=pytest.mark.gpu),
    pytest.param("fcn_resnet101", "fp16", (97, 131), {}, id="fcn-fp16-97x131", marks=pytest.mark.gpu),
])
def test_fused_convolutions_agree_with_unfused(model, precision, size, options, request, cache, batches, tmp_path):
    """--fuse_conv: no BatchNorm is left (the folded-normalization stem's included), every ResNet block is
    fused, and the logits are those of the same backend without it within the measured bounds
    (harness.tolerances.FUSED_CONV_TOLERANCE), also with BatchNorm statistics away from 0 and 1."""
    from harness.models import FusedBottleneck

    if options.get("weights") == "bn":
        options = {**options, "weights": with_batchnorm_statistics(model, tmp_path, options.get("aux_head", False))}
    device = "cpu" if request.node.callspec.id.startswith("cpu-") else "cuda"
    x = batches.get(size, batches[(224, 224)])[:2 if device == "cpu" else None]
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear").to(device)  # an odd size too
    made = [make_backend("pytorch", device, precision, cache, model, **options, **changes)
            for changes in ({}, {"fuse_conv": True})]
    unfused, fused = (backend(x).clone().cpu() for backend in made)
    modules = list(made[1].module.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in modules)
    assert sum(isinstance(m, FusedBottleneck) for m in modules) == 33  # ResNet-101: 3 + 4 + 23 + 3 blocks
    limits = FUSED_CONV_TOLERANCE[precision]
    stats = compare_logits(fused, unfused, atol=limits["atol"], rtol=0)
    mask_stats = compare_masks(*[(logits.argmax(1) == CLASS).to(torch.uint8) for logits in (fused, unfused)])
    print(f"fused against unfused, {model} {precision} {size} {options} on {device}:\n{stats.report()}\n"
          f"{mask_stats.report()}")
    assert stats.passed
    assert mask_stats.agreement >= limits["agreement"] and mask_stats.iou >= limits["iou"]


COMPILE_ONCE = """
import json, sys
import torch
from torch._dynamo.utils import counters
from harness.backends import BACKENDS
from harness.config import Config
from harness.resolve import resolve
plan = resolve(Config(device="cpu", model="lraspp_mobilenet_v3_large", weights="synthetic", compile="default",
              cache_dir=sys.argv[1]))
backend = BACKENDS["pytorch"](plan)
backend.prepare(2, 64, 64)
print(json.dumps({"setup_seconds": backend.setup_seconds, "hits": counters["inductor"]["fxgraph_cache_hit"],
                  "misses": counters["inductor"]["fxgraph_cache_miss"]}))
"""


def test_a_second_process_loads_the_compiled_model_from_the_cache(tmp_path):
    """--compile keeps inductor's caches under --cache_dir: a second process with the same shapes compiles
    nothing (its FX graph comes from the cache)."""
    import json
    import subprocess
    import sys

    def once() -> dict:
        done = subprocess.run([sys.executable, "-c", COMPILE_ONCE, str(tmp_path)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = once()
    assert first["misses"] >= 1 and any((tmp_path / "inductor").iterdir())
    second = once()
    print(f"set-up: first process {first['setup_seconds']:.1f} s, second {second['setup_seconds']:.1f} s")
    assert second["misses"] == 0 and second["hits"] >= 1


@pytest.mark.parametrize("backend", ["pytorch", "onnxruntime"])
def test_folded_normalization_in_every_backend(backend, cache, batches):
    """--preprocess folded: the backend's model (and so its ONNX export) takes raw 0..255 pixels and gives the
    logits the unfolded model gives on normalized ones."""
    from harness.ops import IMAGENET_MEAN, IMAGENET_STD

    normalized = batches[(224, 224)][:2]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    raw = (normalized * std + mean) * 255
    reference = make_backend("pytorch", "cpu", "fp32", cache)(normalized).clone()
    folded = make_backend(backend, "cpu", "fp32", cache, preprocess="folded")
    assert folded.identity()["folded_normalization"] is True
    stats = compare_logits(folded(raw), reference, **LOGITS_TOLERANCE["fp32"])
    assert stats.passed, stats.report()
