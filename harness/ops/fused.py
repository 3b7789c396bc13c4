"""The exact blur and the overlay as one expression for TorchInductor to fuse (--postprocess fused).

Each pass of the separable Gaussian is written as a sum of `size` shifted gathers, with OpenCV's
BORDER_REFLECT_101 in the gather indices, so that nothing is padded or materialised but the row pass's
result: compiled, the row pass is one kernel and the column pass, the rounding, the mask's nearest-neighbour
upscale and the choice between sharp and blurred pixels are a second one.  Eager, the same code runs
anywhere (the CPU tests compare it with the reference blur), just slowly.

Arithmetic in float32 with the taps of harness.ops.gaussian_kernel1d, rounded half to even as the reference
(TorchEngine._reference_blur) does; only the order of the sums differs: within 1 grey level of it.
"""

from __future__ import annotations

import torch

from harness.ops import gaussian_kernel1d


def reflect101(length: int, pad: int, device: torch.device) -> torch.Tensor:
    """Source index of positions -pad .. length + pad - 1 under OpenCV's BORDER_REFLECT_101 (mirror about the
    first and last pixel, repeated: period 2 (length - 1)), for any length; made on the device, no copy."""
    if length == 1:
        return torch.zeros(length + 2 * pad, dtype=torch.long, device=device)
    period = 2 * (length - 1)
    index = torch.arange(-pad, length + pad, device=device).abs_().remainder_(period)
    return torch.where(index < length, index, period - index)


def nearest_rows(source: int, target: int, device: torch.device) -> torch.Tensor:
    """Nearest neighbour by pixel centres, source index floor((dst + 0.5) * source / target), in integers."""
    return (2 * torch.arange(target, device=device) + 1) * source // (2 * target)


def taps_of(size: int, sigma: float) -> tuple[float, ...]:
    """The kernel as plain floats, made once outside the compiled functions (NumPy inside them breaks the
    graph)."""
    return tuple(float(t) for t in gaussian_kernel1d(size, sigma))


def row_pass(frames: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """The Gaussian along the rows of uint8 NHWC frames: float32 NHWC."""
    size, width = len(taps), frames.shape[2]
    pad = size // 2
    cols = reflect101(width, pad, frames.device)
    x = frames.float()
    return sum(taps[k] * x.index_select(2, cols[k:k + width]) for k in range(size))


def column_pass_overlay(across: torch.Tensor, frames: torch.Tensor, masks: torch.Tensor,
                        taps: tuple[float, ...]) -> torch.Tensor:
    """The Gaussian along the columns of the row pass, rounded, and the overlay with the upscaled masks."""
    size, height, width, device = len(taps), frames.shape[1], frames.shape[2], frames.device
    pad = size // 2
    rows = reflect101(height, pad, device)
    down = sum(taps[k] * across.index_select(1, rows[k:k + height]) for k in range(size))
    blurred = down.round().clamp(0, 255).to(torch.uint8)
    mask_rows = nearest_rows(masks.shape[1], height, device)
    mask_cols = nearest_rows(masks.shape[2], width, device)
    sharp = masks.index_select(1, mask_rows).index_select(2, mask_cols) != 0
    return torch.where(sharp, frames, blurred)


def blur_overlay(frames: torch.Tensor, masks: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """uint8 NHWC frames, uint8 N x h x w x 1 masks at the model size (0 or 255): each pixel is the frame's
    where the upscaled mask is set, the size x size Gaussian of the frame elsewhere.  The two passes are two
    functions so that, compiled apart, each is one kernel (compiled together, inductor could inline the row
    pass into the column pass: 27 x 27 loads an output)."""
    taps = taps_of(size, sigma)
    return column_pass_overlay(row_pass(frames, taps), frames, masks, taps)
