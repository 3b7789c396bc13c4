"""The PyTorch backend: torchvision's segmentation models in eval and inference mode.

Precision: fp32 is IEEE float32 throughout (cuDNN's TF32 convolutions, on by default in PyTorch, are
switched off so that fp32 means what it says); tf32 keeps float32 tensors but lets cuDNN use TF32 tensor
cores; fp16 runs the model in half precision.  Logits come back as float32 in every case.
"""

from __future__ import annotations

import torch

from harness.backends import BACKENDS, Backend


@BACKENDS.register("pytorch")
class PytorchBackend(Backend):
    name = "pytorch"
    default_model = "deeplabv3_resnet101"

    def __init__(self, plan):
        super().__init__(plan)
        self.dtype = torch.float16 if self.config.precision == "fp16" else torch.float32
        self.allow_tf32 = self.config.precision == "tf32"
        self.channels_last = self.config.channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.module = self.model.module.to(device=self.device, dtype=self.dtype, memory_format=self.memory_format)

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        # Only cuDNN's TF32 switch is set, and put back afterwards: cudnn.flags() resets every cuDNN flag,
        # and on torch 2.11 later IEEE-fp32 runs in the same process gave different results after it.
        # cuDNN's autotuner (benchmark) times the convolution algorithms once per input shape, in prepare();
        # the fixed shapes of a pipeline are its best case.  Both flags are put back afterwards.
        cudnn = torch.backends.cudnn
        previous = cudnn.allow_tf32, cudnn.benchmark
        cudnn.allow_tf32, cudnn.benchmark = self.allow_tf32, self.config.cudnn_benchmark
        try:
            with torch.inference_mode():
                x = batch.to(dtype=self.dtype, memory_format=self.memory_format)
                # float32 NCHW as every backend returns: channels-last logits made the softmax over classes
                # twice as slow (2.6 against 1.3 ms at b32/520 on the H100); this cast and copy is one pass
                return self.module(x)["out"].to(torch.float32, memory_format=torch.contiguous_format)
        finally:
            cudnn.allow_tf32, cudnn.benchmark = previous

    def identity(self) -> dict:
        return {**super().identity(), "channels_last": self.channels_last,
                "cudnn_benchmark": self.config.cudnn_benchmark, "torch": torch.__version__}
