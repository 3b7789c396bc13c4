"""Compiled inference on one GPU against eager: agreement (goldens) and speed, for the record in reports/.

    python3 tools/compile_bench.py golden OUT.json [MODEL:PRECISION:SIZE ...]
                                                     compiled against eager, fp32/tf32/fp16, both models,
                                                     224 and 520 (or the rows named), on the shipped images
                                                     (synthetic weights): logits max |diff|, worst relative
                                                     diff, mask agreement, IoU
    python3 tools/compile_bench.py speed OUT.json [CASE ...]
                                                     the PyTorch backend at batch 32 (or the case's batch), one
                                                     option set per row: images/s, TFLOPS, fraction of the dense
                                                     peak, set-up seconds (compile, capture, autotuning)
    python3 tools/compile_bench.py setup OUT.json    set-up seconds of one compiled case in a fresh process
                                                     (the second run of the pair finds inductor's cache)

CUDA-event medians of 20 calls after the backend's own warm-up.  Speed rows run on random inputs, goldens on
the shipped photographs preprocessed by the torch engine on the CPU."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from harness.backends import BACKENDS
from harness.benchkit import flops_per_image
from harness.compare import compare_logits, compare_masks
from harness.config import Config
from harness.decode import DECODERS
from harness.inputs import sample_dir
from harness.models import CLASS_NAMES
from harness.ops import ENGINES
from harness.report.peaks import peak_tflops

PERSON = CLASS_NAMES.index("person")
MODELS = {"fcn_resnet101": dict(model="fcn_resnet101", aux_head=True), "deeplabv3_resnet101": {}}
#: speed rows: (name, model, precision, batch, side, options)
SPEED = [
    *[(f"fcn-tf32-{name}", "fcn_resnet101", "tf32", 32, 520, options) for name, options in (
        ("eager", {}), ("eager-graph", dict(cuda_graph=True)), ("compile", dict(compile="default")),
        ("compile-graph", dict(compile="default", cuda_graph=True)),
        ("reduce-overhead", dict(compile="reduce-overhead")),
        ("compile-graph-folded", dict(compile="default", cuda_graph=True, preprocess="folded")))],
    *[(f"deeplab-fp16-{name}", "deeplabv3_resnet101", "fp16", 32, 520, options) for name, options in (
        ("eager", {}), ("compile-graph", dict(compile="default", cuda_graph=True)),
        ("max-autotune-graph", dict(compile="max-autotune-no-cudagraphs", cuda_graph=True)))],
    *[(f"fcn-tf32-b{batch}-{name}", "fcn_resnet101", "tf32", batch, 224, options) for batch in (32, 4)
      for name, options in (("eager", {}), ("compile-graph", dict(compile="default", cuda_graph=True)))],
]


def median_ms(fn, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def backend(model: str, precision: str, **options):
    config = Config(device="cuda", ops="torch", weights="synthetic", precision=precision,
                    **{**MODELS.get(model, dict(model=model)), **options})
    return BACKENDS["pytorch"](config.resolve())


def golden(path: str, names: list[str]) -> None:
    engine = ENGINES["torch"](Config(device="cpu").resolve())
    frames = DECODERS["cpu"](torch.device("cpu"))([p.read_bytes() for p in sorted(sample_dir().glob("*.jpg"))])
    rows = []
    for side in (224, 520):
        x = engine.reformat(engine.normalize(engine.convert(engine.resize(frames, (side, side))))).cuda()
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


def speed(path: str, names: list[str]) -> None:
    gpu = torch.cuda.get_device_name(0).replace("NVIDIA ", "")
    rows = []
    for name, model, precision, batch, side, options in SPEED:
        if names and name not in names:
            continue
        torch.cuda.empty_cache()
        started = time.perf_counter()
        run = backend(model, precision, **options)
        run.prepare(batch, side, side)
        x = torch.rand(batch, 3, side, side, device="cuda") * (255 if options.get("preprocess") == "folded" else 1)
        ms = median_ms(lambda: run(x))
        flops = flops_per_image(model, side, side, MODELS.get(model, {}).get("aux_head", False)) * batch
        peak = peak_tflops(gpu, precision)
        tflops = flops / ms / 1e9
        rows.append(dict(name=name, model=model, precision=precision, batch=batch, size=side, options=options,
                         ms=ms, images_per_s=batch / ms * 1e3, tflops_per_s=tflops,
                         peak_fraction=tflops / peak if peak else None, setup_seconds=run.setup_seconds,
                         total_setup_seconds=time.perf_counter() - started))
        print(json.dumps(rows[-1]), flush=True)
        run = None  # its graphs and buffers go before the next case's
    write(path, {"gpu": gpu, "torch": torch.__version__, "rows": rows})


def setup(path: str) -> None:
    run = backend("fcn_resnet101", "tf32", compile="default", cuda_graph=True)
    run.prepare(32, 520, 520)
    write(path, {"case": "fcn-tf32-compile-graph b32/520", "setup_seconds": run.setup_seconds})


def write(path: str, result: dict) -> None:
    with open(path, "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), **result}, f, indent=1)


if __name__ == "__main__":
    {"golden": lambda: golden(sys.argv[2], sys.argv[3:]), "speed": lambda: speed(sys.argv[2], sys.argv[3:]),
     "setup": lambda: setup(sys.argv[2])}[sys.argv[1]]()
