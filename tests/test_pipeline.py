"""The whole pipeline on the CPU with the small model, on the shipped images."""

from __future__ import annotations

import pytest
import torch

from conftest import decode_rgb, jpeg_bytes
from harness import HarnessError, stages
from harness.config import Config
from harness.resolve import resolve
from harness.pipeline import Pipeline, within_budget
from harness.tolerances import MASK_MIN_AGREEMENT

SMALL = dict(model="lraspp_mobilenet_v3_large", weights="synthetic", class_name="motorbike")


@pytest.fixture(scope="module")
def pipelines():
    return {ops: Pipeline(Config(device="cpu", ops=ops, batch_size=5, **SMALL)) for ops in ("opencv", "torch")}


@pytest.mark.parametrize("ops", ["opencv", "torch"])
def test_cpu_pipeline_on_shipped_images(pipelines, ops, sample_bytes):
    result = pipelines[ops].run(sample_bytes)
    assert result.done == [0, 1, 2, 3, 4] and result.failed == []
    assert result.masks.shape == (5, 224, 224, 1) and set(result.masks.unique().tolist()) <= {0, 255}
    kept = (result.masks > 0).float().mean().item()
    assert 0.0 < kept < 1.0, "the mask should keep some pixels and blur others"
    for data, original in zip(result.jpegs, sample_bytes):
        assert decode_rgb(data).shape == decode_rgb(original).shape  # original size, RGB even for grayscale
    assert set(result.timings_ms) == set(stages("staged")) | {"total"}
    assert all(t >= 0 for t in result.timings_ms.values())
    assert sum(result.timings_ms[s] for s in stages("staged")) <= result.timings_ms["total"] * 1.01 + 0.1


def test_folded_and_fused_give_the_staged_overlays(pipelines, sample_bytes):
    """--preprocess folded (the normalization in the model) and --postprocess fused (the mask from the logits,
    one blur-and-overlay stage) do the same work: on the CPU the same masks and the same overlay files."""
    fast = Pipeline(Config(device="cpu", ops="torch", batch_size=5, preprocess="folded", postprocess="fused", **SMALL))
    staged, folded = pipelines["torch"].run(sample_bytes), fast.run(sample_bytes)
    assert folded.done == staged.done and torch.equal(folded.masks, staged.masks)
    assert folded.jpegs == staged.jpegs
    assert set(folded.timings_ms) == set(stages("folded", "fused")) | {"total"}
    assert {"normalize", "softmax", "blur"}.isdisjoint(folded.timings_ms) and "blur_overlay" in folded.timings_ms


def test_uninstrumented_run_gives_the_same_outputs(pipelines, sample_bytes):
    timed = pipelines["torch"].run(sample_bytes)
    bare = pipelines["torch"].run(sample_bytes, instrumented=False)
    assert bare.timings_ms == {} and torch.equal(bare.masks, timed.masks) and bare.jpegs == timed.jpegs


def test_engines_agree_on_masks(pipelines, sample_bytes):
    a, b = (pipelines[ops].run(sample_bytes).masks for ops in ("opencv", "torch"))
    assert (a == b).float().mean().item() >= MASK_MIN_AGREEMENT


def test_uniform_and_variable_batches_agree(pipelines, sample_bytes):
    """An image gives the same mask alone (uniform batch of one) and inside a mixed-size batch."""
    mixed = pipelines["torch"].run(sample_bytes)
    for index in (0, 3):
        alone = pipelines["torch"].run([sample_bytes[index]])
        assert torch.equal(alone.masks[0], mixed.masks[index])


def test_a_corrupt_image_costs_only_itself(pipelines, sample_bytes, photo):
    broken = jpeg_bytes(photo)
    broken = broken[:600] + bytes(len(broken) - 602) + b"\xff\xd9"  # header intact, scan data zeroed
    result = pipelines["opencv"].run([sample_bytes[0], broken, sample_bytes[2]])
    assert result.done in ([0, 2], [0, 1, 2])  # libjpeg may decode zeroed scan data as grey blocks
    assert len(result.jpegs) == len(result.done)


def test_cpu_and_cmyk_and_grayscale_decode_to_rgb(pipelines, photo):
    result = pipelines["torch"].run([jpeg_bytes(photo, "CMYK"), jpeg_bytes(photo, "L")])
    assert result.done == [0, 1]
    for overlay in result.overlays:
        assert overlay.shape == (512, 512, 3)


def test_config_errors_are_one_clear_line():
    cases = {
        "-th/--target_img_height is 0": dict(target_img_height=0),
        "-b/--batch_size is 0": dict(batch_size=0),
        "unknown class 'unicorn': choose one of __background__, aeroplane": dict(class_name="unicorn"),
        "unknown backend (-bk) 'tflite'": dict(backend="tflite"),
        "unknown model 'resnet'": dict(model="resnet"),
        "--blur_kernel is 4": dict(blur_kernel=4),
        "--blur_sigma is 1e-170: give 1e-06 to 1e+06": dict(blur_sigma=1e-170),
        "--blur_sigma is inf": dict(blur_sigma=float("inf")),
        "--precision fp16 needs a GPU": dict(device="cpu", precision="fp16"),
    }
    if torch.cuda.is_available():
        cases["--ops opencv is the CPU baseline"] = dict(device="cuda", ops="opencv")
    else:
        cases["--device cuda: this needs a CUDA GPU and this machine has none"] = dict(device="cuda")
    for message, changes in cases.items():
        with pytest.raises(HarnessError) as error:
            resolve(Config(**changes))
        assert message in str(error.value) and "\n" not in str(error.value)


def test_a_gaussian_kernel_that_is_not_finite_is_refused_where_it_is_built():
    """sigma's square is 0 below about 1e-162: the kernel would be 0/0, and the overlays black."""
    from harness.ops import gaussian_kernel1d

    with pytest.raises(HarnessError, match="--blur_sigma 1e-170 gives a Gaussian kernel that is not finite"):
        gaussian_kernel1d(27, 1e-170)
    assert gaussian_kernel1d(27, 1e-6)[13] == 1.0  # one tap: no blur, but finite


def test_batches_are_cut_into_consecutive_parts_within_the_pixel_budget():
    sizes = [(0, (2, 2)), (2, (2, 2)), (3, (4, 4)), (5, (1, 1)), (6, (2, 3))]
    assert within_budget(sizes, 8) == [[0, 2], [3], [5, 6]]  # an image over the budget goes alone
    assert within_budget(sizes, 100) == [[0, 2, 3, 5, 6]] and within_budget([], 8) == []
