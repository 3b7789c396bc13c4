"""Ops engines: the stages between decode and encode, implemented by CV-CUDA, PyTorch and OpenCV.

Every engine speaks torch tensors at its edges so that the pipeline is the same whichever runs:

- frames: one uint8 NHWC tensor when every image of the batch has the same size, otherwise a list of
  uint8 HWC tensors (variable-shape batch).  upscale, blur and overlay return the same structure.
- resize -> uint8 NHWC at the model size; convert/normalize -> float32 NHWC; reformat -> float32 NCHW;
  softmax -> float32 N x classes x h x w; mask -> uint8 N x h x w x 1 holding 0 or 255.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

from harness import HarnessError
from harness.config import Plan
from harness.registry import Part, Registry

Frames = Union[torch.Tensor, list[torch.Tensor]]
ENGINES: Registry[type["Engine"]] = Registry("ops engine", "--ops")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The blur's sigma range.  Outside it some engine's kernel is not finite: ours (float64) is 0/0 below
#: about 1e-162, and CV-CUDA computes its kernel in float32, where 2 pi sigma^2 under float32's smallest
#: normal (sigma under about 1.4e-20) or over its largest (sigma over about 7e18) gives zeros or NaN.  Nothing
#: usable is lost: under 0.2 the kernel is one tap (no blur), far over the kernel size a box.
BLUR_SIGMA_RANGE = (1e-6, 1e6)


def frame_sizes(frames: Frames) -> list[tuple[int, int]]:
    """(height, width) of each image."""
    if isinstance(frames, torch.Tensor):
        return [tuple(frames.shape[1:3])] * frames.shape[0]
    return [tuple(f.shape[:2]) for f in frames]


def per_image(frames: Frames) -> list[torch.Tensor]:
    return list(frames.unbind(0)) if isinstance(frames, torch.Tensor) else list(frames)


def gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    """OpenCV's getGaussianKernel for sigma > 0 (float64, sums to 1): the kernel every engine must apply.
    A HarnessError where it is not finite, rather than NaN overlays."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    with np.errstate(all="ignore"):
        kernel = np.exp(-(x * x) / (2 * sigma * sigma))
        kernel = kernel / kernel.sum()
    if not np.isfinite(kernel).all():
        raise HarnessError(f"--blur_sigma {sigma:g} gives a Gaussian kernel that is not finite: give "
                           f"{BLUR_SIGMA_RANGE[0]:g} to {BLUR_SIGMA_RANGE[1]:g}")
    return kernel


def downscaled_blur(size: int, sigma: float, factor: int) -> tuple[int, float]:
    """The downscaled blur's kernel size and sigma: the same reach in source pixels, at least 3 taps, odd."""
    return max(3, 2 * round((size / factor - 1) / 2) + 1), sigma / factor


def check_blur(size: int, sigma: float, factor: int) -> None:
    """Refuse a sigma that some engine cannot make a finite kernel of (BLUR_SIGMA_RANGE), before any engine
    is built; both kernels (exact and downscaled) are computed here as the engines will."""
    low, high = BLUR_SIGMA_RANGE
    if not low <= sigma <= high:
        raise HarnessError(f"--blur_sigma is {sigma:g}: give {low:g} to {high:g} (outside that the Gaussian "
                           "kernel is not finite on every engine; under 0.2 it does not blur at all)")
    gaussian_kernel1d(size, sigma)
    gaussian_kernel1d(*downscaled_blur(size, sigma, factor))


def small_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """The size the downscaled blur works at."""
    return max(1, round(height / factor)), max(1, round(width / factor))


class Engine(Part):
    """Holds an engine's configuration; the stage methods do the work.  See the module docstring for types.

    Blur modes: "exact" is the configured Gaussian at full resolution.  "downscaled" reaches the same
    visible effect for a fraction of the work, as CV-CUDA's later samples do: area-downscale by
    `blur_downscale`, blur with the kernel and sigma scaled down by the same factor, upscale bilinearly.
    """

    name = ""

    def __init__(self, plan: Plan):
        options = plan.config
        self.device = plan.device
        self.blur_kernel = options.blur_kernel
        self.blur_sigma = float(options.blur_sigma)
        self.jpeg_quality = options.jpeg_quality
        self.blur_mode = options.blur_mode
        self.blur_downscale = options.blur_downscale
        self.small_kernel, self.small_sigma = downscaled_blur(self.blur_kernel, self.blur_sigma, self.blur_downscale)

    def blur_overlay(self, frames: Frames, masks: torch.Tensor) -> Frames:
        """--postprocess fused: the masks (model size) upscaled, the frames blurred, the overlay, timed as one
        stage.  A TorchInductor-generated fusion of the exact blur and the overlay was measured and dropped: 5.5
        ms for 32 1080p frames on an H100 against 4.5 ms for these three (reports/h100-2026-11-25-postprocess)."""
        return self.overlay(frames, self.blur(frames), self.upscale(masks, frames))

    def raw_nchw(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float32 NCHW of the raw values 0..255, for --preprocess folded: one cast, the NHWC
        memory kept (a channels-last NCHW tensor, what the GPU backends run).  The same for every engine."""
        return x.permute(0, 3, 1, 2).float()


# Import the engines so that they register themselves.
from harness.ops import cvcuda_engine, opencv_engine, torch_engine  # noqa: E402,F401
