"""Post-processing of 32 1080p frames on one GPU, stage by stage: the exact 27x27 blur by each route
(CV-CUDA's gaussian_into, torch's separable conv2d, the banded tensor-core path), the blur_overlay stage of
--postprocess fused, and softmax through overlay as the cvcuda engine runs them, staged and fused.
CUDA-event medians of 20 runs after 3 warm-ups.
Usage (GPU machine): python3 tools/blur_bench.py OUT.json"""

from __future__ import annotations

import json
import sys

import torch

from harness.benchkit import photographs
from harness.config import Config
from harness.resolve import resolve
from harness.decode import DECODERS
from harness.models import CLASS_NAMES
from harness.ops import ENGINES
from harness.timing import median_cuda_ms
from harness.pipeline import stack_if_uniform





def main(path: str) -> None:
    plan = resolve(Config(device="cuda", ops="cvcuda", postprocess="fused"))
    cv, torch_engine = ENGINES["cvcuda"](plan), ENGINES["torch"](plan)
    frames = stack_if_uniform(DECODERS["cpu"](torch.device("cpu"))(photographs("1920x1080", 32))).cuda()
    out = torch.empty_like(frames)
    import cvcuda

    results = {"gpu": torch.cuda.get_device_name(0), "frames": list(frames.shape), "blur_ms": {}, "post_ms": {}}
    blur = results["blur_ms"]
    blur["cvcuda_gaussian_into"] = median_cuda_ms(lambda: cvcuda.gaussian_into(
        cv._t(out), cv._t(frames), (27, 27), (25.0, 25.0), cvcuda.Border.REFLECT101, stream=cv._stream()))
    blur["torch_conv2d_fp32"] = median_cuda_ms(
        lambda: torch_engine._gaussian(frames.permute(0, 3, 1, 2).float(), torch_engine._blur_taps))
    blur["banded_fp16"] = median_cuda_ms(lambda: cv.exact_blur(frames))
    reference = torch_engine._gaussian(frames.permute(0, 3, 1, 2).float(), torch_engine._blur_taps)
    reference = reference.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    results["banded_max_abs_diff"] = int((cv.exact_blur(frames).int() - reference.int()).abs().max())
    nothing_sharp = torch.zeros(32, 224, 224, 1, dtype=torch.uint8, device="cuda")  # every pixel blurred
    blur["blur_overlay_all_blurred"] = median_cuda_ms(lambda: cv.blur_overlay(frames, nothing_sharp))
    fused = cv.blur_overlay(frames, nothing_sharp)
    results["blur_overlay_max_abs_diff"] = int((fused.int() - reference.int()).abs().max())
    for side in (224, 520):
        logits = torch.randn(32, 21, side, side, device="cuda") * 3
        post = results["post_ms"][str(side)] = {}
        probs = cv.softmax(logits)
        person = CLASS_NAMES.index("person")
        masks = cv.mask(probs, person)
        full = cv.upscale(masks, frames)
        blurred = cv.blur(frames)
        post["softmax"] = median_cuda_ms(lambda: cv.softmax(logits))
        post["mask"] = median_cuda_ms(lambda: cv.mask(probs, person))
        post["upscale"] = median_cuda_ms(lambda: cv.upscale(masks, frames))
        post["blur"] = median_cuda_ms(lambda: cv.blur(frames))
        post["overlay"] = median_cuda_ms(lambda: cv.overlay(frames, blurred, full))
        post["softmax_through_overlay"] = median_cuda_ms(
            lambda: cv.overlay(frames, cv.blur(frames), cv.upscale(cv.mask(cv.softmax(logits), person), frames)))
        # --postprocess fused: the mask from the logits, then one blur_overlay stage
        post["fused_mask"] = median_cuda_ms(lambda: cv.mask(logits, person))
        post["fused_blur_overlay"] = median_cuda_ms(lambda: cv.blur_overlay(frames, masks))
        post["fused_logits_through_overlay"] = median_cuda_ms(lambda: cv.blur_overlay(frames, cv.mask(logits, person)))
    print(json.dumps(results, indent=1))
    with open(path, "w") as handle:
        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
