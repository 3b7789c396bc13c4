"""The PyTorch backend: torchvision's segmentation models in eval and inference mode, eager or compiled.

Precision: fp32 is IEEE float32 throughout (cuDNN's TF32 convolutions, on by default in PyTorch, are
switched off so that fp32 means what it says); tf32 keeps float32 tensors but lets cuDNN's convolutions and
cuBLAS's matmuls (what inductor may turn 1x1 convolutions into) use TF32 tensor cores; fp16 runs the model
in half precision.  Logits come back as float32 in every case.

--compile MODE runs the model through torch.compile (TorchInductor: Triton kernels on the GPU, C++ on the
CPU) with static shapes: one compilation per batch size and model size, in prepare(), timed as
`setup_seconds`.  Inductor's caches live under --cache_dir/inductor, so a second process with the same
shapes loads the compiled code instead of compiling it again.

--cuda_graph captures the whole model call (the input cast, the model, the cast of the logits) as one CUDA
graph in prepare() and replays it per batch on the caller's stream: one launch instead of hundreds.  It is
ours rather than inductor's (`reduce-overhead`) because inductor's graphs are kept per thread, and the
overlapped executor calls the model from its compute lane's thread, not from the thread that prepared it.

--fuse_conv folds each BatchNorm into its convolution and, on a GPU, lets cuDNN apply the ReLU and a ResNet
block's shortcut addition inside the convolution (harness.models.fuse_convolutions): the elementwise
passes between convolutions were a third of compiled inference's GPU time on the H100.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from harness import HarnessError
from harness.backends import BACKENDS, Backend
from harness.compiled import compiled
from harness.errors import first_line
from harness.models import fuse_convolutions

WARM_UP_CALLS = 3  # before a capture: compile, cuDNN's autotuning, the allocator's pools


@BACKENDS.register("pytorch")
class PytorchBackend(Backend):
    name = "pytorch"
    model_options = ("compile", "cuda_graph", "fuse_conv", "aux_head")
    default_model = "deeplabv3_resnet101"

    def __init__(self, plan):
        super().__init__(plan)
        self.channels_last = self.config.channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.config.fuse_conv:
            fuse_convolutions(self.model.module)  # in float32, before the cast to the run's precision
        self.module = self.model.module.to(device=self.device, dtype=self.dtype, memory_format=self.memory_format)
        self.compile_mode = self.config.compile
        self.static_shapes = self.compile_mode != "off" or self.config.cuda_graph
        self.run_model = self.module
        if self.compile_mode != "off":
            self.run_model = compiled(self.module, self.config.cache_dir, mode=self.compile_mode, dynamic=False)
        self.graph = None  # (graph, static input, static logits) once captured
        self._replayed_on = None  # the stream of the last replay: the buffers' last user

    @contextmanager
    def _flags(self):
        """Only the TF32 switches and cuDNN's autotuner are set, and put back afterwards: cudnn.flags() resets
        every cuDNN flag, and on torch 2.11 later IEEE-fp32 runs in the same process gave different results
        after it.  The matmul switch matters too: inductor's max-autotune turns 1x1 convolutions into matmuls,
        which ran in IEEE fp32 under tf32 until it was set (FCN's 1024->2048 shortcut took 11 ms as one,
        reports/h100-2026-11-25-bounds).  The autotuner (benchmark) times the convolution algorithms once per
        input shape, in prepare(); the fixed shapes of a pipeline are its best case."""
        cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
        previous = cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = (self.tf32, self.tf32,
                                                                self.config.cudnn_benchmark)
        try:
            with torch.inference_mode():
                yield
        finally:
            cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = previous

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(dtype=self.dtype, memory_format=self.memory_format)
        # float32 NCHW as every backend returns: channels-last logits made the softmax over classes twice as
        # slow (2.6 against 1.3 ms at b32/520 on the H100); this cast and copy is one pass
        return self.run_model(x)["out"].to(torch.float32, memory_format=torch.contiguous_format)

    def _build(self, batch_size: int, height: int, width: int) -> None:
        self.graph = None
        x = torch.zeros(batch_size, 3, height, width, device=self.device, dtype=self.dtype
                        ).contiguous(memory_format=self.memory_format)
        try:
            with self._flags():
                if self.compile_mode != "off":
                    self._forward(x)  # compiles: the error, if any, is said here, once
                if self.config.cuda_graph:
                    self.graph = self._capture(x)
        except HarnessError:
            raise
        except Exception as error:
            if self.compile_mode == "off" or isinstance(error, torch.cuda.OutOfMemoryError):
                raise
            raise HarnessError(f"--compile {self.compile_mode}: torch.compile failed on {self.device.type} "
                               f"({first_line(error)}); on the CPU it needs a C++ compiler (g++), on a GPU "
                               "Triton: install them, or drop --compile") from None

    def _capture(self, x: torch.Tensor):
        """Warm up on a side stream (as CUDA graph capture requires), then capture one call."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARM_UP_CALLS):
                self._forward(x)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the other lanes of the executor may be decoding or encoding meanwhile
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            logits = self._forward(x)
        return graph, x, logits

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        if self.graph is not None:
            graph, static_input, logits = self.graph
            # The buffers are shared by every call: a call on another stream (a batch run again by the
            # caller's thread while the executor's compute lane has replays queued) waits for the last one.
            current = torch.cuda.current_stream(self.device)
            if self._replayed_on is not None and self._replayed_on != current:
                current.wait_stream(self._replayed_on)
            self._replayed_on = current
            static_input.copy_(batch)  # the cast to the model's dtype and memory format, in place
            graph.replay()  # on the current stream
            return logits  # the graph's buffer: valid until the next call (see the Backend contract)
        with self._flags():
            return self._forward(batch)

    def identity(self) -> dict:
        return {**super().identity(), "channels_last": self.channels_last, "compile": self.compile_mode,
                "cuda_graph": self.config.cuda_graph, "fuse_conv": self.config.fuse_conv,
                "cudnn_benchmark": self.config.cudnn_benchmark, "torch": torch.__version__}
