"""GPU-only checks: decoders against each other, and the whole GPU pipeline with both model families.

Per-stage cvcuda-vs-torch comparisons live in test_ops.py with the CPU pairs.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from conftest import jpeg_bytes
from harness.chain import postprocess, preprocess
from harness.config import Config
from harness.resolve import resolve
from harness.decode import DECODERS
from harness.pipeline import Pipeline
from harness.tolerances import DECODE_MEAN_ABS_DIFF, DECODE_P999_DIFF, MASK_MIN_AGREEMENT, MASK_MIN_AGREEMENT_REDUCED

pytestmark = pytest.mark.gpu


def decoder(name: str):
    device = torch.device("cpu") if name == "cpu" else torch.device("cuda", 0)
    return DECODERS[name](device)


@pytest.fixture
def tricky_jpegs(photo):
    """Colour, grayscale and CMYK JPEGs of one photograph."""
    return [jpeg_bytes(photo), jpeg_bytes(photo, "L"), jpeg_bytes(photo, "CMYK")]


@pytest.mark.parametrize("name", ["torchvision", "nvimgcodec"])
def test_gpu_decoders_match_the_cpu_decoder(name, request, sample_bytes, tricky_jpegs):
    if name == "nvimgcodec":
        request.getfixturevalue("nvimgcodec_module")
    datas = sample_bytes + tricky_jpegs
    expected = decoder("cpu")(datas)
    gpu_decoder = decoder(name)
    busy = Pipeline(Config(device="cuda", ops="torch", decoder="cpu", model="deeplabv3_resnet101",
                           weights="synthetic", batch_size=8))
    busy.prepare(8)  # returns with inference still queued and its freed memory back in PyTorch's cache:
    actual = gpu_decoder(datas)  # a decoder writing there from another stream corrupted images on the H100
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert isinstance(a, torch.Tensor), f"image {i}: {a}"
        assert a.device.type == "cuda" and a.dtype == torch.uint8 and a.shape == e.shape and a.shape[-1] == 3
        diff = (a.cpu().int() - e.int()).abs().float()
        mean, p999 = diff.mean().item(), diff.flatten().quantile(0.999).item()
        print(f"{name} image {i}: mean |diff| {mean:.3f}, p99.9 {p999:.0f}, max {diff.max().item():.0f}")
        assert mean <= DECODE_MEAN_ABS_DIFF and p999 <= DECODE_P999_DIFF, f"image {i}: mean {mean:.3f}, p99.9 {p999}"


@pytest.mark.parametrize("name", ["torchvision", "nvimgcodec"])
def test_gpu_decoders_report_bad_images_and_keep_good_ones(name, request, sample_bytes):
    if name == "nvimgcodec":
        request.getfixturevalue("nvimgcodec_module")
    junk = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"
    out = decoder(name)([sample_bytes[0], junk, sample_bytes[1]])
    assert isinstance(out[0], torch.Tensor) and isinstance(out[2], torch.Tensor)
    assert isinstance(out[1], str)


def test_gpu_codec_threads_set_nvimagecodec_pools_and_the_pipeline_still_matches(monkeypatch, sample_bytes,
                                                                               cvcuda_module, nvimgcodec_module):
    expected = decoder("cpu")(sample_bytes)
    monkeypatch.setenv("HARNESS_CODEC_THREADS", "1")  # one CPU thread in each decoder and encoder
    actual = decoder("nvimgcodec")(sample_bytes)
    for a, e in zip(actual, expected, strict=True):
        assert isinstance(a, torch.Tensor) and a.shape == e.shape
        assert (a.cpu().int() - e.int()).abs().float().mean().item() <= DECODE_MEAN_ABS_DIFF
    config = Config(device="cuda", ops="cvcuda", decoder="nvimgcodec", model="fcn_resnet101", weights="synthetic",
                    class_name="bicycle", batch_size=5)
    result = Pipeline(config).run(sample_bytes)
    assert result.done == [0, 1, 2, 3, 4] and all(j[:2] == b"\xff\xd8" for j in result.jpegs)


def cpu_reference(model: str, sample_bytes) -> torch.Tensor:
    config = Config(device="cpu", ops="torch", model=model, weights="synthetic", class_name="bicycle")
    return Pipeline(config).run(sample_bytes).masks


@pytest.fixture(scope="module")
def references(sample_bytes):
    return {m: cpu_reference(m, sample_bytes) for m in ("deeplabv3_resnet101", "fcn_resnet101")}


@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16"])
@pytest.mark.parametrize("model", ["deeplabv3_resnet101", "fcn_resnet101"])
@pytest.mark.parametrize("ops,decoder_name", [("cvcuda", "nvimgcodec"), ("torch", "torchvision")])
def test_gpu_pipeline_matches_the_cpu_pipeline(ops, decoder_name, model, precision, request, references,
                                               sample_bytes):
    if ops == "cvcuda":
        request.getfixturevalue("cvcuda_module")
        request.getfixturevalue("nvimgcodec_module")
    config = Config(device="cuda", ops=ops, decoder=decoder_name, model=model, weights="synthetic",
                    precision=precision, class_name="bicycle", batch_size=5)
    pipeline = Pipeline(config)
    pipeline.prepare(5)
    result = pipeline.run(sample_bytes)
    assert result.done == [0, 1, 2, 3, 4]
    assert result.masks.device.type == "cuda"
    agreement = (result.masks.cpu() == references[model]).float().mean().item()
    floor = MASK_MIN_AGREEMENT if precision == "fp32" else MASK_MIN_AGREEMENT_REDUCED
    assert agreement >= floor, f"{ops}/{model}/{precision}: masks agree on {agreement:.4f} of pixels"
    assert len(result.jpegs) == 5 and all(j[:2] == b"\xff\xd8" for j in result.jpegs)
    print(f"{ops}/{decoder_name}/{model}/{precision}: mask agreement with CPU {agreement:.4%}, "
          f"stage ms {({k: round(v, 3) for k, v in result.timings_ms.items()})}")


def test_gpu_uniform_batch_with_channels_last(request, photo, cvcuda_module):
    data = jpeg_bytes(photo)
    config = Config(device="cuda", ops="cvcuda", model="lraspp_mobilenet_v3_large", weights="synthetic",
                    channels_last=True, batch_size=4)
    result = Pipeline(config).run([data] * 4)
    assert result.done == [0, 1, 2, 3]
    assert isinstance(result.overlays, torch.Tensor) and result.overlays.shape == (4, 512, 512, 3)
    assert torch.equal(result.masks[0], result.masks[3])


@pytest.mark.parametrize("ops", ["cvcuda", "torch"])
@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "variable"])
def test_gpu_stages_never_wait_for_the_host(ops, uniform, request, sample_bytes):
    """Between decode and encode nothing synchronizes: PyTorch's sync debug mode turns any synchronizing
    call it makes (.item(), host copies, ...) into an error.  (CV-CUDA calls are asynchronous by contract.)"""
    if ops == "cvcuda":
        request.getfixturevalue("cvcuda_module")
    config = Config(device="cuda", ops=ops, decoder="torchvision", model="lraspp_mobilenet_v3_large",
                    weights="synthetic", batch_size=3)
    pipeline = Pipeline(config)
    pipeline.prepare(3)
    datas = [sample_bytes[0]] * 3 if uniform else sample_bytes[:3]
    frames = [f for f in pipeline.decoder(datas)]
    frames = torch.stack(frames) if uniform else frames
    engine = pipeline.engine
    torch.cuda.synchronize()
    try:
        with warnings.catch_warnings():  # "sync debug mode is a prototype feature"
            warnings.simplefilter("ignore", UserWarning)
            torch.cuda.set_sync_debug_mode("error")
        x = preprocess(engine, frames, (224, 224))
        _, overlays = postprocess(engine, frames, pipeline.backend(x), 15)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(engine.encode(overlays)) == 3


def test_gpu_encoders_honour_jpeg_quality(cvcuda_module, photo):
    from harness.ops import ENGINES

    frames = torch.from_numpy(photo)[None].cuda()
    for name in ("cvcuda", "torch"):
        engines = [ENGINES[name](resolve(Config(device="cuda", jpeg_quality=q))) for q in (30, 95)]
        sizes = [len(engine.encode(frames)[0]) for engine in engines]
        assert sizes[0] < sizes[1] * 0.7, f"{name}: quality 30 gave {sizes[0]} bytes, 95 gave {sizes[1]}"


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_gpu_fp16_masks_agree_in_both_memory_formats(channels_last, request, references, sample_bytes):
    """Channels-last is the GPU fp16/tf32 default: NCHW must give the same masks within the fp16 floor."""
    request.getfixturevalue("cvcuda_module")
    config = Config(device="cuda", ops="cvcuda", model="deeplabv3_resnet101", weights="synthetic",
                    precision="fp16", class_name="bicycle", batch_size=5, channels_last=channels_last)
    pipeline = Pipeline(config)
    assert pipeline.backend.channels_last is channels_last
    result = pipeline.run(sample_bytes)
    agreement = (result.masks.cpu() == references["deeplabv3_resnet101"]).float().mean().item()
    assert agreement >= MASK_MIN_AGREEMENT_REDUCED, f"{config.channels_last}: masks agree on {agreement:.4f}"


FASTEST_OPTIONS = dict(compile="default", cuda_graph=True, preprocess="folded", postprocess="fused", fuse_conv=True)


@pytest.mark.parametrize("precision,options", [("fp32", dict(preprocess="folded", postprocess="fused")),
                                               ("tf32", FASTEST_OPTIONS), ("fp16", FASTEST_OPTIONS)],
                         ids=["folded-fused", "tf32", "fp16"])
def test_gpu_fast_options_match_the_cpu_pipeline(precision, options, request, references, sample_bytes):
    """Compiled inference in a CUDA graph, the folded normalization and the fused post-processing do the
    sample's work: masks as the CPU pipeline's (a partial last batch, padded for the graph, included)."""
    request.getfixturevalue("cvcuda_module")
    config = Config(device="cuda", ops="cvcuda", model="fcn_resnet101", weights="synthetic", precision=precision,
                    class_name="bicycle", batch_size=4, **options)
    pipeline = Pipeline(config)
    pipeline.prepare(4)
    result = [pipeline.run(sample_bytes[:4]), pipeline.run(sample_bytes[4:])]
    masks = torch.cat([r.masks.cpu() for r in result])
    agreement = (masks == references["fcn_resnet101"]).float().mean().item()
    floor = MASK_MIN_AGREEMENT if precision == "fp32" else MASK_MIN_AGREEMENT_REDUCED
    assert agreement >= floor, f"{options}/{precision}: masks agree on {agreement:.4f} of pixels"
    assert [len(r.jpegs) for r in result] == [4, 1]
    print(f"{precision} {options}: mask agreement with CPU {agreement:.4%}, set-up "
          f"{pipeline.backend.setup_seconds:.1f} s, stage ms {result[0].timings_ms}")


def test_gpu_compiled_graph_and_fused_stages_never_wait_for_the_host(sample_bytes):
    from harness.timing import NullClock

    config = Config(device="cuda", ops="torch", decoder="torchvision", model="lraspp_mobilenet_v3_large",
                    weights="synthetic", batch_size=3, **FASTEST_OPTIONS)
    pipeline = Pipeline(config)
    pipeline.prepare(3)
    frames = torch.stack(pipeline.decoder([sample_bytes[0]] * 3))
    with torch.inference_mode():
        pipeline.compute(frames, NullClock(pipeline.device))  # the fused post-processing compiles here
        torch.cuda.synchronize()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                torch.cuda.set_sync_debug_mode("error")
            masks, overlays = pipeline.compute(frames, NullClock(pipeline.device))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert overlays.shape == frames.shape and masks.shape == (3, 224, 224, 1)


def test_the_probes_timer_times_gpu_work(tmp_path):
    """harness.timing.cuda_times_ms, the tools' one timer: a positive, finite time for each call of GPU work,
    nothing left queued after it, and a probe file of them that the report reads (no two timings are compared:
    a test checks, a benchmark measures)."""
    import math

    from harness.benchkit import Case
    from harness.report.load import load
    from harness.run_file import probe_entry, write_probe_file
    from harness.timing import cuda_times_ms, median_cuda_ms

    x = torch.randn(1024, 1024, device="cuda")
    times = cuda_times_ms(lambda: x @ x, runs=5, warmup=1)
    assert len(times) == 5 and all(0 < ms and math.isfinite(ms) for ms in times)
    assert 0 < median_cuda_ms(lambda: x @ x, runs=3, warmup=0) and torch.cuda.current_stream().query()
    case = Case("inference", "matmul", "cuda", "fp32", 1, (1024, 1024), "", "probe:matmul")
    write_probe_file(tmp_path / "probe.json", [probe_entry("matmul", case, times, flops=2 * 1024**3)], "test")
    row = load([tmp_path / "probe.json"]).iloc[0]
    assert row["kind"] == "probe" and row["hardware"] == torch.cuda.get_device_name(0) and row["tflops_per_s"] > 0
