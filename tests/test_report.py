"""The report and the side-by-side comparison, from the H100 smoke run and a CPU run made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
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
    lanes = sorted(p.name for p in out.glob("lanes-*.png"))
    assert lanes == ["lanes-1.png", "lanes-2.png"]  # the files-overlapped and files-sequential runs
    assert html.count("data:image/png;base64,") == 3 + len(lanes) and "NVIDIA H100 80GB HBM3" in html
    markdown = (out / "report.md").read_text()
    assert "## Per-stage cases" in markdown and "![breakdown](breakdown.png)" in markdown


def test_speedup_is_baseline_time_over_candidate_time():
    table = load([H100])
    gains = speedups(table)
    resize = gains[(gains["stage"] == "resize") & (gains["baseline"] == "torch@cuda")]["speedup"].item()
    rows = table[table["stage"] == "resize"].set_index("engine")["median"]
    assert resize == rows["torch"] / rows["cvcuda"] and resize > 1  # CV-CUDA's resize is the faster here


def test_side_by_side_pairs_only_matching_cases(quick_run_path):
    table, only_a, only_b, _ = side_by_side(load([H100]), load([quick_run_path]))
    assert table.empty  # an H100 slice and a CPU run share no case
    assert only_a and only_b
    same, none_a, none_b, left_out = side_by_side(load([H100]), load([H100]))
    assert len(same) == len(load([H100])) and not none_a and not none_b and not left_out
    assert (same["ratio_b_over_a"] == 1.0).all()


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
    table, only_a, only_b, _ = side_by_side(load([a]), load([b]))
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
    rows = scaling(table).set_index("label")
    assert len(rows) == 4 and (rows["hardware"] == "NVIDIA H200").all()
    assert (rows["images"] == 2048).all() and rows.loc["default/world2-2nodes.json", "world_size"] == 2
    single = rows.loc["default/world1.json", "images_per_s"]
    for name, gpus in [("world2.json", 2), ("world4-2pergpu.json", 2), ("world2-2nodes.json", 2)]:
        row = rows.loc[f"default/{name}"]
        ranks = table[(table["file"] == str(folder / name)) & (table["rank"] != "all")]
        wall = (ranks["images"] / ranks["images_per_s"]).max()  # every rank starts at one barrier
        assert abs(row["images_per_s"] - 2048 / wall) < 1e-6 and ranks["images"].sum() == 2048
        assert abs(row["scaling_efficiency"] - row["images_per_s"] / (gpus * single)) < 1e-9


# The report a person reads (issue 16) ------------------------------------------------------------------

RECORDED_FILES = sorted(RECORDED.glob("*.json")) + sorted((RECORDED / "followup").glob("*.json"))
ARTEFACTS = ROOT / "test-artifacts"  # screenshots of the browser test, kept for a person to look at (CI uploads)


def test_findings_are_computed_from_the_files():
    """Every number of a finding is recomputed here from the table: the best throughput per model and
    precision, and a throttle warning appears only for the file flagged throttled."""
    from harness.report.findings import findings
    from harness.report.present import number

    table = load(RECORDED_FILES)
    (gpu, topics), = findings(table)
    assert gpu == "NVIDIA H100 80GB HBM3" and [t for t, _ in topics][:4] == [
        "How fast: the best throughput of each kind", "Where the time goes",
        "What bounds it: against the GPU's limits", "Warnings"]  # noisy cases: the recorded run has them
    sentences = [s for _, group in topics for s in group]
    fast = dict(topics)["How fast: the best throughput of each kind"]
    files = table["variant"].fillna("").str.startswith("files-")
    for label, rows in (("One batch in memory", table["stage"] == "end_to_end"),
                        ("In-memory throughput", (table["stage"] == "throughput") & ~files),
                        ("The sample's workload", table["stage"] == "sample_workload")):
        best = table[rows].loc[table[rows]["images_per_s"].idxmax()]
        mine = [s for s in fast if s.startswith(label)]  # one figure per kind, never ranked with another kind
        assert len(mine) == 1 and f"**{number(best['images_per_s'])} images/s**" in mine[0], (label, fast)
        assert f"{best['precision']} (" in mine[0] and f"from {best['source']}" in mine[0]
    assert len(fast) == len({s.split(":")[0] for s in fast})
    assert not any("Throttled" in s for s in sentences)
    throttled = table.copy()
    throttled.loc[throttled["label"] == "h100-2026-11-24/sample.json", "throttled"] = True
    (_, topics), = findings(throttled)
    warned = dict(topics)["Warnings"]
    assert warned[0].startswith("**Throttled**") and "h100-2026-11-24/sample.json" in warned[0]


def test_the_lane_finding_says_how_much_of_one_core_the_lanes_threads_used():
    """Files that record the lanes' CPU time get its share of the run; older files get the sentence as before."""
    from harness.report.findings import time_shares

    peer = ROOT / "reports" / "h100-2026-12-07-decode" / "callC" / "peer"
    table = load([peer / "harness_fastest-fused_b32_s224.json"])
    (before,) = {s for s in time_shares(table) if s.startswith("Overlapped")}
    assert before.endswith("set by the decode lane).") and "core" not in before
    cpu = {"read": 0.01, "decode": 0.1, "compute": 0.06, "encode": 0.12, "write": 0.04}  # 0.33 s of 0.367831 s
    table["lane_cpu_seconds"] = [cpu] * len(table)
    (after,) = {s for s in time_shares(table) if s.startswith("Overlapped")}
    assert after == before[:-2] + "); the lanes' threads used 89.7% of one core."


