"""Process-level repeats (harness.repeats) and the gate's interval over processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.stats import Stats

from harness.repeats import Side, parse_side, schedule
from harness.report.gate import main as gate, ratio_interval

ROOT = Path(__file__).resolve().parent.parent


def shifted_processes(medians: list[float], rounds: int = 200, seed: int = 0) -> tuple[list[float], list[int]]:
    """Samples of processes whose rounds scatter 1% around each process's own median, and their indices."""
    rng = np.random.default_rng(seed)
    samples = [m * rng.lognormal(0, 0.01, rounds) for m in medians]
    return [float(v) for s in samples for v in s], [i for i in range(len(medians)) for _ in range(rounds)]


def test_processes_that_disagree_widen_the_interval():
    """One process of three sits 30% higher on each side, a different one: resampling rounds alone calls the
    ratio tight; resampling processes first says the samples cannot tell."""
    base, base_process = shifted_processes([1.0, 1.0, 1.3], seed=1)
    cand, cand_process = shifted_processes([1.3, 1.3, 1.0], seed=2)
    rounds_only = ratio_interval(base, cand, alpha=0.01)
    by_process = ratio_interval(base, cand, alpha=0.01, base_process=base_process, cand_process=cand_process)
    assert rounds_only[0] > 1.05  # confidently "slower"
    assert by_process[0] < 0.95 and by_process[1] > 1.05  # underpowered


def test_a_shift_of_every_process_stays_significant():
    base, base_process = shifted_processes([1.0, 1.01, 0.99], seed=3)
    cand, cand_process = shifted_processes([1.2, 1.21, 1.19], seed=4)
    low, high = ratio_interval(base, cand, alpha=0.01, base_process=base_process, cand_process=cand_process)
    assert 1.1 < low <= high < 1.3


def test_process_indices_that_do_not_match_the_samples_are_ignored():
    base, _ = shifted_processes([1.0], seed=5)
    assert ratio_interval(base, base, 0.01, base_process=[0, 1], cand_process=None) == \
        ratio_interval(base, base, 0.01)


def test_sides_alternate_which_runs_first():
    a, b = Side("a", ROOT), Side("b", ROOT)
    assert [(i, s.name) for i, s in schedule([a, b], 3)] == [(0, "a"), (0, "b"), (1, "b"), (1, "a"), (2, "a"),
                                                             (2, "b")]


@pytest.mark.parametrize("text", ["a", "=.", "a=", "a=.,NOVALUE", "a=/nonexistent"])
def test_a_bad_side_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_side(text)


def test_a_side_names_its_checkout_and_environment():
    side = parse_side(f"b={ROOT},HARNESS_BENCH_SLOWDOWN=cvcuda:0.1,X=1=2")
    assert side == Side("b", ROOT, {"HARNESS_BENCH_SLOWDOWN": "cvcuda:0.1", "X": "1=2"})


@pytest.fixture(scope="module")
def repeated(tmp_path_factory) -> Path:
    """Two fresh processes of one CPU case, merged."""
    out = tmp_path_factory.mktemp("repeats")
    env = dict(os.environ, HARNESS_BENCH_QUICK="1", HARNESS_BENCH_BUDGET_S="0")
    done = subprocess.run([sys.executable, "-m", "harness.repeats", "-o", str(out), "-n", "2", "--", "-q",
                           "-k", "test_stage_at_model_size and resize"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run: " in done.stdout
    return out


def test_merged_file_keeps_each_samples_process(repeated):
    merged = json.loads((repeated / "run.json").read_text())
    parts = [json.loads((repeated / "processes" / f"run-p{i}.json").read_text()) for i in range(2)]
    assert merged["machine_info"]["harness"]["processes"] == 2
    [bench] = merged["benchmarks"]
    data = [v for part in parts for v in part["benchmarks"][0]["stats"]["data"]]
    assert bench["stats"]["data"] == data
    info = bench["extra_info"]
    assert info["sample_process"] == [i for i, part in enumerate(parts) for _ in part["benchmarks"][0]["stats"]["data"]]
    assert info["process_medians_s"] == [part["benchmarks"][0]["stats"]["median"] for part in parts]
    expected = Stats()
    for value in data:
        expected.update(value)
    assert bench["stats"]["median"] == pytest.approx(expected.median)
    assert info["median_s"] == bench["stats"]["median"] and info["rounds"] == len(data)
    assert info["images_per_s"] == pytest.approx(info["batch_size"] / bench["stats"]["median"])


def test_the_gate_reads_merged_files_and_counts_their_processes(repeated, tmp_path):
    run = str(repeated / "run.json")
    assert gate([run, run, "--markdown", str(tmp_path / "g.md")]) == 0
    text = (tmp_path / "g.md").read_text()
    assert "| 2, 2 |" in text and "Warning" not in text
    single = str(repeated / "processes" / "run-p0.json")
    assert gate([single, single, "--markdown", str(tmp_path / "one.md")]) == 0
    assert "come from one process on a side" in (tmp_path / "one.md").read_text()


def test_a_refusing_gate_still_writes_its_reason(repeated, tmp_path, capsys):
    missing = str(tmp_path / "nothing.json")
    assert gate([missing, str(repeated / "run.json"), "--markdown", str(tmp_path / "g.md"), "--junit",
                 str(tmp_path / "g.xml")]) == 2
    assert "not run" in (tmp_path / "g.md").read_text() and "does not exist" in (tmp_path / "g.md").read_text()
    xml = (tmp_path / "g.xml").read_text()
    assert 'errors="1"' in xml and "does not exist" in xml
    assert "does not exist" in capsys.readouterr().err


def test_cpu_cases_on_different_thread_counts_are_not_gated(repeated, tmp_path, capsys):
    data = json.loads((repeated / "run.json").read_text())
    data["machine_info"]["harness"]["torch_threads"] = 2
    other = tmp_path / "two-threads.json"
    other.write_text(json.dumps(data))
    assert gate([str(repeated / "run.json"), str(other)]) == 2
    assert "--bench-threads" in capsys.readouterr().err


def test_history_takes_a_runs_uncertainty_from_its_processes(repeated):
    from harness.report.history import benchmark_files, history_table, process_error

    assert np.isnan(process_error([1.0])) and np.isnan(process_error(None))
    assert process_error([1.0, 1.1]) == pytest.approx(np.std(np.log([1.0, 1.1]), ddof=1) / np.sqrt(2))
    files, _ = benchmark_files([repeated / "run.json"])
    table = history_table(files)
    assert np.isfinite(table["process_se"]).all()


def test_the_reports_breakdown_comes_with_its_intervals():
    """The recorded H100 protocol run: paired-round figures and their intervals reach the report's table."""
    from harness.report.load import load
    from harness.report.tables import end_to_end_summary

    recorded = ROOT / "reports" / "h100-2026-12-06-repeats" / "a1.json"
    table = load([recorded])
    [row] = end_to_end_summary(table).to_dict("records")
    [bare] = table[table["variant"] == "uninstrumented"].to_dict("records")
    assert row["instrumentation_overhead"] == bare["instrumentation_cost"]
    low, high = bare["instrumentation_cost_interval"]
    assert low <= row["instrumentation_overhead"] <= high
    assert row["instrumentation_95"] == f"{low:.1%}..{high:.1%}" and row["unattributed_95"].count("..") == 1


def test_a_bad_option_is_one_line(capsys):
    from harness.repeats import main

    with pytest.raises(SystemExit) as stopped:
        main(["-o", "x", "--side", "a"])
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m harness.repeats: error: argument --side") and "NAME=CHECKOUT" in line
