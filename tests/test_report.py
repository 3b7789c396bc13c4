"""The report and the side-by-side comparison, from the H100 smoke run and a CPU run made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from harness.report.compare import side_by_side
from harness.report.load import load
from harness.report.tables import speedups

ROOT = Path(__file__).resolve().parent.parent
H100 = ROOT / "reports" / "h100-smoke-2026-11-23" / "bench.json"


def test_report_writes_markdown_html_and_plots(tmp_path, quick_run_path):
    result = subprocess.run([sys.executable, "-m", "harness.report", "report", str(H100), str(quick_run_path),
                             "-o", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    for name in ("throughput", "breakdown", "speedups"):
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG" and image.width > 300
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "NVIDIA H100 80GB HBM3" in html  # self-contained
    markdown = (out / "report.md").read_text()
    assert "## Per-stage cases" in markdown and "![breakdown](breakdown.png)" in markdown


def test_speedup_is_baseline_time_over_candidate_time():
    table = load([H100])
    gains = speedups(table)
    resize = gains[(gains["stage"] == "resize") & (gains["baseline"] == "torch@cuda")]["speedup"].item()
    rows = table[table["stage"] == "resize"].set_index("engine")["median"]
    assert resize == rows["torch"] / rows["cvcuda"] and resize > 1  # CV-CUDA's resize is the faster here


def test_side_by_side_pairs_only_matching_cases(quick_run_path):
    table, only_a, only_b = side_by_side(load([H100]), load([quick_run_path]))
    assert table.empty  # an H100 slice and a CPU run share no case
    assert only_a and only_b
    same, none_a, none_b = side_by_side(load([H100]), load([H100]))
    assert len(same) == len(load([H100])) and not none_a and not none_b
    assert (same["speedup_b_over_a"] == 1.0).all()


RECORDED = ROOT / "reports" / "h100-2026-11-24"


def test_fractions_of_the_bandwidth_floor_and_of_peak_from_the_recorded_run():
    """The recorded H100 run: copy bandwidth from its d2d_copy case, chains against their floors, inference
    against the H100's published peaks; each figure recomputed here from the raw fields."""
    from harness.report.tables import copy_bandwidth, floor_fractions, peak_fractions

    table = load([RECORDED / "stages.json", RECORDED / "inference.json"])
    bandwidth = copy_bandwidth(table)["NVIDIA H100 80GB HBM3"]
    assert 2.0e12 < bandwidth < 3.35e12  # below HBM3's 3.35 TB/s, as a copy must be
    floors = floor_fractions(table)
    assert set(floors["stage"]) == {"preprocess", "postprocess"} and (floors["fraction_of_floor"] > 0).all()
    row = floors[(floors["engine"] == "cvcuda") & (floors["variant"] == "fused") & (floors["batch_size"] == 32)
                 & (floors["model_height"] == 520) & (floors["source"] == "1920x1080")].iloc[0]
    floor_bytes = 32 * (1080 * 1920 * 3 + 3 * 520 * 520 * 4)
    assert abs(row["floor_ms"] - floor_bytes / bandwidth * 1e3) < 1e-9
    assert row["fraction_of_floor"] == row["floor_ms"] / row["gpu_ms"]
    peaks = peak_fractions(table)
    assert set(peaks["precision"]) == {"fp32", "fp16"}
    assert ((peaks["fraction_of_peak"] > 0) & (peaks["fraction_of_peak"] < 1)).all()
    assert (peaks.loc[peaks["precision"] == "fp16", "peak_tflops"] == 989.4).all()


def test_end_to_end_summary_and_sample_comparison_from_the_recorded_run():
    from harness.report.tables import end_to_end_summary, sample_comparison

    summary = end_to_end_summary(load([RECORDED / "e2e-fp16.json"]))
    assert len(summary) == 32 and summary["instrumentation_overhead"].notna().all()
    share = summary["non_inference_share"]
    assert ((share > 0) & (share < 1)).all()
    sample = sample_comparison(load([RECORDED / "sample.json"]))
    assert len(sample) == 15
    assert (sample["speedup_over_sample"] == sample["images_per_s"] / sample["sample_images_per_s"]).all()


def test_compare_writes_the_ratios_as_markdown_and_a_plot(tmp_path):
    """Two recorded H100 runs that share twelve end-to-end and throughput cases."""
    a, b = RECORDED / "e2e-fp16.json", RECORDED / "followup" / "e2e-cudnn-benchmark.json"
    result = subprocess.run([sys.executable, "-m", "harness.report", "compare", str(a), str(b), "-o", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    table, only_a, only_b = side_by_side(load([a]), load([b]))
    assert len(table) == 12 and not only_b and len(only_a) == 96 - 12
    markdown = (tmp_path / "compare.md").read_text()
    assert all(case in markdown for case in table["case"]) and f"only in {a}" in markdown
    with Image.open(tmp_path / "compare.png") as image:
        assert image.format == "PNG" and image.height > 300


def test_scaling_table_from_the_recorded_two_gpu_run():
    """The recorded run on two H200s: aggregate images/s over the slowest rank's wall time and the scaling
    efficiency against the one-process run, recomputed from the per-rank entries."""
    from harness.report.tables import scaling

    folder = ROOT / "reports" / "h200x2-2026-11-24" / "default"
    table = load(sorted(folder.glob("world*.json")))
    rows = scaling(table).set_index("file")
    assert len(rows) == 4 and (rows["hardware"] == "NVIDIA H200").all()
    assert (rows["images"] == 2048).all() and rows.loc[str(folder / "world2-2nodes.json"), "world_size"] == 2
    single = rows.loc[str(folder / "world1.json"), "images_per_s"]
    for name, gpus in [("world2.json", 2), ("world4-2pergpu.json", 2), ("world2-2nodes.json", 2)]:
        row = rows.loc[str(folder / name)]
        ranks = table[(table["file"] == str(folder / name)) & (table["rank"] != "all")]
        wall = (ranks["images"] / ranks["images_per_s"]).max()  # every rank starts at one barrier
        assert abs(row["images_per_s"] - 2048 / wall) < 1e-6 and ranks["images"].sum() == 2048
        assert abs(row["scaling_efficiency"] - row["images_per_s"] / (gpus * single)) < 1e-9
