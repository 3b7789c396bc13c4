"""Probe: do convolutions with their batch norm folded in and their ReLU (and the residual addition) done by
cuDNN inside the convolution (torch.cudnn_convolution_relu / _add_relu) beat inductor's separate elementwise
kernels?  The profile (compile_bench.py profile) found a third of compiled inference's GPU time in those.
Rows at b32/520: eager with a CUDA graph, unfused and fused; compiled with a CUDA graph, unfused and fused;
each against unfused eager's logits.  Usage: python3 tools/fused_conv_probe.py OUT.json"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import Bottleneck

sys.path.insert(0, str(Path(__file__).parent))
from compile_bench import backend, median_ms, peak_tflops, row_flops  # noqa: E402


class ConvReLU(nn.Module):
    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        c = self.conv
        return torch.cudnn_convolution_relu(x, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)


class FusedBottleneck(nn.Module):
    def __init__(self, block: Bottleneck):
        super().__init__()
        self.conv1 = ConvReLU(fuse_conv_bn_eval(block.conv1, block.bn1))
        self.conv2 = ConvReLU(fuse_conv_bn_eval(block.conv2, block.bn2))
        self.conv3 = fuse_conv_bn_eval(block.conv3, block.bn3)
        self.downsample = (fuse_conv_bn_eval(block.downsample[0], block.downsample[1])
                           if block.downsample is not None else None)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        c = self.conv3
        return torch.cudnn_convolution_add_relu(self.conv2(self.conv1(x)), c.weight, identity, 1.0, c.bias,
                                                c.stride, c.padding, c.dilation, c.groups)


def fuse(module: nn.Module) -> nn.Module:
    """Bottlenecks replaced; in modules that run their children in order, conv+BN(+ReLU) folded (in place)."""
    for name, child in list(module._modules.items()):
        if isinstance(child, Bottleneck):
            module._modules[name] = FusedBottleneck(child)
        else:
            fuse(child)
    if isinstance(module, (nn.Sequential, IntermediateLayerGetter)):
        items = list(module._modules.items())
        for i in range(len(items) - 1):
            (name, conv), (bn_name, bn) = items[i], items[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                folded = fuse_conv_bn_eval(conv, bn)
                relu = i + 2 < len(items) and isinstance(items[i + 2][1], nn.ReLU)
                module._modules[name] = ConvReLU(folded) if relu else folded
                module._modules[bn_name] = nn.Identity()
                if relu:
                    module._modules[items[i + 2][0]] = nn.Identity()
    return module


def main(path: str) -> None:
    gpu = torch.cuda.get_device_name(0).replace("NVIDIA ", "")
    rows = []
    for model, precision in (("fcn_resnet101", "tf32"), ("deeplabv3_resnet101", "fp16")):
        x = torch.rand(32, 3, 520, 520, device="cuda")
        reference = None
        for name, options, fused in (("eager-graph", dict(cuda_graph=True), False),
                                     ("eager-graph-fused", dict(cuda_graph=True), True),
                                     ("compile-graph-fused", dict(compile="default", cuda_graph=True), True)):
            torch._dynamo.reset()
            torch.cuda.empty_cache()
            started = time.perf_counter()
            try:
                run = backend(model, precision, **options)
                if fused:
                    dtype = next(run.module.parameters()).dtype
                    fuse(run.module.float()).to(dtype=dtype, memory_format=run.memory_format)
                run.prepare(32, 520, 520)
                logits = run(x).clone()
                ms = median_ms(lambda: run(x))
            except Exception as error:  # a probe: say what failed and go on
                rows.append(dict(model=model, precision=precision, name=name, error=repr(error)[:400]))
                print(json.dumps(rows[-1]), flush=True)
                continue
            if reference is None:
                reference = logits
            tflops = row_flops(model, 32, 520) / ms / 1e9
            rows.append(dict(model=model, precision=precision, name=name, ms=ms, images_per_s=32e3 / ms,
                             peak_fraction=tflops / peak_tflops(gpu, precision),
                             setup_seconds=time.perf_counter() - started,
                             max_abs_diff=float((logits - reference).abs().max()),
                             logits_abs_max=float(reference.abs().max()),
                             class_agreement=float((logits.argmax(1) == reference.argmax(1)).float().mean())))
            print(json.dumps(rows[-1]), flush=True)
            run = None
            Path(path).write_text(json.dumps({"gpu": gpu, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
