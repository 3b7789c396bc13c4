"""The command line through a subprocess: the default run, the sample's messages, and every bad input."""

from __future__ import annotations


import pytest
import torch

from conftest import decode_rgb, jpeg_bytes
from helpers import ROOT, SMALL_CPU_RUN, SMALL_MODEL, assert_one_line_error, harness, in_process
from harness.backends import BACKENDS

def test_default_run_segments_the_shipped_images(tmp_path):
    """No options but the output directory: shipped images, default model, weights 'auto'."""
    result = harness("-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Read a total of 5 JPEG images."
    assert "Processing batch 1 of 5" in lines and any(l.startswith("Processing batch 5 of 5") for l in lines)
    saved = [l.strip() for l in lines if "Saving the overlay result" in l]
    assert saved[0] == f"Saving the overlay result for person class to: {tmp_path / 'out_astronaut.jpg'}"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["out_astronaut.jpg", "out_camera.jpg", "out_chelsea.jpg", "out_coffee.jpg", "out_rocket.jpg"]
    assert decode_rgb((tmp_path / "out_chelsea.jpg").read_bytes()).shape == (300, 451, 3)
    if "synthetic" in result.stdout:
        assert "masks are not meaningful" in result.stderr


def test_replicated_file_gets_distinct_outputs_and_a_partial_last_batch(tmp_path, sample_paths):
    result = harness("-i", str(sample_paths[2]), "-o", str(tmp_path), "-b", "3", "-c", "motorbike", *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_chelsea.jpg", "out_chelsea_1.jpg", "out_chelsea_2.jpg"]
    result = harness("-i", str(ROOT / "harness" / "data"), "-o", str(tmp_path / "d"), "-b", "2", *SMALL_MODEL)
    assert result.returncode == 0 and "Processing batch 3 of 3" in result.stdout
    assert len(list((tmp_path / "d").iterdir())) == 5


@pytest.fixture
def mixed_dir(tmp_path, sample_bytes, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_good.jpg").write_bytes(sample_bytes[0])
    (folder / "b_empty.jpg").write_bytes(b"")
    (folder / "c_truncated.jpg").write_bytes(jpeg_bytes(photo)[:5000])
    (folder / "d_png.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (folder / "e_text.jpeg").write_text("not an image\n")
    (folder / "f_good.JPG").write_bytes(sample_bytes[2])
    return folder


def test_directory_run_skips_bad_files_and_processes_the_rest(mixed_dir, tmp_path):
    result = harness("-i", str(mixed_dir), "-o", str(tmp_path / "out"), "-b", "4", *SMALL_MODEL)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["out_a_good.jpg", "out_f_good.jpg"]
    skipped = [l for l in result.stderr.splitlines() if l.startswith("Skipping")]
    assert len(skipped) == 4
    assert "skipped 4 bad file(s)" in result.stdout


def test_strict_makes_a_bad_file_fatal(mixed_dir, tmp_path):
    result = harness("-i", str(mixed_dir), "-o", str(tmp_path / "out"), "--strict", *SMALL_MODEL)
    assert_one_line_error(result, "b_empty.jpg is empty")


@pytest.mark.parametrize("content,words", [
    (b"", ["is empty"]),
    (b"\xff\xd8\xff\xe0" + bytes(3000), ["truncated"]),
    (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9", ["is corrupt"]),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), ["is a PNG image"]),
    (b"plain text\n", ["not a JPEG image"]),
], ids=["empty", "truncated", "corrupt", "png", "text"])
def test_bad_single_files(tmp_path, capsys, content, words):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    assert_one_line_error(in_process(capsys, "-i", str(path), "-o", str(tmp_path / "out"), *SMALL_MODEL), *words)
    assert not (tmp_path / "out" / "out_bad.jpg").exists()


@pytest.mark.parametrize("args,words", [
    (["-i", "/nonexistent/pictures"], ["input path not found", "/nonexistent/pictures"]),
    (["-c", "unicorn"], ["unknown class 'unicorn'", "person", "dog"]),
    (["-th", "0"], ["-th/--target_img_height is 0"]),
    (["-tw", "-5"], ["-tw/--target_img_width is -5"]),
    (["-th", "100000"], ["-th/--target_img_height is 100000", "8192"]),
    (["-b", "0"], ["-b/--batch_size is 0"]),
    (["-b", "two"], ["-b/--batch_size", "invalid int value"]),
    (["-d", "99"], ["-d/--device_id 99 does not exist"]),
    (["-bk", "tflite"], ["unknown backend (-bk) 'tflite'", "pytorch"]),
    (["--model", "unet"], ["unknown model 'unet'", "fcn_resnet101"]),
    (["--ops", "vpi"], ["unknown ops engine (--ops) 'vpi'", "cvcuda"]),
    (["--decoder", "dali"], ["unknown decoder (--decoder) 'dali'", "nvimgcodec"]),
    (["--preprocess", "fast"], ["unknown preprocessing (--preprocess) 'fast'", "fused"]),
    (["--preprocess", "fused", "--device", "cpu"], ["--preprocess fused", "--ops cvcuda"]),
    (["--aux_head", "-bk", "onnxruntime"], ["--aux_head is for -bk pytorch"]),
    (["--postprocess", "fast"], ["unknown post-processing (--postprocess) 'fast'", "fused"]),
    (["--compile", "fast"], ["unknown compile mode (--compile) 'fast'", "max-autotune"]),
    (["--compile", "default", "-bk", "onnxruntime"], ["--compile is for -bk pytorch"]),
    (["--cuda_graph", "--device", "cpu"], ["--cuda_graph needs a CUDA GPU"]),
    (["--cuda_graph", "--compile", "reduce-overhead"], ["captures CUDA graphs itself", "drop --cuda_graph"]),
    (["--fuse_conv", "-bk", "onnxruntime"], ["--fuse_conv is for -bk pytorch"]),
], ids=["missing", "class", "height0", "width-neg", "huge", "batch0", "batch-text", "device", "backend", "model",
        "ops", "decoder", "preprocess", "fused-on-cpu", "aux-onnx", "postprocess", "compile", "compile-onnx",
        "graph-on-cpu", "graph-twice", "fuse-conv-onnx"])
def test_bad_options(tmp_path, capsys, args, words):
    """In this process (the contract is the same code either way: test_a_bad_option_is_one_line_from_a_fresh_
    interpreter runs it as a user does)."""
    assert_one_line_error(in_process(capsys, *SMALL_MODEL, *args, "-o", str(tmp_path)), *words)


@pytest.mark.parametrize("args,words", [(["-b", "two"], ["-b/--batch_size", "invalid int value"]),
                                        (["-c", "unicorn"], ["unknown class 'unicorn'"])], ids=["argparse", "plan"])
def test_a_bad_option_is_one_line_from_a_fresh_interpreter(tmp_path, args, words):
    result = harness(*SMALL_MODEL, *args, "-o", str(tmp_path))
    assert_one_line_error(result, *words)
    assert result.returncode in (1, 2) and result.stdout == ""


@pytest.mark.parametrize("args,words", [
    (["--depth", "0"], ["--depth is 0", "1 or more"]),
    (["--blur_sigma", "1e-170"], ["--blur_sigma is 1e-170", "give 1e-06 to 1e+06"]),
    (["--blur_sigma", "1e-170", "--blur_mode", "downscaled"], ["--blur_sigma is 1e-170"]),
], ids=["depth0", "sigma-nan-kernel", "sigma-downscaled"])
def test_bad_values_are_refused_before_any_model_work(tmp_path, capsys, monkeypatch, args, words):
    """Refused from the arguments: no model is built, no output directory made."""
    monkeypatch.setattr("harness.pipeline.Pipeline", lambda *a, **k: pytest.fail("a pipeline was built"))
    result = in_process(capsys, *SMALL_MODEL, *args, "-o", str(tmp_path / "out"))
    assert_one_line_error(result, *words)
    assert result.returncode == 1 and result.stdout == "" and not (tmp_path / "out").exists()


def test_directory_without_jpegs(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert_one_line_error(in_process(capsys, "-i", str(tmp_path), "-o", str(tmp_path / "o"), *SMALL_MODEL),
                          "no .jpg/.jpeg files")


def test_output_directory_not_writable(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert_one_line_error(in_process(capsys, "-o", str(blocker / "out"), *SMALL_MODEL), "is not writable")


def test_a_missing_dependency_is_named_in_one_line(tmp_path):
    """A dependency missing from the environment (simplejpeg was, on a GPU machine) stops the run with one
    line that names it and the fix, not an internal error."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "sitecustomize.py").write_text("import sys\nsys.modules['simplejpeg'] = None\n")
    result = harness("-o", str(tmp_path / "out"), *SMALL_MODEL, first_on_path=blocked)
    assert_one_line_error(result, "'simplejpeg' is missing", "pip install")
    assert "internal error" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU, so GPU options are valid here")
@pytest.mark.parametrize("option", [["--ops", "cvcuda"], ["--decoder", "nvimgcodec"], ["--device", "cuda"],
                                    ["--precision", "fp16"]])
def test_gpu_options_without_a_gpu(tmp_path, capsys, option):
    assert_one_line_error(in_process(capsys, *option, "-o", str(tmp_path), *SMALL_MODEL), "GPU")


@pytest.mark.skipif(not BACKENDS.unavailable("tensorrt"), reason="TensorRT is installed here")
def test_tensorrt_where_it_is_not_installed(tmp_path, capsys):
    assert_one_line_error(in_process(capsys, "-bk", "tensorrt", "-o", str(tmp_path)), "TensorRT", "not installed")


def test_onnxruntime_backend_from_the_command_line(tmp_path):
    cache = tmp_path / "cache"
    result = harness(*SMALL_MODEL, "-bk", "onnxruntime", "--device", "cpu", "--cache_dir", str(cache), "-b", "2",
                     "--partial_batch", "pad", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "backend onnxruntime" in result.stdout
    assert len(list((tmp_path / "out").iterdir())) == 5
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1


def test_onnxruntime_refuses_reduced_precision(tmp_path, capsys):
    if not torch.cuda.is_available():
        pytest.skip("fp16 is refused earlier on a machine without a GPU (test_gpu_options_without_a_gpu)")
    assert_one_line_error(in_process(capsys, *SMALL_MODEL, "-bk", "onnxruntime", "--precision", "fp16", "-o",
                                     str(tmp_path)), "runs the fp32 graph")


def test_json_writes_the_run_as_a_benchmark_file_the_report_reads(tmp_path, sample_paths, capsys):
    """The main job's numbers: images/s, per-stage medians and lanes, in the layout harness.report reads."""
    import json
    import re

    from harness.report.load import load

    target = tmp_path / "run.json"
    result = in_process(capsys, "-i", str(sample_paths[0].parent), "-o", str(tmp_path / "out"), "-b", "2",
                        "--json", str(target), *SMALL_CPU_RUN)
    assert result.returncode == 0, result.stderr
    assert f"Wrote the results to {target}" in result.stdout
    data = json.loads(target.read_text())
    assert data["version"] == "harness" and [b["name"] for b in data["benchmarks"]] == [
        "distributed_throughput[rank0]", "distributed_throughput[all]"]
    mine = data["benchmarks"][0]["extra_info"]
    assert mine["images"] == 5 and mine["images_per_s"] > 0 and mine["device"] == "cpu"
    assert {"decode", "inference", "encode"} <= set(mine["stage_ms"]) and mine["stage_sum_ms"] > 0
    assert set(mine["lane_seconds"]) == {"read", "decode", "compute", "encode", "write"} and mine["lane_spans"]
    # the CPU machine decodes and computes on the lanes' threads: their CPU time is recorded, and the process's
    assert set(mine["lane_cpu_seconds"]) == set(mine["lane_seconds"]) and mine["lane_cpu_seconds"]["compute"] > 0
    assert isinstance(mine["process_cpu_seconds"], float) and mine["process_cpu_seconds"] > 0
    assert len(data["benchmarks"][0]["stats"]["data"]) == 3  # one sample per batch
    table = load([target])
    assert len(table) == 2 and set(table["images"]) == {5}
    from harness.report.render import write_report

    html = re.sub(r"base64,[^']+", "", write_report(table, tmp_path / "report")["html"].read_text())
    assert "distributed_throughput" in html and not re.search(r"(?i)\bnan\b", html)
    assert "Lane timelines" in html  # its lanes drawn
    ran_on = re.search(r"<p class='env'>([^<]*)", html).group(1)
    assert "from the CPU, no GPU" in ran_on and not re.search("CUDA|driver|cuDNN|nvImageCodec|\\?", ran_on), ran_on


def test_an_unwritable_json_is_refused_before_the_model_is_loaded(tmp_path, sample_paths, capsys):
    target = tmp_path / "missing" / "run.json"
    result = in_process(capsys, "-i", str(sample_paths[0]), "-o", str(tmp_path / "out"), "--json", str(target),
                        *SMALL_MODEL)
    assert_one_line_error(result, f"--json {target} cannot be written", "a directory you can write to")
    assert not (tmp_path / "out").exists()