def test_numbers_are_shown_to_their_precision_with_units_and_never_as_nan():
    from harness.report.present import number, readable
    from harness.report.render import sections

    assert number(49970.0) == "49,970" and number(4.997e4 + 0.4) == "49,970"
    assert number(0.0512, "non_inference_share") == "5.1%" and number(1.5, "ratio_b_over_a") == "1.5x"
    assert number(float("nan")) == number(None) == "–" and number(12.3456) == "12.35"
    for title, frame in sections(load(RECORDED_FILES)):
        shown = readable(frame)
        text = shown.to_csv()
        assert "nan" not in text.lower() and "None" not in text and "e+" not in text, title
    table = readable(load([RECORDED / "inference.json"])[["median", "images_per_s"]].assign(median_ms=1.0))
    assert list(table.columns) == ["median", "images/s", "median (ms)"]


def test_the_environment_of_each_file_is_on_the_page(tmp_path):
    from harness.report.load import environment

    env = environment([RECORDED / "e2e-fp16.json", H100]).set_index("file")
    row = env.loc["h100-2026-11-24/e2e-fp16.json"]
    assert row["driver"] == "580.159.04" and row["cuDNN"] == "9.19.0" and row["CV-CUDA"] == "0.19.0"
    assert row["commit"] == "6384dfcd2b (dirty)" and row["throttled"] == "no" and row["L2"] == "hot"
    assert row["GPU after"].startswith("SM 1980/1980 MHz")
    assert row["CPU"].endswith("model 207), 2.1000 GHz, 16 cores"), row["CPU"]  # the file says only x86_64


def test_the_cpu_is_named_so_that_two_hosts_differ():
    """A virtual machine names every host CPU "Intel(R) Xeon(R) Processor": the model number tells them apart."""
    from harness.env import cpu_name
    from harness.report.load import cpu_text

    xeon = {"brand_raw": "Intel(R) Xeon(R) Processor", "family": 6, "hz_advertised_friendly": "2.1000 GHz"}
    assert cpu_text({"cpu": "x86_64", "cpu_count": 16}, {"cpu": {**xeon, "model": 207}}) == \
        "Intel(R) Xeon(R) Processor (family 6 model 207), 2.1000 GHz, 16 cores"
    older = cpu_text({"cpu": "x86_64"}, {"cpu": {**xeon, "model": 143}})
    assert older == "Intel(R) Xeon(R) Processor (family 6 model 143), 2.1000 GHz"
    epyc = "AMD EPYC (family 25 model 1)"
    assert cpu_text({"cpu": epyc, "cpu_count": 2}, {}) == f"{epyc}, 2 cores"
    assert cpu_text({}, {}) is None
    assert "model" in cpu_name()  # this Linux machine's /proc/cpuinfo


