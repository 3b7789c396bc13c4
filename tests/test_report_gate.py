"""Loading benchmark JSON and the regression gate, on files from real measurements: the recorded H100
smoke run, a CPU run of the suites made here (test_bench_json's), and small workloads timed in this test,
round by round interleaved, written as --benchmark-json files with pytest-benchmark's own statistics."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from pytest_benchmark.stats import Stats

from harness.report import CASE_KEY, ReportError
from harness.report.gate import compare, main
from harness.report.load import load

ROOT = Path(__file__).resolve().parent.parent
H100 = ROOT / "reports" / "h100-smoke-2026-11-23" / "bench.json"

def workload(work: float) -> int:
    total = 0
    for i in range(int(100_000 * work)):
        total += i * i
    return total


def timed_rounds(works: list[float], rounds: int = 41) -> list[list[float]]:
    """Seconds per round for each amount of work, the workloads interleaved round by round so that the
    drift of a busy shared machine (measured here: the same work anywhere from 0.7x to 1.8x as fast from
    one second to the next) falls on all of them alike."""
    samples: list[list[float]] = [[] for _ in works]
    for _ in range(rounds + 2):
        for index, work in enumerate(works):
            start = time.perf_counter()
            workload(work)
            samples[index].append(time.perf_counter() - start)
    return [s[2:] for s in samples]  # two warm-up rounds


def write_run(path: Path, samples: list[float]) -> Path:
    """A --benchmark-json file for one case, its statistics computed by pytest-benchmark's own Stats."""
    stats = Stats()
    for value in samples:
        stats.update(value)
    bench = {"name": "workload", "group": None, "stats": {**stats.as_dict(), "iterations": 1, "data": samples},
             "extra_info": {"stage": "workload", "engine": "python", "variant": "", "device": "cpu",
                            "precision": "fp32", "batch_size": 1, "model_height": 0, "model_width": 0,
                            "source": "none"}}
    path.write_text(json.dumps({"machine_info": {"processor": "this machine"}, "benchmarks": [bench]}))
    return path


@pytest.fixture(scope="module")
def workloads(tmp_path_factory) -> dict[str, Path]:
    """Real timings: the base work, 20% more work, and the same work twice with identical random extra
    work (up to 30%) in every round: noisy, with no real difference."""
    folder = tmp_path_factory.mktemp("workloads")
    base, slower = timed_rounds([1.0, 1.2])
    rng_a, rng_b = random.Random(0), random.Random(0)
    noisy_a, noisy_b = [], []
    for _ in range(41):
        extra = rng_a.uniform(0, 0.3)
        assert extra == rng_b.uniform(0, 0.3)
        a, b = timed_rounds([1.0 + extra, 1.0 + extra], rounds=1)
        noisy_a += a
        noisy_b += b
    return {name: write_run(folder / f"{name}.json", samples) for name, samples in
            (("base", base), ("slower", slower), ("noisy-a", noisy_a), ("noisy-b", noisy_b))}


def test_load_the_h100_run():
    table = load([H100])
    assert len(table) == len(json.loads(H100.read_text())["benchmarks"])
    assert set(CASE_KEY) <= set(table.columns)
    assert set(table["hardware"]) == {"NVIDIA H100 80GB HBM3"}
    assert (table["median"] > 0).all() and table["samples"].map(len).eq(table["rounds"]).all()


def test_load_a_cpu_run_made_here(quick_run_path):
    table = load([quick_run_path])
    assert {"resize", "end_to_end", "throughput"} <= set(table["stage"])
    assert table["images_per_s"].gt(0).all()


@pytest.mark.parametrize("content,message", [
    ("{not json", "is not valid JSON"),
    ('{"machine_info": {}}', "has no 'benchmarks' list"),
    ('{"benchmarks": [{"name": "x", "stats": {"mean": 1}}]}', "no statistics with raw data"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=message) as error:
        load([path])
    assert str(path) in str(error.value)
    assert main([str(path), str(H100)]) == 2


def test_identical_runs_are_not_a_regression(tmp_path):
    verdicts, only_base, only_cand, _ = compare(load([H100]), load([H100]))
    assert {v.verdict for v in verdicts} == {"same"} and not only_base and not only_cand
    outputs = ["--junit", str(tmp_path / "gate.xml"), "--markdown", str(tmp_path / "g.md")]
    assert main([str(H100), str(H100), *outputs]) == 0
    assert 'failures="0"' in (tmp_path / "gate.xml").read_text()
    assert "no regression" in (tmp_path / "g.md").read_text()


def test_a_real_20_percent_slowdown_is_a_regression(tmp_path, workloads):
    baseline, candidate = workloads["base"], workloads["slower"]
    verdicts, *_ = compare(load([baseline]), load([candidate]))
    assert [v.verdict for v in verdicts] == ["slower"], verdicts
    assert 1.1 < verdicts[0].ratio < 1.35
    assert main([str(baseline), str(candidate), "--junit", str(tmp_path / "gate.xml")]) == 1
    assert 'failures="1"' in (tmp_path / "gate.xml").read_text()
    assert main([str(candidate), str(baseline)]) == 0  # the other way round it is faster, not a regression


def test_noise_without_a_real_difference_is_not_a_regression(workloads):
    baseline, candidate = workloads["noisy-a"], workloads["noisy-b"]
    verdicts, *_ = compare(load([baseline]), load([candidate]))
    assert verdicts[0].verdict in ("same", "ambiguous"), verdicts
    assert main([str(baseline), str(candidate)]) == 0


def test_runs_from_different_hardware_are_refused(quick_run_path):
    assert main([str(H100), str(quick_run_path)]) == 2
