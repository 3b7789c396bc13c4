"""The OpenCV engine: the CPU baseline that GPU pipelines are sold against (OpenCV where it has the
operation, NumPy for the arithmetic it lacks: softmax, argmax, mean/std)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from harness.ops import ENGINES, IMAGENET_MEAN, IMAGENET_STD, Engine, Frames, frame_sizes, per_image, small_size

_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_INV_STD = (1 / np.array(IMAGENET_STD, dtype=np.float64)).astype(np.float32)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


def _like(frames: Frames, images: list[np.ndarray]) -> Frames:
    """Return results with the same structure (batched tensor or list) as the frames they came from."""
    if isinstance(frames, torch.Tensor):
        return torch.from_numpy(np.stack(images))
    return [torch.from_numpy(image) for image in images]


@ENGINES.register("opencv")
class OpencvEngine(Engine):
    name = "opencv"
    devices = ("cpu",)
    auto_rank = 2
    device_note = "is the CPU baseline"

    def __init__(self, plan):
        if plan.device.type != "cpu":
            raise ValueError("the opencv engine runs on the CPU")
        super().__init__(plan)

    def resize(self, frames: Frames, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        out = [cv2.resize(_np(f), (width, height), interpolation=cv2.INTER_LINEAR) for f in per_image(frames)]
        return torch.from_numpy(np.stack(out))

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.multiply(_np(x), np.float32(1 / 255), dtype=np.float32))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy((_np(x) - _MEAN) * _INV_STD)

    def reformat(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(_np(x).transpose(0, 3, 1, 2)))

    def softmax(self, logits: torch.Tensor) -> torch.Tensor:
        x = _np(logits.float())
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return torch.from_numpy(e / e.sum(axis=1, keepdims=True))

    def mask(self, probs: torch.Tensor, class_index: int) -> torch.Tensor:
        hit = _np(probs).argmax(axis=1) == class_index
        return torch.from_numpy((hit.astype(np.uint8) * 255)[..., None])

    def upscale(self, masks: torch.Tensor, frames: Frames) -> Frames:
        out = [
            cv2.resize(_np(m)[..., 0], (w, h), interpolation=cv2.INTER_NEAREST_EXACT)[..., None]
            for m, (h, w) in zip(masks, frame_sizes(frames))
        ]
        return _like(frames, out)

    def blur(self, frames: Frames) -> Frames:
        reflect = cv2.BORDER_REFLECT_101

        def exact(image: np.ndarray) -> np.ndarray:
            k = self.blur_kernel
            return cv2.GaussianBlur(image, (k, k), self.blur_sigma, borderType=reflect)

        def downscaled(image: np.ndarray) -> np.ndarray:
            height, width = image.shape[:2]
            small_h, small_w = small_size(height, width, self.blur_downscale)
            small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
            k = self.small_kernel
            small = cv2.GaussianBlur(small, (k, k), self.small_sigma, borderType=reflect)
            return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)

        one = downscaled if self.blur_mode == "downscaled" else exact
        return _like(frames, [one(_np(f)) for f in per_image(frames)])

    def overlay(self, frames: Frames, blurred: Frames, masks: Frames) -> Frames:
        out = [
            np.where(_np(m) != 0, _np(f), _np(b))
            for f, b, m in zip(per_image(frames), per_image(blurred), per_image(masks))
        ]
        return _like(frames, out)

    def encode(self, overlays: Frames) -> list[bytes]:
        params = [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        out = []
        for image in per_image(overlays):
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(_np(image), cv2.COLOR_RGB2BGR), params)
            if not ok:
                raise RuntimeError("OpenCV could not encode an overlay as JPEG")
            out.append(data.tobytes())
        return out