def test_every_table_is_written_as_csv_with_every_field(tmp_path):
    import pandas as pd

    from harness.report.render import write_report

    table = load([RECORDED / "e2e-fp16.json"])
    written = write_report(table, tmp_path)
    cases = pd.read_csv(written["cases"])
    assert len(cases) == 96 and {"label", "stage_ms", "noise_rel_iqr", "env_driver", "lane_seconds"} <= set(cases)
    assert (tmp_path / "tables" / "end-to-end-breakdown.csv").exists()


def test_the_report_reads_well_in_a_real_browser(tmp_path, browser_page):
    """Headless Chromium opens the page: the findings come first, every plot decodes, nothing is wider than the
    window (no table either: its key columns are first and the rest fits), no NaN or None is shown, the long
    tables are folded (the page stays short) and open on a click."""
    from conftest import TABLE_WIDTHS

    from harness.report.render import write_report

    page, errors = browser_page
    written = write_report(load(RECORDED_FILES), tmp_path)
    page.goto(written["html"].as_uri())
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "report-first-screen.png"))
    headings = page.locator("h2").all_inner_texts()
    assert headings[:3] == ["Findings", "Environment", "Plots"]
    first_screen = page.locator("ul.findings li").first.bounding_box()
    assert first_screen is not None and first_screen["y"] < 900  # readable without scrolling
    assert page.locator("ul.findings li").count() >= 10  # the findings are not empty
    for topic in ("How fast", "Where the time goes", "What bounds it"):  # answered in the first screen
        box = page.locator("h4", has_text=topic).first.bounding_box()
        assert box is not None and box["y"] < 900, topic
    assert "driver 580.159.04" in page.locator("p.env").inner_text()
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) == 3 and all(done and width > 500 for done, width in images)
    width, height = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert width <= 1440 and height < 12000, (width, height)
    text = page.inner_text("body")
    assert "NaN" not in text and "None" not in text and "580.159.04" in text
    page.screenshot(path=str(ARTEFACTS / "report-full-page.png"), full_page=True)
    assert not errors, errors
    folded = page.locator("details").first
    assert folded.evaluate("d => !d.open")
    folded.locator("summary").click()
    assert folded.evaluate("d => d.open") and page.evaluate("document.documentElement.scrollHeight") > height
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    widths = page.evaluate(TABLE_WIDTHS)
    assert len(widths) >= 9 and all(inner <= box for _, inner, box in widths), widths
    stages = page.locator("table", has_text="noise (IQR/median)").locator("th").all_inner_texts()
    assert stages[:3] == ["stage", "engine", "variant"] and stages[-1] == "file"  # key columns first


def _history_runs(folder, slowed_from: int, case: str, factor: float, runs: int = 6, excursion: int | None = None):
    """Runs of one commit each, made from the recorded run's real raw samples (each run a bootstrap resample of
    each case's samples, its statistics recomputed by pytest-benchmark); one case slowed from a commit on, and
    optionally 1.6x slower in one run (an excursion)."""
    import copy
    import json

    import numpy as np
    from pytest_benchmark.stats import Stats

    source = json.loads((RECORDED / "e2e-fp16.json").read_text())
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(runs):
        data = copy.deepcopy(source)
        data["machine_info"]["harness"]["git_commit"] = f"{index:02d}" + "c0ffee" * 6
        data["datetime"] = f"2026-11-{10 + index:02d}T10:00:00+00:00"
        for bench in data["benchmarks"]:
            samples = list(rng.choice(bench["stats"]["data"], size=len(bench["stats"]["data"])))
            if index >= slowed_from and bench["name"] == case:
                samples = [s * factor for s in samples]
            if index == excursion and bench["name"] == case:
                samples = [s * 1.6 for s in samples]
            stats = Stats()
            for value in samples:
                stats.update(value)
            bench["stats"].update({k: getattr(stats, k) for k in ("min", "max", "mean", "stddev", "median", "iqr",
                                                                   "q1", "q3")}, data=samples)
        (folder / f"run{index}.json").write_text(json.dumps(data))
    (folder / "notes.json").write_text("{}")  # not a benchmark file: listed and left out


