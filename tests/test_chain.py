"""The stage chain (harness.chain) times each stage of every --preprocess and --postprocess under the names
harness.stages gives, in the pipeline's order, and equals the stages called one by one."""

from __future__ import annotations

import pytest
import torch

from harness import stages
from harness.chain import postprocess, preprocess
from harness.config import Config
from harness.ops import ENGINES
from harness.resolve import resolve
from harness.timing import NullClock


class Names(NullClock):
    """A clock that keeps the order of the stages it was asked to time."""

    def __init__(self):
        super().__init__()
        self.names = []

    def stage(self, name):
        self.names.append(name)
        return super().stage(name)


@pytest.fixture(scope="module")
def engine():
    return ENGINES["torch"](resolve(Config(device="cpu")))


@pytest.fixture(scope="module")
def frames(sample_bytes):
    """The five shipped photographs, five sizes."""
    from conftest import decode_rgb

    return [torch.from_numpy(decode_rgb(data).copy()) for data in sample_bytes]


@pytest.mark.parametrize("pre", ["staged", "folded"])
@pytest.mark.parametrize("post", ["staged", "fused"])
def test_the_chain_runs_the_stages_of_each_mode_in_order(engine, frames, pre, post):
    clock = Names()
    x = preprocess(engine, frames, (64, 64), pre, clock)
    logits = torch.randn(x.shape[0], 21, 64, 64, generator=torch.Generator().manual_seed(0))
    masks, overlays = postprocess(engine, frames, logits, 15, post, clock)
    expected = [s for s in stages(pre, post) if s not in ("decode", "inference", "encode")]
    assert clock.names == expected
    assert masks.shape[0] == len(overlays) == x.shape[0]


def test_the_staged_chain_is_the_stages_one_by_one(engine, frames):
    e, size = engine, (64, 64)
    assert torch.equal(preprocess(e, frames, size), e.reformat(e.normalize(e.convert(e.resize(frames, size)))))
    logits = torch.randn(len(frames), 21, *size, generator=torch.Generator().manual_seed(1))
    masks, overlays = postprocess(e, frames, logits, 15)
    expected = e.overlay(frames, e.blur(frames), e.upscale(e.mask(e.softmax(logits), 15), frames))
    assert torch.equal(masks, e.mask(e.softmax(logits), 15))
    assert all(torch.equal(a, b) for a, b in zip(overlays, expected))
