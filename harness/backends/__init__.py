"""Inference backends behind one small interface: construct from a config, prepare for a shape, run.

A backend takes a float32 NCHW batch on the pipeline's device and returns float32 logits
(N x classes x h x w) on the same device, on the pipeline's current stream.
"""

from __future__ import annotations

import torch

from harness.registry import Registry

BACKENDS: Registry[type["Backend"]] = Registry("backend")


class Backend:
    name = ""
    default_model = ""

    def __init__(self, config, device: torch.device):
        self.config = config
        self.device = device

    def prepare(self, batch_size: int, height: int, width: int) -> None:
        """Build or compile for this shape and run once, so that no later call pays for set-up."""

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def identity(self) -> dict:
        """What produced the logits: model, weights, precision, library versions."""
        raise NotImplementedError


from harness.backends import pytorch, tensorrt  # noqa: E402,F401  (they register themselves)
