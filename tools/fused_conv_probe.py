"""Convolutions with their BatchNorm folded in and their ReLU (and the residual addition) done by cuDNN inside
the convolution (--fuse_conv, harness.models.fuse_convolutions) against the unfused model, eager and compiled.
The profile (compile_bench.py profile) found a third of compiled inference's GPU time in the elementwise
passes this removes.  Rows at b32/520: eager with a CUDA graph, unfused and fused; compiled with a CUDA graph,
fused; each against unfused eager's logits.  (The first H100 run, reports/h100-2026-11-25-bounds, patched the
same fusion into the model here, before it became the backend option.)  Usage: python3 tools/fused_conv_probe.py
OUT.json"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from compile_bench import peak_tflops, prepared, row_flops  # noqa: E402
from harness.timing import median_cuda_ms  # noqa: E402

ROWS = (("eager-graph", dict(cuda_graph=True)), ("eager-graph-fused", dict(cuda_graph=True, fuse_conv=True)),
        ("compile-graph-fused", dict(compile="default", cuda_graph=True, fuse_conv=True)))


def main(path: str) -> None:
    gpu = torch.cuda.get_device_name(0).replace("NVIDIA ", "")
    rows = []
    for model, precision in (("fcn_resnet101", "tf32"), ("deeplabv3_resnet101", "fp16")):
        x = torch.rand(32, 3, 520, 520, device="cuda")
        reference = None
        for name, options in ROWS:
            try:
                run, _, setup_seconds = prepared(name, model, precision, 32, 520, options, {})
                logits = run(x).clone()
                ms = median_cuda_ms(lambda: run(x), warmup=0)
            except Exception as error:  # a probe: say what failed and go on
                rows.append(dict(model=model, precision=precision, name=name, error=repr(error)[:400]))
                print(json.dumps(rows[-1]), flush=True)
                continue
            if reference is None:
                reference = logits
            tflops = row_flops(model, 32, 520) / ms / 1e9
            rows.append(dict(model=model, precision=precision, name=name, ms=ms, images_per_s=32e3 / ms,
                             peak_fraction=tflops / peak_tflops(gpu, precision),
                             setup_seconds=setup_seconds,
                             max_abs_diff=float((logits - reference).abs().max()),
                             logits_abs_max=float(reference.abs().max()),
                             class_agreement=float((logits.argmax(1) == reference.argmax(1)).float().mean())))
            print(json.dumps(rows[-1]), flush=True)
            run = None
            Path(path).write_text(json.dumps({"gpu": gpu, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
