"""Two GPUs compared: cases paired across models, grouped by what bounds them and checked against the data
sheets, the end-to-end difference split by stage, and the first screen that answers, in a real browser.

The second GPU's files are the recorded H100 run's, named NVIDIA H200 with each case's raw samples scaled by a
known factor: the comparison must find exactly the factors put in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.report.gpus import comparisons, resource_of
from harness.report.load import load

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "reports" / "h100-2026-11-24"
FILES = ("stages.json", "inference.json", "e2e-fp16.json")
H200_BANDWIDTH = 3.35 / 4.8  # the time ratio the data sheets predict for bandwidth-bound work


def as_other_gpu(folder: Path, factor) -> list[Path]:
    """The recorded files as if run on an H200: `factor(bench)` scales each case's samples, statistics and
    whole-pipeline stage times."""
    from pytest_benchmark.stats import Stats

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        data = json.loads((RECORDED / name).read_text())
        data["machine_info"]["harness"].update(gpu_name="NVIDIA H200", gpu_uuid="GPU-h200")
        for bench in data["benchmarks"]:
            scale = factor(bench)
            stats = Stats()
            for value in bench["stats"]["data"]:
                stats.update(value * scale)
            bench["stats"].update({k: getattr(stats, k) for k in ("min", "max", "mean", "stddev", "median", "iqr",
                                                                   "q1", "q3")}, data=list(stats.data))
            info = bench["extra_info"]
            for key in ("end_to_end_ms", "stage_sum_ms", "cuda_event_median_ms"):
                if info.get(key) is not None:
                    info[key] *= scale
            if info.get("images_per_s"):
                info["images_per_s"] /= scale
            if info.get("stage_ms"):
                info["stage_ms"] = {stage: ms * scale for stage, ms in info["stage_ms"].items()}
        (folder / name).write_text(json.dumps(data))
        written.append(folder / name)
    return written


def by_resource(bench, bandwidth: float = H200_BANDWIDTH, tensor: float = 1.0) -> float:
    """Bandwidth-bound cases faster by `bandwidth`, tensor-core inference by `tensor`, the rest unchanged."""
    info = bench["extra_info"]
    row = {"stage": info["stage"], "device": info["device"], "precision": info["precision"]}
    resource = resource_of(row)
    return {"memory bandwidth": bandwidth, "tensor cores (fp16)": tensor}.get(resource, 1.0)


def h100_files() -> list[Path]:
    return [RECORDED / name for name in FILES]


def test_each_resource_is_checked_against_the_data_sheets(tmp_path):
    """The bandwidth-bound cases 0.698x and the rest unchanged agree with the data sheets (HBM3e 4.8 TB/s
    against 3.35, the same tensor cores and JPEG decoders); tensor-core inference at 0.5x disagrees."""
    table = load(h100_files() + as_other_gpu(tmp_path / "agree", by_resource))
    (compared,) = comparisons(table)
    assert (compared["a"], compared["b"]) == ("NVIDIA H100 80GB HBM3", "NVIDIA H200") and not compared["warnings"]
    sheets = dict(compared["topics"])["Against the data sheets"]
    bandwidth = next(s for s in sheets if s.startswith("memory bandwidth"))
    assert f"median **{H200_BANDWIDTH:.3f}x**" in bandwidth and "predict 0.698x: agrees" in bandwidth
    assert any(s.startswith("tensor cores (fp16): median **1.000x**") and "agrees" in s for s in sheets)
    assert any(s.startswith("JPEG decoders") and "predict 1.000x: agrees" in s for s in sheets)
    assert any(s.startswith("host") and "no data-sheet prediction" in s for s in sheets)
    paired = compared["table"]
    assert len(paired) > 300 and np.allclose(paired.loc[paired["resource"] == "memory bandwidth", "ratio_b_over_a"],
                                             H200_BANDWIDTH)

    table = load(h100_files() + as_other_gpu(tmp_path / "disagree", lambda b: by_resource(b, tensor=0.5)))
    sheets = dict(comparisons(table)[0]["topics"])["Against the data sheets"]
    tensor = next(s for s in sheets if s.startswith("tensor cores (fp16)"))
    assert "median **0.500x**" in tensor and "predict 1.000x: **disagrees**" in tensor
    assert tensor.endswith("; 0 of 16 case(s) scale as predicted.")

    # only the copy scales with the bandwidth: the group disagrees and says which case does scale
    copy_only = as_other_gpu(tmp_path / "copy", lambda b: H200_BANDWIDTH if b["extra_info"]["stage"] == "d2d_copy"
                             else 1.0)
    sheets = dict(comparisons(load(h100_files() + copy_only))[0]["topics"])["Against the data sheets"]
    bandwidth = next(s for s in sheets if s.startswith("memory bandwidth"))
    assert "**disagrees**" in bandwidth and bandwidth.endswith("case(s) scale as predicted: d2d_copy.")


def test_the_recorded_h100_h200_pair_is_explained():
    """The real pair (reports/gpus-2026-12-07-h100-h200): the H200 5-8% faster end to end, only the copy
    scaling with its bandwidth, the decoders alike, and encode and inference as the stages that moved."""
    pair = [ROOT / "reports" / "h100-2026-12-07-compare" / "h100.json",
            ROOT / "reports" / "gpus-2026-12-07-h100-h200" / "h200.json"]
    (compared,) = comparisons(load(pair))
    assert (compared["a"], compared["b"]) == ("NVIDIA H100 80GB HBM3", "NVIDIA H200") and not compared["warnings"]
    topics = dict(compared["topics"])
    assert len(topics["Headline differences (b time / a time, 95% interval)"]) == 3
    assert all(0.9 < float(re.search(r"\*\*([\d.]+)x\*\*", line)[1]) < 0.97
               for line in topics["Headline differences (b time / a time, 95% interval)"])
    sheets = topics["Against the data sheets"]
    assert any(s.startswith("memory bandwidth") and s.endswith("1 of 21 case(s) scale as predicted: d2d_copy.")
               for s in sheets)
    assert any(s.startswith("JPEG decoders") and "agrees" in s for s in sheets)
    (split,) = topics["Where the end-to-end difference comes from"]
    assert "inference -9.04 ms" in split and "encode +3.58 ms" in split
    assert topics["Copy bandwidth"][-1] == "NVIDIA H200 over NVIDIA H100 80GB HBM3: 1.417x the bandwidth."


def test_the_recorded_inference_pair_splits_cuda_cores_from_tensor_cores():
    """The real inference pair: IEEE fp32 on the identical CUDA cores agrees with the data sheets; tf32 and
    fp16 gain 13-15% on identical tensor cores, so they disagree (part of their time is bandwidth bound)."""
    folder = ROOT / "reports" / "gpus-2026-12-07-h100-h200"
    (compared,) = comparisons(load([folder / "h100-inference.json", folder / "h200-inference.json"]))
    assert (compared["a"], compared["b"]) == ("NVIDIA H100 80GB HBM3", "NVIDIA H200") and not compared["warnings"]
    sheets = dict(compared["topics"])["Against the data sheets"]
    verdicts = {s.split(":")[0]: ("**disagrees**" in s, float(re.search(r"\*\*([\d.]+)x\*\*", s)[1]))
                for s in sheets}
    assert verdicts["CUDA cores (fp32)"][0] is False and 0.95 < verdicts["CUDA cores (fp32)"][1] < 0.98
    for precision in ("fp16", "tf32"):
        disagrees, ratio = verdicts[f"tensor cores ({precision})"]
        assert disagrees and 0.84 < ratio < 0.88


def test_the_end_to_end_difference_is_split_by_stage(tmp_path):
    """Only the end-to-end cases' inference made 20% faster: the split gives inference the whole difference."""
    files = as_other_gpu(tmp_path / "h200", lambda bench: 1.0)
    data = json.loads(files[2].read_text())
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if info["stage"] == "end_to_end" and info.get("stage_ms"):
            saved = info["stage_ms"]["inference"] * 0.2
            info["stage_ms"]["inference"] -= saved
            info["end_to_end_ms"] -= saved
    files[2].write_text(json.dumps(data))
    (compared,) = comparisons(load(h100_files() + files))
    split = dict(compared["topics"])["Where the end-to-end difference comes from"]
    assert split and all(": inference -" in s and "(100%)" in s.split(": inference")[1][:25] for s in split), split
    assert split[0].split(",")[2].strip() == "batch 32"  # the batch the findings read first


