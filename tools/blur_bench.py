"""Post-processing of 32 1080p frames on one GPU, stage by stage: the exact 27x27 blur by each route
(CV-CUDA's gaussian_into, torch's separable conv2d, the banded tensor-core path), the blur_overlay stage of
--postprocess fused, and softmax through overlay as the cvcuda engine runs them, staged and fused.
CUDA-event times of 20 calls after 3 warm-ups, written as results records (kind "probe") that
`python -m harness.report` reads.
Usage (GPU machine): python3 tools/blur_bench.py OUT.json"""

from __future__ import annotations

import sys

import torch

from harness.benchkit import Case, photographs
from harness.config import Config
from harness.decode import DECODERS
from harness.models import CLASS_NAMES
from harness.ops import ENGINES
from harness.pipeline import stack_if_uniform
from harness.resolve import resolve
from harness.run_file import probe_entry, write_probe_file
from harness.timing import cuda_times_ms

BATCH, SOURCE = 32, "1920x1080"


def main(path: str) -> None:
    plan = resolve(Config(device="cuda", ops="cvcuda", postprocess="fused"))
    cv, torch_engine = ENGINES["cvcuda"](plan), ENGINES["torch"](plan)
    frames = stack_if_uniform(DECODERS["cpu"](torch.device("cpu"))(photographs(SOURCE, BATCH))).cuda()
    out = torch.empty_like(frames)
    import cvcuda

    entries = []

    def timed(stage: str, engine: str, variant: str, fn, side: int = 224, precision: str = "fp32", **results):
        case = Case(stage, engine, "cuda", precision, BATCH, (side, side), SOURCE, f"probe:{variant}")
        entries.append(probe_entry(f"{stage}[{engine}-{variant}-{side}]", case, cuda_times_ms(fn), **results))
        print(entries[-1]["name"], f"{entries[-1]['stats']['median'] * 1e3:.3f} ms", flush=True)
        write_probe_file(path, entries, "tools/blur_bench.py")

    reference = torch_engine._gaussian(frames.permute(0, 3, 1, 2).float(), torch_engine._blur_taps)
    reference = reference.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    nothing_sharp = torch.zeros(BATCH, 224, 224, 1, dtype=torch.uint8, device="cuda")  # every pixel blurred
    timed("blur", "cvcuda", "gaussian_into", lambda: cvcuda.gaussian_into(
        cv._t(out), cv._t(frames), (27, 27), (25.0, 25.0), cvcuda.Border.REFLECT101, stream=cv._stream()))
    timed("blur", "torch", "conv2d", lambda: torch_engine._gaussian(frames.permute(0, 3, 1, 2).float(),
                                                                     torch_engine._blur_taps))
    timed("blur", "cvcuda", "banded", lambda: cv.exact_blur(frames), precision="fp16",
          max_abs_diff=float((cv.exact_blur(frames).int() - reference.int()).abs().max()))
    timed("blur_overlay", "cvcuda", "all-blurred", lambda: cv.blur_overlay(frames, nothing_sharp),
          max_abs_diff=float((cv.blur_overlay(frames, nothing_sharp).int() - reference.int()).abs().max()))
    person = CLASS_NAMES.index("person")
    for side in (224, 520):
        logits = torch.randn(BATCH, 21, side, side, device="cuda") * 3
        probs = cv.softmax(logits)
        masks = cv.mask(probs, person)
        full = cv.upscale(masks, frames)
        blurred = cv.blur(frames)
        for stage, fn in (("softmax", lambda: cv.softmax(logits)), ("mask", lambda: cv.mask(probs, person)),
                          ("upscale", lambda: cv.upscale(masks, frames)), ("blur", lambda: cv.blur(frames)),
                          ("overlay", lambda: cv.overlay(frames, blurred, full))):
            timed(stage, "cvcuda", "staged", fn, side)
        timed("postprocess", "cvcuda", "staged", lambda: cv.overlay(
            frames, cv.blur(frames), cv.upscale(cv.mask(cv.softmax(logits), person), frames)), side)
        # --postprocess fused: the mask from the logits, then one blur_overlay stage
        timed("mask", "cvcuda", "fused", lambda: cv.mask(logits, person), side)
        timed("blur_overlay", "cvcuda", "fused", lambda: cv.blur_overlay(frames, masks), side)
        timed("postprocess", "cvcuda", "fused", lambda: cv.blur_overlay(frames, cv.mask(logits, person)), side)


if __name__ == "__main__":
    main(sys.argv[1])
