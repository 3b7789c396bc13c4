"""The exact Gaussian blur as matrix products, so that it runs on the tensor cores.

A 1-D correlation of a row with k taps is, tile by tile, the product of the tile and its k - 1 pixel halo
(a row of T + k - 1 values) with a banded (T + k - 1) x T matrix whose column j holds the taps at rows
j .. j + k - 1.  The row pass is one batched product over every tile of every row, the column pass the
same on the transposed image.  It does T + k - 1 multiply-adds per output where a direct filter does k,
but the tensor cores do them at over 100x the rate of the SMs' fp32 units, and it reads each pixel once
per pass: on the H100, 27x27 on 32 1080p frames took 15.5 ms with CV-CUDA's gaussian and 15.2 ms with
torch's separable conv2d (the overlapped-executor issue); see reports/ for this path's time.

On the GPU it runs in fp16 with fp32 accumulation: pixel values 0..255 are exact in fp16, the taps carry a
relative error under 2^-11 and the row pass's result is rounded to fp16 (at most 1/16 of a grey level),
so the output stays within 1 grey level of the fp32 reference (tested).  The border is the caller's:
the input is already padded (BORDER_REFLECT_101 in the engines).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from harness.ops import gaussian_kernel1d

TILE = 128  # output pixels per tile: 27 taps make a 154 x 128 band


def window(tile: int, size: int) -> int:
    """A tile and its halo, rounded up to 8 values: fp16 rows 16-byte aligned, as the tensor cores need
    (154 values made cuBLAS fall back to a slow kernel); the extra rows of the band are zeros."""
    return -(-(tile + size - 1) // 8) * 8


@functools.lru_cache(maxsize=16)
def band_matrix(size: int, sigma: float, tile: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    taps = torch.from_numpy(gaussian_kernel1d(size, sigma))
    band = torch.zeros(window(tile, size), tile, dtype=torch.float64)
    columns = torch.arange(tile)
    for offset in range(size):
        band[columns + offset, columns] = taps[offset]
    return band.to(device=device, dtype=dtype)


def correlate_last_axis(x: torch.Tensor, band: torch.Tensor, size: int) -> torch.Tensor:
    """Valid correlation along the last axis: (..., L + size - 1) -> (..., L), as one matrix product."""
    span, tile = band.shape
    length = x.shape[-1] - (size - 1)
    tiles = -(-length // tile)
    x = F.pad(x, (0, (tiles - 1) * tile + span - x.shape[-1]))  # the last window's missing values: zeros
    windows = x.unfold(-1, span, tile)  # (..., tiles, span), overlapping by the halo
    return (windows @ band).flatten(-2)[..., :length]


def gaussian_padded(padded: torch.Tensor, size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    """Separable size x size Gaussian of an NCHW image padded by size // 2 on each side: NCHW at `dtype`
    without the padding.  Rows first, then columns (through a transposed view)."""
    band = band_matrix(size, sigma, TILE, dtype, padded.device)
    rows = correlate_last_axis(padded.to(dtype), band, size)
    return correlate_last_axis(rows.transpose(-1, -2), band, size).transpose(-1, -2)
