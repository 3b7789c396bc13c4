"""Compiled inference on one GPU against eager: agreement (goldens) and speed, for the record in reports/.

    python3 tools/compile_bench.py golden OUT.json [MODEL:PRECISION:SIZE ...]
                                                     compiled against eager, fp32/tf32/fp16, both models,
                                                     224 and 520 (or the rows named), on the shipped images
                                                     (synthetic weights): logits max |diff|, worst relative
                                                     diff, mask agreement, IoU
    python3 tools/compile_bench.py speed OUT.json [CASE ...]
                                                     the PyTorch backend at batch 32 (or the case's batch), one
                                                     option set per row: images/s, TFLOPS, set-up seconds
                                                     (compile, capture, autotuning), as results records that
                                                     python -m harness.report reads (kind "probe")
    python3 tools/compile_bench.py profile OUT.json [CASE ...]
                                                     where a speed case's GPU time goes (torch.profiler, 5
                                                     calls): kernel time by kind (convolutions and matmuls,
                                                     Triton's fused elementwise kernels, layout copies, other),
                                                     the convolutions' own TFLOPS, idle time, the top kernels
    python3 tools/compile_bench.py setup OUT.json    set-up seconds of one compiled case in a fresh process
                                                     (the second run of the pair finds inductor's cache)

golden and profile write documents of their own: agreement statistics (which set harness/tolerances.py) and
a kernel-time breakdown, not timed cases.  CUDA-event times of 20 calls after the backend's own warm-up.
Speed rows run on random inputs, goldens on the shipped photographs preprocessed by the torch engine on the
CPU.  Each speed row starts from a reset
dynamo (torch._dynamo.reset()), so its set-up seconds are its own compilation, or its load from inductor's
on-disk cache when an earlier row compiled the same graph with the same inductor settings.  A row's
`inductor` settings (e.g. freezing: BatchNorm folded into the convolutions' weights, weights as constants)
are patched into torch._inductor.config while it compiles."""

from __future__ import annotations

import json
import sys
import time

import torch

from harness.backends import BACKENDS
from harness.benchkit import Case, flops_per_image
from harness.compare import compare_logits, compare_masks
from harness.chain import preprocess
from harness.config import Config
from harness.resolve import resolve
from harness.decode import DECODERS
from harness.inputs import sample_dir
from harness.models import CLASS_NAMES
from harness.ops import ENGINES
from harness.run_file import probe_entry, write_probe_file
from harness.timing import cuda_times_ms, median_cuda_ms
from harness.report.peaks import peak_tflops

PERSON = CLASS_NAMES.index("person")
MODELS = {"fcn_resnet101": dict(model="fcn_resnet101", aux_head=True), "deeplabv3_resnet101": {}}
GRAPH = dict(compile="default", cuda_graph=True)
AUTOTUNE = dict(compile="max-autotune-no-cudagraphs", cuda_graph=True)  # inductor's graphs are per thread
FROZEN = {"freezing": True}
#: speed rows: (name, model, precision, batch, side, backend options, inductor settings while compiling)
SPEED = [
    *[(f"fcn-tf32-{name}", "fcn_resnet101", "tf32", 32, 520, options, inductor) for name, options, inductor in (
        ("eager", {}, {}), ("eager-graph", dict(cuda_graph=True), {}), ("compile", dict(compile="default"), {}),
        ("compile-graph", GRAPH, {}), ("reduce-overhead", dict(compile="reduce-overhead"), {}),
        ("compile-graph-folded", dict(GRAPH, preprocess="folded"), {}),
        ("compile-frozen", dict(compile="default"), FROZEN), ("compile-graph-frozen", GRAPH, FROZEN),
        ("eager-graph-fused", dict(cuda_graph=True, fuse_conv=True), {}),
        ("compile-fused", dict(compile="default", fuse_conv=True), {}),
        ("compile-graph-fused", dict(GRAPH, fuse_conv=True), {}),
        ("max-autotune-graph", dict(AUTOTUNE), {}), ("max-autotune-graph-fused", dict(AUTOTUNE, fuse_conv=True), {}))],
    *[(f"deeplab-fp16-{name}", "deeplabv3_resnet101", "fp16", 32, 520, options, inductor)
      for name, options, inductor in (
        ("eager", {}, {}), ("compile", dict(compile="default"), {}), ("compile-graph", GRAPH, {}),
        ("compile-frozen", dict(compile="default"), FROZEN), ("compile-graph-frozen", GRAPH, FROZEN),
        ("eager-graph-fused", dict(cuda_graph=True, fuse_conv=True), {}),
        ("compile-fused", dict(compile="default", fuse_conv=True), {}),
        ("compile-graph-fused", dict(GRAPH, fuse_conv=True), {}),
        ("max-autotune-graph", dict(AUTOTUNE), {}), ("max-autotune-graph-fused", dict(AUTOTUNE, fuse_conv=True), {}))],
    *[(f"fcn-tf32-b{batch}-{name}", "fcn_resnet101", "tf32", batch, 224, options, {}) for batch in (32, 4)
      for name, options in (("eager", {}), ("compile-graph", GRAPH))],
]
#: kernel kinds by name, the first match wins: inductor names its kernels after the ops they fuse
#: ("triton_poi_fused_convolution_relu_3" is an elementwise kernel); cuDNN's convolutions name their layouts
#: ("..._nhwckrsc_nhwc_...") and its layout transforms say what they convert ("nchwToNhwcKernel")
KINDS = (("Triton (fused elementwise, reductions)", ("triton",)),
         ("layout transforms and copies", ("nchwtonhwc", "nhwctonchw", "copy", "memcpy", "memset", "transpose")),
         ("convolutions and matmuls", ("xmma", "gemm", "conv", "cutlass", "cudnn", "nvjet", "implicit", "sm90")))