def test_history_finds_the_commit_that_made_a_case_slower(tmp_path):
    import pandas as pd

    case = "test_end_to_end[b32-m520-1920x1080-cvcuda-deeplabv3_resnet101-fp16]"
    _history_runs(tmp_path / "runs", slowed_from=3, case=case, factor=1.2)
    result = subprocess.run([sys.executable, "-m", "harness.report", "history", str(tmp_path / "runs"), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    steps = pd.read_csv(tmp_path / "out" / "steps.csv")
    assert len(steps) == 1, steps  # the slowed case, and no step from the noise of the 95 others
    step = steps.iloc[0]
    assert step["verdict"] == "slower" and step["commit"] == "03c0ffeec0" and step["after_commit"] == "02c0ffeec0"
    assert (1.1 < step["ratio"] < 1.3
            and "cvcuda+nvimgcodec+pytorch:deeplabv3_resnet101/cuda/fp16/32/520" in step["case"])
    history = pd.read_csv(tmp_path / "out" / "history.csv")
    assert len(history) == 6 * 96 and history["commit"].nunique() == 6
    markdown = (tmp_path / "out" / "history.md").read_text()
    assert "notes.json: not a benchmark file" in markdown and "## Where cases got slower" in markdown
    with Image.open(tmp_path / "out" / "history.png") as image:
        assert image.format == "PNG"


def test_a_run_off_its_neighbours_does_not_hide_the_step_after_it(tmp_path):
    """Runs 0-3 at one level, run 4 1.6x slower (an excursion), runs 5-9 1.2x slower: one step, placed at
    the first run after the earlier plateau (4), comparing the two plateaus, not the excursion."""
    from harness.report.history import all_steps, benchmark_files, history_table

    case = "test_end_to_end[b32-m520-1920x1080-cvcuda-deeplabv3_resnet101-fp16]"
    _history_runs(tmp_path / "runs", slowed_from=5, case=case, factor=1.2, runs=10, excursion=4)
    files, _ = benchmark_files([tmp_path / "runs"])
    steps = all_steps(history_table(files), 0.05)
    assert len(steps) == 1, steps
    step = steps.iloc[0]
    assert step["commit"] == "04c0ffeec0" and step["verdict"] == "slower" and 1.1 < step["ratio"] < 1.3
    assert step["runs_before"] == 4 and step["runs_after"] == 5


def test_history_of_the_same_commit_finds_no_step(tmp_path):
    from harness.report.history import all_steps, benchmark_files, history_table

    _history_runs(tmp_path / "runs", slowed_from=99, case="", factor=1.0, runs=5)
    files, left_out = benchmark_files([tmp_path / "runs"])
    assert len(files) == 5 and len(left_out) == 1
    assert all_steps(history_table(files), 0.05).empty


def test_history_needs_one_gpu(tmp_path):
    (tmp_path / "runs").mkdir()
    for name in ("a.json", "b.json"):
        (tmp_path / "runs" / name).write_bytes(H100.read_bytes() if name == "a.json" else
                                               (ROOT / "reports" / "h200x2-2026-11-24" / "default"
                                                / "world1.json").read_bytes())
    result = subprocess.run([sys.executable, "-m", "harness.report", "history", str(tmp_path / "runs"), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "name one with --gpu" in result.stderr and "Traceback" not in result.stderr
    chosen = subprocess.run([sys.executable, "-m", "harness.report", "history", str(tmp_path / "runs"), "--gpu",
                             "NVIDIA H200", "-o", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert chosen.returncode == 0, chosen.stderr


def test_compare_and_gate_read_the_ratio_the_same_way(tmp_path):
    """b slower than a: compare's ratio and the gate's are both above 1."""
    import json

    a = json.loads((RECORDED / "e2e-fp16.json").read_text())
    for bench in a["benchmarks"]:
        bench["stats"]["data"] = [v * 2 for v in bench["stats"]["data"]]
        for key in ("min", "max", "mean", "median", "q1", "q3"):
            bench["stats"][key] *= 2
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(a))
    table, _, _, _ = side_by_side(load([RECORDED / "e2e-fp16.json"]), load([slow]))
    assert (table["ratio_b_over_a"] > 1.9).all()
    gate = subprocess.run([sys.executable, "-m", "harness.report", "gate", str(RECORDED / "e2e-fp16.json"), str(slow),
                           "--markdown", str(tmp_path / "gate.md")], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert gate.returncode == 1 and "slower" in (tmp_path / "gate.md").read_text()


def _edit_runs(folder, first: int, edit):
    """Apply `edit(data)` to the runs `first` on of _history_runs' folder."""
    import json

    for path in sorted(folder.glob("run*.json")):
        if int(path.stem[3:]) >= first:
            data = json.loads(path.read_text())
            edit(data)
            path.write_text(json.dumps(data))


def _card(data):
    data["machine_info"]["harness"]["gpu_uuid"] = "GPU-0badcafe-0000-0000-0000-000000000000"


def _clock(data):
    for bench in data["benchmarks"]:
        bench["extra_info"]["timer"] = "CUDA events on the current stream around each round"


def _unit(data):
    for bench in data["benchmarks"]:
        bench["extra_info"]["sample_unit"] = "batch"


@pytest.mark.parametrize("change", [_card, _clock, _unit], ids=["gpu-card", "clock", "sample-unit"])
def test_history_never_draws_a_change_of_method_or_card_as_a_step(tmp_path, change):
    """A case 0.6x as long from run 3 on, where run 3 on also changed card, clock or sample unit: two series of
    three runs each, no step (the same runs with one method found the 1.2x step: the first history test)."""
    from harness.report.history import all_steps, benchmark_files, history_table

    case = "test_end_to_end[b32-m520-1920x1080-cvcuda-deeplabv3_resnet101-fp16]"
    _history_runs(tmp_path / "runs", slowed_from=3, case=case, factor=0.6)
    _edit_runs(tmp_path / "runs", 3, change)
    history = history_table(benchmark_files([tmp_path / "runs"])[0])
    name = "end_to_end/cvcuda+nvimgcodec+pytorch:deeplabv3_resnet101/cuda/fp16/32/520/520/1920x1080"
    series = history[history["case"] == name].groupby("series")
    assert sorted(series.size()) == [3, 3], series.size()
    assert (series[["clock", "sample_unit", "gpu_uuid"]].nunique(dropna=False) == 1).all().all()
    assert all_steps(history, 0.05).empty


def test_history_labels_each_series_with_its_method():
    """The recorded sample workload at b32/520 fp16: three host-clock runs of 3 run totals on three H100s, the
    steady-batch run of 14533ec (its file says sample_unit "batch"; 21 samples from 3 rounds), and two
    CUDA-event runs of whole runs on two more H100s: six series, none joining two of them."""
    from harness.report.history import benchmark_files, history_table

    paths = [RECORDED / "sample.json", RECORDED / "followup" / "sample-cudnn-benchmark.json",
             RECORDED / "channels-last" / "sample.json", ROOT / "reports" / "h100-2026-11-25-gate" /
             "bench-host-clock-14533ec.json", ROOT / "reports" / "baselines" / "NVIDIA H100 80GB HBM3.json",
             ROOT / "reports" / "h100-2026-11-25-gate" / "bench-2-79f51be.json"]
    history = history_table(benchmark_files(paths)[0])
    rows = history[history["case"] == "sample_workload/cvcuda+nvimgcodec+pytorch:fcn_resnet101/fp16/cuda/fp16/32/520/"
                                      "520/1920x1080"].set_index("file")
    assert len(rows) == 6 and rows["series"].nunique() == 6
    batches = rows.loc["h100-2026-11-25-gate/bench-host-clock-14533ec.json"]
    assert batches["series"].endswith("[host clock, batches, GPU-cde6185f]") and batches["sample_unit"] == "batch"
    assert rows.loc["h100-2026-11-24/sample.json", "series"].endswith("[host clock, rounds, GPU-75b02db7]")
    assert rows.loc["baselines/NVIDIA H100 80GB HBM3.json", "series"].endswith("[CUDA events, runs, GPU-622dd461]")
    assert rows.loc["h100-2026-11-25-gate/bench-2-79f51be.json", "series"].endswith("[CUDA events, runs, GPU-7150ad6d]")


def test_history_counts_a_copied_run_once(tmp_path):
    """A byte-identical copy of a run, and pytest-benchmark's saved copy of it (same datetime, commit and
    machine, no raw samples): left out with the reason, the run counted once, still one step."""
    import json

    from harness.report.history import benchmark_files, write_history

    case = "test_end_to_end[b32-m520-1920x1080-cvcuda-deeplabv3_resnet101-fp16]"
    runs = tmp_path / "runs"
    _history_runs(runs, slowed_from=3, case=case, factor=1.2)
    (runs / "run5_copy.json").write_bytes((runs / "run5.json").read_bytes())
    saved = json.loads((runs / "run4.json").read_text())
    for bench in saved["benchmarks"]:
        del bench["stats"]["data"]
    (runs / "saved").mkdir()
    (runs / "saved" / "0004_run4.json").write_text(json.dumps(saved))
    files, left_out = benchmark_files([runs])
    assert sorted(path.name for path, _ in files) == [f"run{i}.json" for i in range(6)]
    assert f"{runs / 'run5_copy.json'}: the same run as {runs / 'run5.json'}" in "\n".join(left_out)
    assert f"{runs / 'saved' / '0004_run4.json'}: the same run as {runs / 'run4.json'}" in "\n".join(left_out)
    write_history([runs], tmp_path / "out")
    markdown = (tmp_path / "out" / "history.md").read_text()
    assert " over 6 runs " in markdown and "1 slower, 0 faster" in markdown


def test_compare_warns_of_two_cards_and_leaves_out_cases_timed_two_ways(tmp_path):
    """The gate's baseline (CUDA events, whole runs as samples) against the host-clock run of 14533ec (steady
    batches) on another H100: a warning for the cards and one for the cases timed two ways, which get no
    ratio; the CPU decode case, host-clock rounds on both, keeps its ratio."""
    import pandas as pd

    a = ROOT / "reports" / "baselines" / "NVIDIA H100 80GB HBM3.json"
    b = ROOT / "reports" / "h100-2026-11-25-gate" / "bench-host-clock-14533ec.json"
    result = subprocess.run([sys.executable, "-m", "harness.report", "compare", str(a), str(b), "-o", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("**Warning:** a and b ran on two GPUs of one model") and "622dd461" in first
    markdown = (tmp_path / "compare.md").read_text().splitlines()
    assert markdown[2] == first and markdown[3].startswith("**Warning:** 59 cases were timed two ways")
    table = pd.read_csv(tmp_path / "compare.csv")
    assert list(table.columns) == ["case", "resource", "a_ms", "b_ms", "ratio_b_over_a", "low", "high"]
    assert list(table["case"]) == ["decode/cpu/cpu/fp32/32/224/224/1920x1080"]
    sample = "sample_workload/cvcuda+nvimgcodec+pytorch:fcn_resnet101/fp16/cuda/fp16/32/520/520/1920x1080"
    assert f"- {sample}: a: CUDA events, run samples; b: host clock, batch samples" in result.stdout


def test_compare_gives_the_gates_interval_with_the_processes(tmp_path):
    """One card, one method: no warning; each ratio's interval is the gate's bootstrap at alpha 0.025 (95%),
    over the samples where the files do not say which process took each, over processes where they do."""
    import json

    import numpy as np

    from harness.report.compare import ALPHA, cautions
    from harness.report.gate import ratio_interval

    def written(name: str, factor: float, pooled: bool):
        data = json.loads((RECORDED / "e2e-fp16.json").read_text())
        for bench in data["benchmarks"]:
            bench["stats"]["data"] = [v * factor for v in bench["stats"]["data"]]
            bench["stats"]["median"] *= factor
            if pooled:
                bench["extra_info"]["sample_process"] = [i % 4 for i in range(len(bench["stats"]["data"]))]
        (tmp_path / name).write_text(json.dumps(data))
        return load([tmp_path / name])

    name = "end_to_end/cvcuda+nvimgcodec+pytorch:deeplabv3_resnet101/cuda/fp16/32/520/520/1920x1080"
    base = load([RECORDED / "e2e-fp16.json"])
    samples = base[base["name"] == "test_end_to_end[b32-m520-1920x1080-cvcuda-deeplabv3_resnet101-fp16]"].iloc[0][
        "samples"]
    slowed, process = [v * 1.1 for v in samples], [i % 4 for i in range(len(samples))]
    plain = ratio_interval(samples, slowed, ALPHA)
    nested = ratio_interval(samples, slowed, ALPHA, base_process=process, cand_process=process)
    assert not np.allclose(plain, nested)  # the processes change the interval: the test can tell them apart
    for a, b, expected in ((base, written("slow.json", 1.1, False), plain),
                           (written("base.json", 1.0, True), written("slow-pooled.json", 1.1, True), nested)):
        table, _, _, left_out = side_by_side(a, b)
        assert not left_out and not cautions(a, b, left_out) and len(table) == 96
        shown = table.set_index("case").loc[name]
        assert np.allclose((shown["low"], shown["high"]), expected) and shown["low"] < 1.1 < shown["high"]


def test_bench_summary_reads_every_kind_of_file():
    for path in (ROOT / "reports" / "h200x2-2026-11-24" / "default" / "world2.json", H100):
        result = subprocess.run([sys.executable, "tools/bench_summary.py", str(path)], capture_output=True, text=True,
                                cwd=ROOT, timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, result.stderr
        assert "images/s" in result.stdout and path.parent.name in result.stdout


def test_the_throughput_plot_takes_more_series_than_its_palette_and_names_the_models():
    """More than 20 lines (the palette's size) and two models: every line gets a colour, the legend names the
    model where the files hold more than one."""
    import pandas as pd

    from harness.report.render import plot_throughput

    table = load([RECORDED / "e2e-fp16.json"])
    copies = [table.assign(engine=table["engine"].str.replace("deeplabv3_resnet101", model).str.replace(
        "cvcuda", f"cvcuda{n}")) for n in range(6) for model in ("deeplabv3_resnet101", "fcn_resnet101")]
    image = plot_throughput(pd.concat(copies, ignore_index=True))
    assert image is not None and image[:8] == b"\x89PNG\r\n\x1a\n"


def test_stage_colours_are_fixed_by_name_and_a_new_stage_changes_none(monkeypatch):
    """A stage added to harness.STAGES takes a colour no stage or lane has; every other colour stays."""
    import importlib

    import harness
    from harness.report import present

    before = dict(present.STAGE_COLORS)
    lanes = {present.LANE_COLORS[lane] for lane in ("read", "compute", "write")}
    assert set(harness.STAGES) | {"unattributed"} <= set(before) and len(set(before.values())) == len(before)
    assert not lanes & set(before.values())
    monkeypatch.setattr(harness, "STAGES", (harness.STAGES[0], "flip", *harness.STAGES[1:]))
    try:
        grown = importlib.reload(present).STAGE_COLORS
        assert {name: grown[name] for name in before} == before
        assert grown["flip"] not in set(before.values()) | lanes
    finally:
        monkeypatch.undo()
        importlib.reload(present)