def test_headline_differences_give_both_figures_and_the_interval(tmp_path):
    table = load(h100_files() + as_other_gpu(tmp_path / "h200", lambda b: 0.8))
    (compared,) = comparisons(table)
    headlines = dict(compared["topics"])["Headline differences (b time / a time, 95% interval)"]
    assert [s.split(":")[0] for s in headlines][:2] == ["One batch in memory, JPEG bytes to JPEG bytes",
                                                        "In-memory throughput, batch after batch"]
    for sentence in headlines:  # the gate's bootstrap: each side resampled on its own
        low, high = map(float, re.search(r"\*\*0\.800x\*\* \((\d\.\d+)x-(\d\.\d+)x\)", sentence).groups())
        assert low < 0.8 < high and "images/s on NVIDIA H200 against" in sentence
    copies = dict(compared["topics"])["Copy bandwidth"]
    assert copies[0].startswith("NVIDIA H100 80GB HBM3: 2,940 GB/s") and copies[2] == \
        "NVIDIA H200 over NVIDIA H100 80GB HBM3: 1.250x the bandwidth."


def test_two_cards_of_one_model_are_two_runs_with_a_warning(tmp_path):
    """The same model on another card: compared as two runs, with no data-sheet prediction and a warning."""
    other = []
    for name in FILES:
        data = json.loads((RECORDED / name).read_text())
        data["machine_info"]["harness"]["gpu_uuid"] = "GPU-another-card"
        (tmp_path / name).write_text(json.dumps(data))
        other.append(tmp_path / name)
    (compared,) = comparisons(load(h100_files() + other))  # two folders of one model: two runs
    assert (compared["a"], compared["b"]) == ("h100-2026-11-24", tmp_path.name)
    assert compared["warnings"][0].startswith("a and b ran on two GPUs of one model")
    topics = dict(compared["topics"])
    assert "Against the data sheets" not in topics and topics["By what bounds each case"][0].startswith(
        "memory bandwidth: median **1.000x**")
    assert comparisons(load(h100_files())) == []  # one run's files, each with its own suites: nothing to compare


