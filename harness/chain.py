"""The stage chain: preprocessing and post-processing as the pipeline runs them, for each --preprocess and
--postprocess (harness.PREPROCESS_STAGES, POSTPROCESS_STAGES).  The pipeline, the benchmarks, the tests and the
tools call these, so that a stage is added here and in its engines, nowhere else.  `clock` (a StageClock)
times each stage under its name; without one nothing is recorded."""

from __future__ import annotations

import torch

from harness.ops import Engine, Frames
from harness.timing import NullClock


def preprocess(engine: Engine, frames: Frames, size: tuple[int, int], mode: str = "staged",
               clock=None) -> torch.Tensor:
    """Frames to the model's input: staged, four stages (resize, convert, normalize, reformat: float NCHW,
    normalized); fused, CV-CUDA's fused operator; folded, resize and a cast to float NCHW (the model
    normalizes, harness.models.FoldedInput)."""
    clock = clock or NullClock()
    if mode == "fused":
        with clock.stage("preprocess"):
            return engine.fused_preprocess(frames, size)
    with clock.stage("resize"):
        x = engine.resize(frames, size)
    if mode == "folded":
        with clock.stage("convert"):
            return engine.raw_nchw(x)
    with clock.stage("convert"):
        x = engine.convert(x)
    with clock.stage("normalize"):
        x = engine.normalize(x)
    with clock.stage("reformat"):
        return engine.reformat(x)


def postprocess(engine: Engine, frames: Frames, logits: torch.Tensor, class_index: int, mode: str = "staged",
                clock=None) -> tuple[torch.Tensor, Frames]:
    """Logits to (masks at the model size, overlays at the frames' sizes): staged, five stages (softmax, mask,
    upscale, blur, overlay); fused, the mask straight from the logits (the argmax needs no softmax) and one
    stage for upscale, blur and overlay."""
    clock = clock or NullClock()
    if mode == "fused":
        with clock.stage("mask"):
            masks = engine.mask(logits, class_index)
        with clock.stage("blur_overlay"):
            return masks, engine.blur_overlay(frames, masks)
    with clock.stage("softmax"):
        probs = engine.softmax(logits)
    with clock.stage("mask"):
        masks = engine.mask(probs, class_index)
    with clock.stage("upscale"):
        full_masks = engine.upscale(masks, frames)
    with clock.stage("blur"):
        blurred = engine.blur(frames)
    with clock.stage("overlay"):
        return masks, engine.overlay(frames, blurred, full_masks)
