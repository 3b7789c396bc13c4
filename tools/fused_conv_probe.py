"""Convolutions with their BatchNorm folded in and their ReLU (and the residual addition) done by cuDNN inside
the convolution (--fuse_conv, harness.models.fuse_convolutions) against the unfused model, eager and compiled.
The profile (compile_bench.py profile) found a third of compiled inference's GPU time in the elementwise
passes this removes.  Rows at b32/520: eager with a CUDA graph, unfused and fused; compiled with a CUDA graph,
fused; each against unfused eager's logits.  Written as results records (kind "probe") that
`python -m harness.report` reads.  Usage: python3 tools/fused_conv_probe.py OUT.json"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from compile_bench import inference_case, prepared, row_flops  # noqa: E402
from harness.run_file import probe_entry, write_probe_file  # noqa: E402
from harness.timing import cuda_times_ms  # noqa: E402

ROWS = (("eager-graph", dict(cuda_graph=True)), ("eager-graph-fused", dict(cuda_graph=True, fuse_conv=True)),
        ("compile-graph-fused", dict(compile="default", cuda_graph=True, fuse_conv=True)))


def main(path: str) -> None:
    entries = []
    for model, precision in (("fcn_resnet101", "tf32"), ("deeplabv3_resnet101", "fp16")):
        x = torch.rand(32, 3, 520, 520, device="cuda")
        reference = None
        for name, options in ROWS:
            try:
                run, _, setup_seconds = prepared(name, model, precision, 32, 520, options, {})
                logits = run(x).clone()
                times = cuda_times_ms(lambda: run(x), warmup=0)
            except Exception as error:  # a probe: say what failed and go on
                print(f"{model} {precision} {name}: {error!r:.400}", flush=True)
                continue
            if reference is None:
                reference = logits
            flops = row_flops(model, 32, 520)
            entries.append(probe_entry(
                f"inference[{model}-{precision}-{name}]", inference_case(name, model, precision, 32, 520), times,
                flops=int(flops), options=options, setup_seconds=run.setup_seconds, total_setup_seconds=setup_seconds,
                max_abs_diff=float((logits - reference).abs().max()), logits_abs_max=float(reference.abs().max()),
                class_agreement=float((logits.argmax(1) == reference.argmax(1)).float().mean())))
            print(entries[-1]["name"], f"{entries[-1]['stats']['median'] * 1e3:.2f} ms", flush=True)
            run = None
            write_probe_file(path, entries, "tools/fused_conv_probe.py")


if __name__ == "__main__":
    main(sys.argv[1])
