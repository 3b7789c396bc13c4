"""Comparing two backends' outputs the way Polygraphy does: error statistics per output, the smallest
tolerance that would have passed, where the disagreement is, and a picture of it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from harness.files import write_atomic


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass(frozen=True)
class LogitsStats:
    """|candidate - reference| and |candidate - reference| / |reference| over every element."""

    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    median_abs: float
    max_abs_at: tuple[int, ...]
    max_rel: float
    mean_rel: float
    max_rel_at: tuple[int, ...]
    reference_magnitude: float  # mean |reference|
    atol: float
    rtol: float
    passed: bool  # every element within atol OR within rtol (Polygraphy's elementwise check)
    required_atol: float  # with rtol as given, the smallest atol that passes
    required_rtol: float  # with atol as given, the smallest rtol that passes

    def report(self, name: str = "logits") -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return "\n".join([
            f"[I] Comparing output '{name}' (dtype=float32, shape={self.shape})",
            f"[I]     Absolute difference | mean={self.mean_abs:.4g}, median={self.median_abs:.4g}, "
            f"max={self.max_abs:.4g} at {self.max_abs_at}, avg reference magnitude={self.reference_magnitude:.4g}",
            f"[I]     Relative difference | mean={self.mean_rel:.4g}, max={self.max_rel:.4g} at {self.max_rel_at}",
            f"[{'I' if self.passed else 'E'}]     {verdict} | tolerance atol={self.atol:g}, rtol={self.rtol:g} "
            f"(elementwise: within atol or within rtol)",
            f"[I]     Smallest tolerance that would pass: atol={self.required_atol:.4g} with rtol={self.rtol:g}, "
            f"or rtol={self.required_rtol:.4g} with atol={self.atol:g}",
        ])


def compare_logits(candidate: torch.Tensor, reference: torch.Tensor, atol: float, rtol: float) -> LogitsStats:
    a = candidate.detach().double().cpu()
    b = reference.detach().double().cpu()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: candidate {tuple(a.shape)}, reference {tuple(b.shape)}")
    diff = (a - b).abs()
    rel = diff / b.abs().clamp_min(1e-12)
    within = (diff <= atol) | (rel <= rtol)
    # Per element, passing needs diff <= atol or rel <= rtol: the failing elements set the smallest tolerances.
    required_atol = float(diff[rel > rtol].max()) if (rel > rtol).any() else 0.0
    required_rtol = float(rel[diff > atol].max()) if (diff > atol).any() else 0.0

    def at(index: torch.Tensor) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(int(index), tuple(a.shape)))

    return LogitsStats(
        shape=tuple(a.shape), max_abs=float(diff.max()), mean_abs=float(diff.mean()),
        median_abs=float(diff.flatten().median()), max_abs_at=at(diff.argmax()), max_rel=float(rel.max()),
        mean_rel=float(rel.mean()), max_rel_at=at(rel.argmax()), reference_magnitude=float(b.abs().mean()),
        atol=atol, rtol=rtol, passed=bool(within.all()), required_atol=required_atol, required_rtol=required_rtol,
    )


@dataclass(frozen=True)
class MaskStats:
    agreement: float  # fraction of pixels where the class masks agree
    iou: float  # intersection over union of the class masks (1.0 when both are empty)
    disagreeing: int

    def report(self) -> str:
        return f"[I] Masks: {self.agreement:.4%} of pixels agree, IoU {self.iou:.4f}, {self.disagreeing} pixels differ"


def compare_masks(candidate: torch.Tensor, reference: torch.Tensor) -> MaskStats:
    a, b = candidate.cpu() != 0, reference.cpu() != 0
    union = int((a | b).sum())
    return MaskStats(
        agreement=float((a == b).float().mean()),
        iou=1.0 if union == 0 else int((a & b).sum()) / union,
        disagreeing=int((a != b).sum()),
    )


def save_mask_diff(path: Path, candidate: torch.Tensor, reference: torch.Tensor) -> Path:
    """A PNG per image side by side: white where both masks are set, red only in the candidate, blue only in
    the reference, black where both are clear."""
    a = (candidate.cpu() != 0).reshape(candidate.shape[0], candidate.shape[1], candidate.shape[2]).numpy()
    b = (reference.cpu() != 0).reshape(reference.shape[0], reference.shape[1], reference.shape[2]).numpy()
    rgb = np.zeros((*a.shape, 3), dtype=np.uint8)
    rgb[a & b] = (255, 255, 255)
    rgb[a & ~b] = (255, 0, 0)
    rgb[~a & b] = (0, 0, 255)
    strip = np.concatenate(list(rgb), axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, "PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path
