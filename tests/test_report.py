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