PROFILED_CALLS = 5





def backend(model: str, precision: str, **options):
    config = Config(device="cuda", ops="torch", weights="synthetic", precision=precision,
                    **{**MODELS.get(model, dict(model=model)), **options})
    return BACKENDS["pytorch"](resolve(config))


def golden(path: str, names: list[str]) -> None:
    engine = ENGINES["torch"](resolve(Config(device="cpu")))
    frames = DECODERS["cpu"](torch.device("cpu"))([p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))])
    rows = []
    for side in (224, 520):
        x = preprocess(engine, frames, (side, side)).cuda()
        for model in MODELS:
            for precision in ("fp32", "tf32", "fp16"):
                if names and f"{model}:{precision}:{side}" not in names:
                    continue
                eager = backend(model, precision)(x).clone()
                compiled = backend(model, precision, compile="default", cuda_graph=True)(x).clone()
                stats = compare_logits(compiled, eager, atol=1e9, rtol=1e9)
                masks = compare_masks(*[(logits.argmax(1) == PERSON).to(torch.uint8) for logits in (compiled, eager)])
                argmax = float((compiled.argmax(1) == eager.argmax(1)).float().mean())
                rows.append(dict(model=model, precision=precision, size=side, images=len(x),
                                 max_abs_diff=stats.max_abs, max_rel_diff=stats.max_rel,
                                 logits_abs_max=float(eager.abs().max()), class_agreement=argmax,
                                 mask_agreement=masks.agreement, mask_iou=masks.iou))
                print(json.dumps(rows[-1]), flush=True)
    write(path, {"what": "compile default + cuda_graph against eager, same precision", "rows": rows})


def prepared(name: str, model: str, precision: str, batch: int, side: int, options: dict, inductor: dict):
    """The row's backend, compiled (from a reset dynamo) and captured; its input; its set-up seconds."""
    torch._dynamo.reset()
    torch.cuda.empty_cache()
    started = time.perf_counter()
    with torch._inductor.config.patch(**inductor):
        run = backend(model, precision, **options)
        run.prepare(batch, side, side)
    x = torch.rand(batch, 3, side, side, device="cuda") * (255 if options.get("preprocess") == "folded" else 1)
    return run, x, time.perf_counter() - started


def row_flops(model: str, batch: int, side: int) -> float:
    return flops_per_image(model, side, side, MODELS.get(model, {}).get("aux_head", False)) * batch


def inference_case(name: str, model: str, precision: str, batch: int, side: int) -> Case:
    """A probe row as a results-record case: inference of `model`, the row's name as its variant."""
    return Case("inference", f"pytorch:{model}", "cuda", precision, batch, (side, side), "", f"probe:{name}")


def speed(path: str, names: list[str]) -> None:
    """Each row as a results record (kind "probe"): images/s, TFLOPS (the report sets them against the peak),
    set-up seconds."""
    entries = []
    for name, model, precision, batch, side, options, inductor in SPEED:
        if names and name not in names:
            continue
        run, x, total_setup = prepared(name, model, precision, batch, side, options, inductor)
        times = cuda_times_ms(lambda: run(x), warmup=0)
        entries.append(probe_entry(f"inference[{name}]", inference_case(name, model, precision, batch, side), times,
                                   flops=int(row_flops(model, batch, side)), options=options, inductor=inductor,
                                   setup_seconds=run.setup_seconds, total_setup_seconds=total_setup))
        print(entries[-1]["name"], f"{entries[-1]['stats']['median'] * 1e3:.2f} ms", flush=True)
        run = None  # its graphs and buffers go before the next case's
        write_probe_file(path, entries, "tools/compile_bench.py speed")  # each row: a time limit keeps the rest