def test_the_first_screen_answers_for_two_gpus(tmp_path, browser_page):
    """At 1440x900 the page opens with the GPUs' headline differences and the check against the data sheets,
    each H100 figure beside its H200 figure; every table fits the window."""
    from conftest import TABLE_WIDTHS

    from harness.report.render import write_report

    page, errors = browser_page
    written = write_report(load(h100_files() + as_other_gpu(tmp_path / "h200", by_resource)), tmp_path / "report")
    page.goto(written["html"].as_uri())
    assert page.locator("h3").first.inner_text() == "b: NVIDIA H200 against a: NVIDIA H100 80GB HBM3"
    for topic in ("Headline differences", "Against the data sheets"):
        box = page.locator("h4", has_text=topic).first.bounding_box()
        assert box is not None and box["y"] < 900, topic
    first = page.locator("ul.findings li").first.inner_text()
    assert "images/s on NVIDIA H200 against" in first and re.search(r": \d\.\d{3}x \(\d\.\d{3}x-\d\.\d{3}x\)", first)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    widths = page.evaluate(TABLE_WIDTHS)
    assert all(inner <= box for _, inner, box in widths), widths
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440 and not errors, errors
    assert "Per case 1: b NVIDIA H200 against a NVIDIA H100 80GB HBM3 (b time / a time, 95% interval)" in \
        page.locator("h2").all_inner_texts()
    assert (tmp_path / "report" / "tables" / "per-case-1.csv").exists()


def test_a_cpu_run_shows_no_gpu_fields_and_its_headline_in_a_table(tmp_path, quick_run_path, browser_page):
    """A run made here without a GPU: no driver, CUDA or cuDNN anywhere on the page; each first-screen figure
    is a row of the whole-pipelines table."""
    from conftest import TABLE_WIDTHS

    from harness.report.render import write_report

    page, errors = browser_page
    written = write_report(load([quick_run_path]), tmp_path)
    page.goto(written["html"].as_uri())
    text = page.inner_text("body")
    assert "from the CPU, no GPU" in page.locator("p.env").inner_text()
    for gpu_field in ("driver", "CUDA", "cuDNN", "nvImageCodec", "GPU UUID"):
        assert gpu_field not in text, gpu_field
    whole = page.locator("table", has_text="One batch in memory").first.inner_text()
    fast = page.locator("h4", has_text="How fast").locator("xpath=following-sibling::ul[1]/li").all_inner_texts()
    figures = [re.search(r": ([\d,.]+) images/s", sentence).group(1) for sentence in fast]
    assert figures and all(figure in whole for figure in figures), (figures, whole)
    widths = page.evaluate(TABLE_WIDTHS)
    assert all(inner <= box for _, inner, box in widths), widths
    assert not errors, errors


@pytest.mark.parametrize("files", [["e2e-fp16.json"], ["stages.json", "inference.json"]])
def test_compare_on_the_command_line_explains_two_gpus(tmp_path, files):
    import subprocess
    import sys

    other = {path.name: path for path in as_other_gpu(tmp_path / "h200", by_resource)}
    a, b = RECORDED / files[0], other[files[0]]
    result = subprocess.run([sys.executable, "-m", "harness.report", "compare", str(a), str(b), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert ("**Against the data sheets**" in result.stdout) == (files[0] == "stages.json")
    assert "| case" in result.stdout and (tmp_path / "out" / "compare.md").read_text().count("**") > 4
