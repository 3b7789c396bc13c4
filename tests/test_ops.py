"""Each stage of each ops engine against the reference (the torch engine), plus hand-computed values.

Pairs that need a GPU are marked `gpu`; the cvcuda pair also needs CV-CUDA and says so when skipped.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import decode_rgb
from harness import STAGES
from harness.chain import preprocess
from harness.compare import psnr
from harness.config import Config
from harness.resolve import resolve
from harness.models import CLASS_NAMES
from harness.ops import ENGINES, gaussian_kernel1d, per_image
from harness.tolerances import (DOWNSCALED_BLUR_MIN_PSNR_DB, ENCODE_MIN_PSNR_DB, FLOAT_ATOL, UINT8_MAX_DIFF,
                                UPSCALE_MAX_MISMATCH)

CLASS = CLASS_NAMES.index(Config().class_name)  # the class every pipeline keeps by default
REFERENCE = ("torch", "cpu")
#: Every registered engine on every device it declares, against the reference: a new engine is tested here
#: by registering it.  Pairs on a GPU are marked `gpu`; an engine whose library is missing says so when skipped.
PAIRS = [pytest.param(name, device, id=f"{name}-{device}_vs_torch-cpu",
                      marks=pytest.mark.gpu if device == "cuda" else ())
         for name in ENGINES.names() for device in ENGINES[name].devices if (name, device) != REFERENCE]


def make_engine(name: str, device: str, **changes):
    """The engine as the pipeline builds it: from the plan of a request with these changes."""
    return ENGINES[name](resolve(Config(device=device, **changes)))


def to(frames, device):
    return frames.to(device) if isinstance(frames, torch.Tensor) else [f.to(device) for f in frames]


def cpu(frames):
    return to(frames, "cpu")


def clone(frames):
    return frames.clone() if isinstance(frames, torch.Tensor) else [f.clone() for f in frames]


def assert_same_frames(a, b):
    for x, y in zip(per_image(a), per_image(b), strict=True):
        assert torch.equal(x.cpu(), y.cpu())


@pytest.fixture(scope="module")
def variable_frames(sample_bytes):
    """The five shipped photographs: five sizes, one of them from a grayscale JPEG."""
    return [torch.from_numpy(decode_rgb(b).copy()) for b in sample_bytes]


@pytest.fixture(scope="module")
def uniform_frames(photo):
    """Three 1080p-like crops of one photograph scaled up: a uniform NHWC batch."""
    big = cv2.resize(photo, (720, 405), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.stack([big, big[:, ::-1].copy(), big[::-1].copy()]))


@pytest.fixture(params=["uniform", "variable"])
def frames(request, uniform_frames, variable_frames):
    return uniform_frames if request.param == "uniform" else variable_frames


def stage_inputs(frames, model_size=(224, 224)):
    """Inputs of every stage, computed on the CPU with the reference engine."""
    ref = make_engine("torch", "cpu")
    resized = ref.resize(frames, model_size)
    converted = ref.convert(resized)
    normalized = ref.normalize(converted)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(resized.shape[0], 21, *model_size, generator=generator) * 3
    probs = ref.softmax(logits)
    masks = ref.mask(probs, CLASS)
    full = ref.upscale(masks, frames)
    blurred = ref.blur(frames)
    return dict(
        resize=(frames, model_size), convert=(resized,), normalize=(converted,), reformat=(normalized,),
        softmax=(logits,), mask=(probs, CLASS), upscale=(masks, frames), blur=(frames,),
        blur_downscaled=(frames,), overlay=(frames, blurred, full), blur_overlay=(frames, masks),
    )


def run_checked(engine, stage, args):
    """Run one stage and check what every stage must do: leave its inputs alone and answer on its device."""
    before = [clone(a) for a in args if isinstance(a, (torch.Tensor, list))]
    out = getattr(engine, stage)(*args)
    after = [a for a in args if isinstance(a, (torch.Tensor, list))]
    for b, a in zip(before, after):
        assert_same_frames(b, a)
    for image in per_image(out):
        assert image.device.type == engine.device.type, f"{engine.name}.{stage} answered on {image.device}"
    return out


#: Every stage between decode and encode that an engine implements on its own (from the one stage table;
#: fused preprocessing is CV-CUDA's and has its own test), plus the downscaled blur.
ENGINE_STAGES = [s for s in STAGES if s not in ("decode", "preprocess", "inference", "encode")] + ["blur_downscaled"]


@pytest.mark.parametrize("stage", ENGINE_STAGES)
@pytest.mark.parametrize("engine_name,device", PAIRS)
def test_stage_matches_reference(engine_name, device, stage, frames):
    if reason := ENGINES.unavailable(engine_name, device):
        pytest.skip(reason)
    inputs = stage_inputs(frames)[stage]
    mode = {"blur_downscaled": {"blur_mode": "downscaled"}, "blur_overlay": {"postprocess": "fused"}}.get(stage, {})
    method = "blur" if stage == "blur_downscaled" else stage
    expected = run_checked(make_engine("torch", "cpu", **mode), method, inputs)
    engine = make_engine(engine_name, device, **mode)
    moved = tuple(to(a, device) if isinstance(a, (torch.Tensor, list)) else a for a in inputs)
    actual = run_checked(engine, method, moved)
    assert isinstance(actual, torch.Tensor) == isinstance(expected, torch.Tensor), "batch structure changed"
    for a, e in zip(per_image(actual), per_image(expected), strict=True):
        a = a.cpu()
        assert a.dtype == e.dtype and a.shape == e.shape
        if stage == "upscale":
            mismatch = (a != e).float().mean().item()
            assert mismatch <= UPSCALE_MAX_MISMATCH, f"upscale: {mismatch:.2%} of pixels differ"
        elif stage == "blur_overlay":  # the blur's tolerance, except where the upscaled masks differ
            mismatch = ((a.int() - e.int()).abs() > UINT8_MAX_DIFF[stage]).any(-1).float().mean().item()
            assert mismatch <= UPSCALE_MAX_MISMATCH, f"{stage}: {mismatch:.2%} of pixels differ beyond the blur's"
        elif e.dtype == torch.uint8:
            worst = (a.int() - e.int()).abs().max().item()
            assert worst <= UINT8_MAX_DIFF.get(stage, 0), f"{stage}: max |diff| {worst}"
        else:
            worst = (a - e).abs().max().item()
            assert worst <= FLOAT_ATOL[stage], f"{stage}: max |diff| {worst:.3g}"


ODD_SIZES = [(1, 1), (2, 3), (17, 31), (40, 13), (405, 720)]


@pytest.mark.parametrize("engine_name,device", PAIRS + [pytest.param(*REFERENCE, id="torch-cpu")])
def test_encode_round_trips(engine_name, device, frames):
    if reason := ENGINES.unavailable(engine_name, device):
        pytest.skip(reason)
    engine = make_engine(engine_name, device)
    jpegs = engine.encode(to(frames, device))
    for data, original in zip(jpegs, per_image(frames), strict=True):
        assert data[:3] == b"\xff\xd8\xff"
        decoded = decode_rgb(data)
        assert decoded.shape == tuple(original.shape)
        assert psnr(decoded, original.numpy()) >= ENCODE_MIN_PSNR_DB


# Hand-computed values --------------------------------------------------------------------------------

@pytest.fixture(params=["torch", "opencv"])
def cpu_engine(request):
    return make_engine(request.param, "cpu")


def test_resize_halving_averages_2x2_blocks(cpu_engine):
    image = torch.tensor([[0, 2, 10, 20], [4, 6, 30, 40], [100, 100, 7, 9], [100, 100, 11, 13]], dtype=torch.uint8)
    frames = image[None, :, :, None].expand(1, 4, 4, 3).contiguous()
    out = cpu_engine.resize(frames, (2, 2))[0, :, :, 0]
    assert out.tolist() == [[3, 25], [100, 10]]


def test_convert_normalize_reformat_by_hand(cpu_engine):
    x = torch.tensor([[[[0, 255, 124]]]], dtype=torch.uint8)  # one pixel; 124/255 is about the mean's blue
    converted = cpu_engine.convert(x)
    assert converted.flatten().tolist() == pytest.approx([0.0, 1.0, 124 / 255], abs=1e-7)
    normalized = cpu_engine.normalize(converted).flatten().tolist()
    assert normalized == pytest.approx([-0.485 / 0.229, (1 - 0.456) / 0.224, (124 / 255 - 0.406) / 0.225], abs=1e-5)
    nhwc = torch.arange(24, dtype=torch.float32).reshape(1, 2, 4, 3)
    assert torch.equal(cpu_engine.reformat(nhwc), nhwc.permute(0, 3, 1, 2))


def test_softmax_and_mask_by_hand(cpu_engine):
    logits = torch.zeros(1, 21, 1, 2)
    logits[0, CLASS, 0, 0] = 5.0  # pixel 0 is the class, pixel 1 is a tie that argmax gives to class 0
    probs = cpu_engine.softmax(logits)
    assert probs.sum(dim=1).flatten().tolist() == pytest.approx([1.0, 1.0])
    assert probs[0, CLASS, 0, 0].item() == pytest.approx(np.exp(5) / (np.exp(5) + 20), rel=1e-6)
    assert cpu_engine.mask(probs, CLASS).flatten().tolist() == [255, 0]


def test_upscale_nearest_replicates(cpu_engine):
    masks = torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8)[None, :, :, None]
    frames = torch.zeros(1, 4, 6, 3, dtype=torch.uint8)
    out = cpu_engine.upscale(masks, frames)[0, :, :, 0]
    assert out.tolist() == [[0, 0, 0, 255, 255, 255]] * 2 + [[255, 255, 255, 0, 0, 0]] * 2


def test_blur_keeps_constant_images_and_overlay_selects(cpu_engine):
    flat = torch.full((1, 40, 50, 3), 77, dtype=torch.uint8)
    assert torch.equal(cpu_engine.blur(flat), flat)  # the kernel sums to 1 and the border reflects
    frames = torch.full((1, 2, 2, 3), 200, dtype=torch.uint8)
    blurred = torch.full((1, 2, 2, 3), 10, dtype=torch.uint8)
    masks = torch.tensor([[255, 0], [0, 255]], dtype=torch.uint8)[None, :, :, None]
    out = cpu_engine.overlay(frames, blurred, masks)[0, :, :, 0]
    assert out.tolist() == [[200, 10], [10, 200]]


def test_gaussian_kernel_is_opencvs():
    for size, sigma in [(27, 25.0), (15, 5.0), (3, 0.8)]:
        expected = cv2.getGaussianKernel(size, sigma, cv2.CV_64F).ravel()
        np.testing.assert_allclose(gaussian_kernel1d(size, sigma), expected, rtol=1e-12)


def test_engine_registry_rejects_duplicates_and_names_choices():
    from harness import HarnessError

    with pytest.raises(ValueError, match="registered twice"):
        ENGINES.register("torch")(object)
    with pytest.raises(HarnessError, match="choose one of cvcuda, opencv, torch"):
        ENGINES["nope"]


def test_downscaled_blur_looks_like_the_exact_blur(uniform_frames, cpu_engine):
    """The cheaper blur must give the same visible effect: far closer to the exact blur than the exact blur
    is to the original image."""
    exact = cpu_engine.blur(uniform_frames)
    cheap = make_engine(cpu_engine.name, "cpu", blur_mode="downscaled").blur(uniform_frames)
    assert psnr(cheap.numpy(), exact.numpy()) >= DOWNSCALED_BLUR_MIN_PSNR_DB
    assert psnr(exact.numpy(), uniform_frames.numpy()) < DOWNSCALED_BLUR_MIN_PSNR_DB - 15


@pytest.mark.gpu
def test_fused_preprocess_matches_the_staged_reference(frames, cvcuda_module):
    """CV-CUDA's resize_crop_convert_reformat plus the NCHW normalization against the reference's four
    stages: the fused kernel rounds its interpolation to uint8 as the staged resize does, so the results
    differ only where the two resizes' roundings do (one level: 1/255/std after normalization)."""
    from harness.ops import IMAGENET_STD

    ref = make_engine("torch", "cpu")
    expected = preprocess(ref, frames, (224, 224))
    actual = preprocess(make_engine("cvcuda", "cuda"), to(frames, "cuda"), (224, 224), "fused").cpu()
    assert actual.shape == expected.shape and actual.dtype == torch.float32
    level = UINT8_MAX_DIFF["resize"] / 255 / min(IMAGENET_STD)
    worst = (actual - expected).abs().max().item()
    assert worst <= level + 1e-5, f"fused preprocess: max |diff| {worst:.3g}"
    assert (actual - expected).abs().mean().item() < level / 20  # almost every value equal


