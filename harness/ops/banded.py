"""The exact Gaussian blur as matrix products, so that it runs on the tensor cores, in the frames' own
NHWC layout.

A 1-D correlation with k taps is, tile by tile, the product of a tile and its k - 1 value halo with a
banded matrix whose column j holds the taps at rows j .. j + k - 1.  Rows: each row of W x C values is
cut into windows of `span` pixels (a tile of T outputs plus the halo) and multiplied by the band widened
to the C interleaved channels.  Columns: windows of `span` rows times the band's transpose.  The column pass
reads its windows where they lie (a strided batch); the row pass's overlapping windows are no valid BLAS
layout, so torch.mm copies them once (1.25x the buffer).  The rest is the padding and the final rounding.

Buffers are laid out so that every window is one stride apart across the whole batch: a row holds a whole
number of tiles, an image a whole number of row tiles, and a window running past its row or image reads
values that only outputs past the image (cut off) or zero band rows see.  Those values are zeroed: an
uninitialised NaN times a zero weight would still be NaN.

On the GPU it runs in fp16 with fp32 accumulation: pixel values 0..255 are exact in fp16, the taps carry a
relative error under 2^-11 and the row pass's result is rounded to fp16 (at most 1/16 of a grey level),
so the output stays within 1 grey level of the fp32 reference (tested).  Measured on the H100: see
tools/blur_bench.py and reports/.
"""

from __future__ import annotations

import functools

import torch

from harness.ops import gaussian_kernel1d

TILE = 128  # output pixels per tile
DTYPE = torch.float16  # on the tensor cores, exact for 0..255 (see the module's docstring)


def span_of(tile: int, size: int) -> int:
    """A tile and its halo, rounded up to 8 values: fp16 rows 16-byte aligned, as the tensor cores need
    (154 values made cuBLAS fall back to a slow kernel); the extra rows of the band are zeros."""
    return -(-(tile + size - 1) // 8) * 8


@functools.lru_cache(maxsize=16)
def band_matrix(size: int, sigma: float, tile: int, channels: int, dtype: torch.dtype,
                device: torch.device) -> torch.Tensor:
    """(span x C) x (tile x C): output pixel j, channel c takes input pixels j .. j + size - 1 of channel c.
    Built on the host and copied once per process and arguments, a copy the host waits for: see prepare_band."""
    taps = torch.from_numpy(gaussian_kernel1d(size, sigma))
    band = torch.zeros(span_of(tile, size), tile, dtype=torch.float64)
    columns = torch.arange(tile)
    for offset in range(size):
        band[columns + offset, columns] = taps[offset]
    return torch.kron(band, torch.eye(channels, dtype=torch.float64)).to(device=device, dtype=dtype)


def prepare_band(size: int, sigma: float, device: torch.device, channels: int = 3,
                 dtype: torch.dtype = DTYPE) -> None:
    """Build the band matrix that gaussian_nhwc of `channels`-channel frames on `device` will use, so that no
    batch waits for its copy to the device (the GPU no-host-wait tests found that the first one did)."""
    band_matrix(size, sigma, TILE, channels, dtype, device)


def gaussian_nhwc(frames: torch.Tensor, size: int, sigma: float, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """size x size Gaussian with OpenCV's BORDER_REFLECT_101 of a uint8 NHWC batch whose sides exceed the
    kernel's reach (size // 2); uint8 NHWC out."""
    n, height, width, c = frames.shape
    pad = size // 2
    span = span_of(TILE, size)
    tiles_w, tiles_h = -(-(width + 2 * pad) // TILE), -(-(height + 2 * pad) // TILE)
    row_length, rows = tiles_w * TILE, tiles_h * TILE  # per image, padded to whole tiles
    device = frames.device

    # The padded input, one flat buffer: the frames, their reflected borders, zeros after.
    flat = torch.empty(n * rows * row_length * c + span * c, dtype=dtype, device=device)
    image = flat[:n * rows * row_length * c].view(n, rows, row_length, c)
    image[:, pad:pad + height, pad:pad + width].copy_(frames)
    image[:, pad:pad + height, :pad] = image[:, pad:pad + height, pad + 1:2 * pad + 1].flip(2)
    image[:, pad:pad + height, pad + width:2 * pad + width] = (
        image[:, pad:pad + height, width - 1:width + pad - 1].flip(2))
    image[:, :pad, :2 * pad + width] = image[:, pad + 1:2 * pad + 1, :2 * pad + width].flip(1)
    image[:, pad + height:2 * pad + height, :2 * pad + width] = (
        image[:, height - 1:height + pad - 1, :2 * pad + width].flip(1))
    image[:, :, 2 * pad + width:] = 0
    image[:, 2 * pad + height:] = 0
    flat[n * rows * row_length * c:] = 0

    band = band_matrix(size, sigma, TILE, c, dtype, device)
    # Row pass: every window of every row of every image, one stride (a tile) apart.
    windows = flat.as_strided((n * rows * tiles_w, span * c), (TILE * c, 1))
    across = torch.empty(n * rows * row_length * c + span * row_length * c, dtype=dtype, device=device)
    torch.mm(windows, band, out=across[:n * rows * row_length * c].view(n * rows * tiles_w, TILE * c))
    across[n * rows * row_length * c:] = 0
    # Column pass: windows of `span` rows, one tile of rows apart, times the band's transpose.
    line = row_length * c
    stacks = across.as_strided((n * tiles_h, span, line), (TILE * line, line, 1))
    column_band = band[::c, ::c].t()  # tile x span: the band for one channel
    down = torch.bmm(column_band.expand(n * tiles_h, TILE, span), stacks)
    out = down.view(n, rows, row_length, c)[:, :height, :width]
    return out.add_(0.5).clamp_(max=255).to(torch.uint8)
