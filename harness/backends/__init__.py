"""Inference backends behind one small interface.

Life of a backend: construct from a Plan (builds or loads the model on the CPU), `prepare` for a
batch size and model input size (export, engine build, warm-up call), then call it with float32 NCHW
batches on the pipeline's device; it answers float32 logits N x 21 x h x w on the same device, on the
pipeline's current stream.  A call with a new input size or a larger batch prepares again.  The logits
may live in a buffer that the next call reuses (TensorRT's preallocated output): copy them to keep them.

A batch smaller than the prepared batch size (the last, partial batch of a run) is run as it is where the
backend has a dynamic batch axis (partial_batch="dynamic"), or padded with zeros to the prepared size and
the padded results dropped (partial_batch="pad", what CV-CUDA's sample did for TensorRT; always so for a
backend built for static shapes, `static_shapes`).

With --preprocess folded the model takes raw pixel values (0..255, float NCHW): the normalization is folded
into its first convolution (harness.models.FoldedInput), and so into its ONNX export.
"""

from __future__ import annotations

import time

import torch

from harness.config import Plan
from harness.models import LoadedModel, build_model
from harness.registry import Part, Registry

BACKENDS: Registry[type["Backend"]] = Registry("backend", "-bk")


class Backend(Part):
    name = ""
    default_model = ""
    static_shapes = False  # True: built for one batch size, so a partial batch is padded
    precisions = ("fp32", "tf32", "fp16")  # the --precision values it runs (harness.resolve refuses the others)
    precision_note = ""  # how the refusal says why ("runs the fp32 graph")
    #: the model options (harness.config.MODEL_OPTIONS) it runs; harness.resolve refuses the others
    model_options: tuple[str, ...] = ()

    def __init__(self, plan: Plan):
        self.config = config = plan.config
        self.device = plan.device
        self.dtype, self.tf32 = plan.dtype, plan.tf32  # the precision, resolved once
        self.model: LoadedModel = build_model(config.model, config.weights, config.seed, aux_head=config.aux_head,
                                              folded=config.preprocess == "folded")
        self.batch_size = 0  # what prepare() last built for
        self.size: tuple[int, int] | None = None
        self.setup_seconds: float | None = None  # the last prepare(): export, engine build, compile, autotuning

    def prepare(self, batch_size: int, height: int, width: int) -> None:
        """Build for this shape, then run once so that no later call pays for set-up; the time it took is
        `setup_seconds` (reported apart from the run's time)."""
        started = time.perf_counter()
        self._build(batch_size, height, width)
        self.batch_size, self.size = batch_size, (height, width)
        self(torch.zeros(batch_size, 3, height, width, device=self.device))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.setup_seconds = time.perf_counter() - started

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        n, _, h, w = batch.shape
        if self.size != (h, w) or n > self.batch_size:
            self.prepare(max(n, self.batch_size), h, w)
        if n < self.batch_size and (self.config.partial_batch == "pad" or self.static_shapes):
            padding = batch.new_zeros((self.batch_size - n, *batch.shape[1:]))
            return self._infer(torch.cat([batch, padding]))[:n]
        return self._infer(batch)

    def identity(self) -> dict:
        """What produces the logits: enough to tell two runs' outputs apart."""
        return {
            "backend": self.name,
            "model": self.model.name,
            "weights": self.model.weights,
            "weights_sha256": self.model.weights_digest,
            "precision": self.config.precision,
            "folded_normalization": self.model.folded,
        }

    def _build(self, batch_size: int, height: int, width: int) -> None:
        """Backend-specific set-up for a shape (nothing for eager PyTorch)."""

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


from harness.backends import onnxruntime, pytorch, tensorrt  # noqa: E402,F401  (they register themselves)