def kind_of(kernel: str) -> str:
    lower = kernel.lower()
    return next((kind for kind, words in KINDS if any(word in lower for word in words)), "other")


def profile(path: str, names: list[str]) -> None:
    """Kernel time by kind over PROFILED_CALLS calls, against the CUDA-event time of the same calls."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    gpu = torch.cuda.get_device_name(0).replace("NVIDIA ", "")
    cases = []
    for name, model, precision, batch, side, options, inductor in SPEED:
        if name not in (names or ["fcn-tf32-compile", "deeplab-fp16-compile"]):
            continue
        run, x, _ = prepared(name, model, precision, batch, side, options, inductor)
        median_cuda_ms(lambda: run(x), runs=3, warmup=0)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with profiler(activities=[ProfilerActivity.CUDA]) as trace:
            start.record()
            for _ in range(PROFILED_CALLS):
                run(x)
            end.record()
            end.synchronize()
        wall_ms = start.elapsed_time(end) / PROFILED_CALLS
        kernels: dict[str, list[float]] = {}
        for event in trace.events():
            if event.device_type == torch.autograd.DeviceType.CUDA:
                kernels.setdefault(event.name, []).append(event.time_range.elapsed_us() / 1e3 / PROFILED_CALLS)
        by_kind: dict[str, float] = {}
        for kernel, times in kernels.items():
            by_kind[kind_of(kernel)] = by_kind.get(kind_of(kernel), 0.0) + sum(times)
        busy_ms = sum(by_kind.values())
        peak = peak_tflops(gpu, precision)
        flops = row_flops(model, batch, side)
        convolution_ms = by_kind.get("convolutions and matmuls", 0.0)
        top = sorted(kernels.items(), key=lambda item: -sum(item[1]))[:15]
        cases.append(dict(
            name=name, model=model, precision=precision, batch=batch, size=side, options=options,
            inductor=inductor, ms_per_call=wall_ms, kernel_ms_per_call=busy_ms, idle_ms_per_call=wall_ms - busy_ms,
            kinds={kind: dict(ms=ms, share=ms / wall_ms) for kind, ms in sorted(by_kind.items(), key=lambda i: -i[1])},
            tflops_per_s=flops / wall_ms / 1e9, peak_fraction=flops / wall_ms / 1e9 / peak if peak else None,
            # nearly every FLOP is a convolution's: their kernels' own rate, as if nothing else ran
            convolution_tflops_per_s=flops / convolution_ms / 1e9 if convolution_ms else None,
            convolution_peak_fraction=flops / convolution_ms / 1e9 / peak if convolution_ms and peak else None,
            top_kernels=[dict(kernel=kernel[:160], kind=kind_of(kernel), calls=len(times) // PROFILED_CALLS,
                              ms=sum(times)) for kernel, times in top]))
        case = cases[-1]
        print(f"{name}: {wall_ms:.1f} ms a call, {case['peak_fraction']:.1%} of the peak; "
              f"idle {wall_ms - busy_ms:.1f} ms; "
              + "; ".join(f"{kind} {v['ms']:.1f} ms" for kind, v in case["kinds"].items())
              + f"; convolutions alone at {case['convolution_peak_fraction'] or 0:.1%} of the peak", flush=True)
        for kernel in case["top_kernels"][:8]:
            print(f"    {kernel['ms']:6.2f} ms x{kernel['calls']:<3} {kernel['kernel'][:110]}", flush=True)
        run = None
        write(path, {"gpu": gpu, "torch": torch.__version__, "calls": PROFILED_CALLS, "cases": cases})


def setup(path: str) -> None:
    run = backend("fcn_resnet101", "tf32", compile="default", cuda_graph=True)
    run.prepare(32, 520, 520)
    write(path, {"case": "fcn-tf32-compile-graph b32/520", "setup_seconds": run.setup_seconds})


def write(path: str, result: dict) -> None:
    with open(path, "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), **result}, f, indent=1)


if __name__ == "__main__":
    {"golden": lambda: golden(sys.argv[2], sys.argv[3:]), "speed": lambda: speed(sys.argv[2], sys.argv[3:]),
     "profile": lambda: profile(sys.argv[2], sys.argv[3:]), "setup": lambda: setup(sys.argv[2])}[sys.argv[1]]()
