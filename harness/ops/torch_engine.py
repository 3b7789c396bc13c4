"""The PyTorch engine: plain tensor code on the CPU or the GPU, and the readable reference for the others."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.ops.banded import gaussian_nhwc, prepare_band
from harness.ops import (ENGINES, IMAGENET_MEAN, IMAGENET_STD, Engine, Frames, frame_sizes, gaussian_kernel1d,
                         per_image, small_size)


def _map(fn, frames: Frames) -> Frames:
    """Apply a batched NHWC function to a uniform batch at once, or to each image of a list as a batch of one."""
    if isinstance(frames, torch.Tensor):
        return fn(frames)
    return [fn(f.unsqueeze(0))[0] for f in frames]


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


def reaches_past_border(k: int, height: int, width: int) -> bool:
    """Whether a k x k kernel reaches past a mirrored border (reflect padding, CV-CUDA's border, need more)."""
    return k // 2 >= min(height, width)


def _reflect101_pad(nchw: torch.Tensor, pad: int) -> torch.Tensor:
    """OpenCV's BORDER_REFLECT_101 padding: torch's 'reflect' where the image is larger than the pad, else
    the border indices gathered (any size, 1x1 too)."""
    if reaches_past_border(2 * pad + 1, *nchw.shape[2:]):
        rows, cols = (reflect101(n, pad, nchw.device) for n in nchw.shape[2:])
        return nchw.index_select(2, rows).index_select(3, cols)
    return F.pad(nchw, (pad,) * 4, mode="reflect")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8)


@ENGINES.register("torch")
class TorchEngine(Engine):
    name = "torch"
    auto_rank = 1

    def __init__(self, plan):
        super().__init__(plan)
        # Constants go to the device once, here: a host-to-device copy inside a batch would synchronize.
        self._mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).to(self.device)
        self._std = torch.tensor(IMAGENET_STD, dtype=torch.float32).to(self.device)
        self._blur_taps = self._separable(self.blur_kernel, self.blur_sigma)
        self._small_taps = self._separable(self.small_kernel, self.small_sigma)
        if self.device.type == "cuda":
            prepare_band(self.blur_kernel, self.blur_sigma, self.device)  # the exact blur's, before any batch

    def _separable(self, k: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.tensor(gaussian_kernel1d(k, sigma), dtype=torch.float32).to(self.device)
        return g.view(1, 1, k, 1).repeat(3, 1, 1, 1), g.view(1, 1, 1, k).repeat(3, 1, 1, 1)

    @staticmethod
    def _gaussian(nchw: torch.Tensor, taps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Separable Gaussian on float NCHW with OpenCV's REFLECT_101 border (the CPU reference)."""
        return F.conv2d(F.conv2d(_reflect101_pad(nchw, taps[0].shape[2] // 2), taps[0], groups=3), taps[1], groups=3)

    def exact_blur(self, x: torch.Tensor) -> torch.Tensor:
        """The configured Gaussian of a uint8 NHWC batch.  On a GPU as banded matrix products on the tensor
        cores (harness.ops.banded: 1 grey level from the reference at most), on the CPU as two convolutions."""
        if self.device.type == "cuda" and not reaches_past_border(self.blur_kernel, *x.shape[1:3]):
            return gaussian_nhwc(x, self.blur_kernel, self.blur_sigma)
        return self._reference_blur(x, self._blur_taps)

    def _reference_blur(self, x: torch.Tensor, taps: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """_gaussian on a uint8 NHWC batch, uint8 NHWC out: any size, on any device."""
        return _to_uint8(self._gaussian(x.permute(0, 3, 1, 2).float(), taps)).permute(0, 2, 3, 1).contiguous()

    def resize(self, frames: Frames, size: tuple[int, int]) -> torch.Tensor:
        def one(x: torch.Tensor) -> torch.Tensor:
            nchw = x.permute(0, 3, 1, 2).float()
            out = F.interpolate(nchw, size=size, mode="bilinear", align_corners=False, antialias=False)
            return _to_uint8(out).permute(0, 2, 3, 1)

        if isinstance(frames, torch.Tensor):
            return one(frames).contiguous()
        return torch.cat([one(f.unsqueeze(0)) for f in frames]).contiguous()

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32).mul_(1 / 255)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._mean) / self._std

    def reformat(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2).contiguous()

    def softmax(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=1)

    def mask(self, probs: torch.Tensor, class_index: int) -> torch.Tensor:
        return ((probs.argmax(dim=1) == class_index).to(torch.uint8) * 255).unsqueeze(-1)

    def upscale(self, masks: torch.Tensor, frames: Frames) -> Frames:
        """Nearest neighbour by pixel centres, as CV-CUDA's NEAREST and OpenCV's INTER_NEAREST_EXACT do:
        source index floor((dst + 0.5) * in / out), computed exactly in integers here.  The others compute it
        in floating point and can land one source pixel off where the product is whole (tests/tolerances.py)."""
        h, w = masks.shape[1:3]

        def one(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
            return mask[:, nearest_rows(h, size[0], mask.device)][:, :, nearest_rows(w, size[1], mask.device)]

        sizes = frame_sizes(frames)
        if isinstance(frames, torch.Tensor):
            return one(masks, sizes[0])
        return [one(masks[i : i + 1], size)[0] for i, size in enumerate(sizes)]

    def blur(self, frames: Frames) -> Frames:
        def downscaled(x: torch.Tensor) -> torch.Tensor:
            size = x.shape[1:3]
            small = F.interpolate(x.permute(0, 3, 1, 2).float(), size=small_size(*size, self.blur_downscale),
                                  mode="area")
            small = self._gaussian(small, self._small_taps)
            out = F.interpolate(small, size=size, mode="bilinear", align_corners=False, antialias=False)
            return _to_uint8(out).permute(0, 2, 3, 1).contiguous()

        return _map(downscaled if self.blur_mode == "downscaled" else self.exact_blur, frames)

    def overlay(self, frames: Frames, blurred: Frames, masks: Frames) -> Frames:
        if isinstance(frames, torch.Tensor):
            return torch.where(masks != 0, frames, blurred)
        return [torch.where(m != 0, f, b) for f, b, m in zip(frames, blurred, masks)]

    def encode(self, overlays: Frames) -> list[bytes]:
        """torchvision's encoder (nvJPEG for CUDA tensors); an image the GPU encoder refuses is encoded on the CPU."""
        from torchvision.io import encode_jpeg

        chw = [image.permute(2, 0, 1).contiguous() for image in per_image(overlays)]
        try:
            return [bytes(data.cpu().numpy()) for data in encode_jpeg(chw, quality=self.jpeg_quality)]
        except RuntimeError:
            if self.device.type == "cpu":
                raise
        return [self.encode_on_cpu(image) for image in chw]

    def encode_on_cpu(self, chw: torch.Tensor) -> bytes:
        """libjpeg-turbo through torchvision: the fallback for images a GPU encoder cannot take (tiny ones)."""
        from torchvision.io import encode_jpeg

        return bytes(encode_jpeg(chw.cpu(), quality=self.jpeg_quality).numpy())