def test_the_band_prepared_ahead_is_the_one_the_blur_uses():
    """The engines build the band matrix before any batch (its copy to the GPU makes the host wait): the blur
    must find that one in the cache, not build its own."""
    from harness.ops.banded import band_matrix, gaussian_nhwc, prepare_band

    band_matrix.cache_clear()
    prepare_band(27, 25.0, torch.device("cpu"))
    gaussian_nhwc(torch.zeros(1, 64, 64, 3, dtype=torch.uint8), 27, 25.0)
    assert (band_matrix.cache_info().misses, band_matrix.cache_info().hits) == (1, 1)


@pytest.mark.parametrize("size", [(1080, 1920), (28, 29), (130, 257)])
def test_the_banded_blur_is_the_separable_gaussian(size):
    """The tensor-core formulation (strided windows times a band matrix, NHWC, batch-wide buffers), computed
    in float64 on the CPU, against the reference's two convolutions: tiles, halos, the reflected border and
    the windows that run past a row or an image included.  Only a .5 can round differently."""
    from harness.ops.banded import gaussian_nhwc

    engine = make_engine("torch", "cpu")
    frames = torch.randint(0, 256, (2, *size, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    banded = gaussian_nhwc(frames, engine.blur_kernel, engine.blur_sigma, torch.float64)
    reference = engine.blur(frames)
    assert banded.shape == reference.shape == frames.shape and banded.dtype == torch.uint8
    difference = (banded.int() - reference.int()).abs()
    assert difference.max().item() <= 1 and difference.float().mean().item() < 0.01


@pytest.mark.gpu
def test_the_gpu_blur_is_within_one_grey_level_of_the_reference_at_1080p(photo):
    """The fp16 tensor-core path on 1080p frames (the sizes the pipeline sees) against the CPU reference."""
    frames = torch.from_numpy(np.stack([cv2.resize(photo, (1920, 1080)), cv2.resize(photo, (1920, 1080))[::-1]]))
    expected = make_engine("torch", "cpu").blur(frames)
    for name in ("torch", "cvcuda"):
        if reason := ENGINES.unavailable(name, "cuda"):
            pytest.skip(reason)
        actual = make_engine(name, "cuda").blur(frames.cuda()).cpu()
        worst = (actual.int() - expected.int()).abs().max().item()
        assert worst <= 1, f"{name}: max |diff| {worst}"
