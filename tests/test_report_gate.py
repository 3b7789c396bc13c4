"""Loading benchmark JSON and the regression gate, on files from real measurements: the recorded H100
runs, a CPU run of the suites made here (test_bench_json's), and small workloads timed in this test, round
by round interleaved, written as --benchmark-json files with pytest-benchmark's own statistics.  The gate's
black-box tests build their candidates from the recorded H100 files: identical, every sample 1.2x and 2x,
cases missing or new, a throttled run, empty, malformed and foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.stats import Stats

from harness.report import CASE_KEY, ReportError
from harness.report.gate import compare, main
from harness.report.load import load

ROOT = Path(__file__).resolve().parent.parent
H100 = ROOT / "reports" / "h100-smoke-2026-11-23" / "bench.json"
RECORDED = ROOT / "reports" / "h100-2026-11-24"
#: Every case kind of the recorded H100 run: per stage, inference, chains, end to end, throughput, the
#: sample workload (whole runs) and harness.distributed.
#: The committed H100 baseline: the gate's own suites (tools/ci_bench.sh), GPU samples from CUDA events,
#: whole runs as adaptive rounds.
BASELINE = ROOT / "reports" / "baselines" / "NVIDIA H100 80GB HBM3.json"
KINDS = [RECORDED / name for name in ("stages.json", "inference.json", "e2e-fp16.json", "sample.json")] + [
    ROOT / "reports" / "h200x2-2026-11-24" / "default" / "world2.json", BASELINE]

def drawn_rounds(work: float, rounds: int = 41, seed: int = 0, extra=None) -> list[float]:
    """Seconds per round shaped like a busy shared machine's timings, drawn rather than timed (a test never
    rests on how fast the machine is): 5% lognormal noise and one round in ten 1.3-1.8x slow; `extra`, the
    per-round extra work."""
    rng = np.random.default_rng(seed)
    slow = np.where(rng.random(rounds) < 0.1, rng.uniform(1.3, 1.8, rounds), 1.0)
    work = work + (np.zeros(rounds) if extra is None else np.asarray(extra))
    return list(0.01 * work * rng.lognormal(0, 0.05, rounds) * slow)


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
    """The base work, 20% more work, and the same work twice with identical random extra work (up to 30%)
    in every round: noisy, with no real difference."""
    folder = tmp_path_factory.mktemp("workloads")
    base, slower = drawn_rounds(1.0, seed=1), drawn_rounds(1.2, seed=2)
    extra = np.random.default_rng(0).uniform(0, 0.3, 41)  # the same extra work in both runs' rounds
    noisy_a, noisy_b = drawn_rounds(1.0, seed=3, extra=extra), drawn_rounds(1.0, seed=4, extra=extra)
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
    ('{"benchmarks": [{"name": "x", "stats": {"mean": 1}}]}', "has no statistics"),
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
    assert {v.verdict for v in verdicts} <= {"same", "underpowered"} and not only_base and not only_cand
    outputs = ["--junit", str(tmp_path / "gate.xml"), "--markdown", str(tmp_path / "g.md")]
    assert main([str(H100), str(H100), *outputs]) == 0
    assert 'failures="0"' in (tmp_path / "gate.xml").read_text()
    assert "no regression" in (tmp_path / "g.md").read_text()


def rewritten(source: Path, target: Path, factor: float = 1.0, keep=None, throttled: bool = False) -> Path:
    """A copy of a recorded file with every raw sample times `factor` (pytest-benchmark's statistics
    recomputed from them), only the entries `keep` accepts, and optionally a throttled GPU."""
    data = json.loads(source.read_text())
    benches = [b for b in data["benchmarks"] if keep is None or keep(b)]
    for bench in benches:
        stats = Stats()
        for value in bench["stats"]["data"]:
            stats.update(value * factor)
        bench["stats"] = {**bench["stats"], **stats.as_dict(), "data": [v * factor for v in bench["stats"]["data"]]}
        bench["extra_info"]["throttled"] = throttled or bench["extra_info"].get("throttled")
    data["benchmarks"] = benches
    target.write_text(json.dumps(data))
    return target


@pytest.mark.parametrize("recorded", KINDS, ids=lambda p: p.stem)
def test_every_case_kind_identical_then_20_percent_then_twice_slower(recorded, tmp_path):
    """The same file: no regression.  Every sample 1.2x or 2x: every case the identical comparison could
    decide (interval within 5%) is slower; the others are slower or say they are underpowered (too few or
    too noisy samples: 5 CPU rounds with one 2x outlier cannot confirm a 2x slowdown at 98%), never same."""
    assert main([str(recorded), str(recorded), "--markdown", str(tmp_path / "same.md")]) == 0
    same, *_ = compare(load([recorded]), load([recorded]))
    assert not [v for v in same if v.verdict not in ("same", "underpowered")]
    decided = {v.case for v in same if v.verdict == "same"}
    for factor in (1.2, 2.0):
        candidate = rewritten(recorded, tmp_path / f"x{factor}.json", factor)
        verdicts, *_ = compare(load([recorded]), load([candidate]))
        for v in verdicts:
            assert v.verdict == "slower" if v.case in decided else v.verdict in ("slower", "underpowered"), v
            assert v.ratio == pytest.approx(factor)
        flagged = sum(v.verdict == "slower" for v in verdicts)
        print(f"{recorded.stem} x{factor}: {flagged} of {len(verdicts)} cases flagged slower")
        assert main([str(recorded), str(candidate), "--markdown", str(tmp_path / "x.md")]) == (
            1 if any(v.verdict == "slower" for v in verdicts) else 0)
        if factor == 2.0:
            assert any(v.verdict == "slower" for v in verdicts)


def test_the_baseline_flags_a_10_percent_slowdown_where_its_samples_say_they_can(tmp_path):
    """Each case of the committed H100 baseline says the smallest slowdown the gate would flag with its
    samples (detectable_slowdown); every sample 1.1x slower, exactly the cases that say 10% or less are
    flagged slower, and none is called the same.  Every batch-32 end-to-end case and the in-memory throughput
    cases are among them."""
    table = load([BASELINE])
    slowed = rewritten(BASELINE, tmp_path / "x1.1.json", 1.1)
    verdicts, *_ = compare(table, load([slowed]))
    power = {name: p for name, p in zip(table["name"], table["detectable_slowdown"])}
    by_case = {v.case: v for v in verdicts}
    from harness.report import case_name

    for _, row in table.iterrows():
        verdict = by_case[case_name(row)]
        assert verdict.verdict != "same", verdict
        if power[row["name"]] < 0.095:  # a margin for the bootstrap's own resampling noise
            assert verdict.verdict == "slower", (row["name"], power[row["name"]], verdict)
    whole = table[table["stage"].isin(["end_to_end", "throughput"]) & ~table["variant"].str.startswith("files-")]
    assert len(whole) == 6 and (whole["detectable_slowdown"] < 0.095).all()


def test_missing_cases_fail_unless_allowed_and_new_cases_are_listed(tmp_path):
    recorded = RECORDED / "sample.json"
    names = [b["name"] for b in json.loads(recorded.read_text())["benchmarks"]]
    fewer = rewritten(recorded, tmp_path / "fewer.json", keep=lambda b: b["name"] != names[0])
    outputs = ["--markdown", str(tmp_path / "g.md"), "--junit", str(tmp_path / "g.xml")]
    assert main([str(recorded), str(fewer), *outputs]) == 1
    text = (tmp_path / "g.md").read_text()
    assert "REGRESSION" in text and "## Missing from the candidate" in text
    assert "missing from the candidate run" in (tmp_path / "g.xml").read_text()
    assert main([str(recorded), str(fewer), "--allow-missing", "--markdown", str(tmp_path / "g.md")]) == 0
    assert main([str(fewer), str(recorded), "--markdown", str(tmp_path / "new.md")]) == 0
    assert "## New in the candidate" in (tmp_path / "new.md").read_text()


def test_a_throttled_run_is_unusable_unless_allowed(tmp_path, capsys):
    recorded = RECORDED / "sample.json"
    hot = rewritten(recorded, tmp_path / "hot.json", throttled=True)
    assert main([str(recorded), str(hot)]) == 2
    assert "throttled" in capsys.readouterr().err
    assert main([str(recorded), str(hot), "--allow-throttled", "--markdown", str(tmp_path / "g.md")]) == 0


@pytest.mark.parametrize("content", ['{"benchmarks": []}', "", '{"machine_info": {}, "benchmarks": {}}', "[1, 2]"],
                         ids=["no-benchmarks", "empty-file", "benchmarks-not-a-list", "foreign"])
def test_empty_and_foreign_files_exit_2_with_one_line(tmp_path, capsys, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main([str(RECORDED / "sample.json"), str(path)]) == 2
    assert main([str(path), str(RECORDED / "sample.json")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err


def test_a_missing_baseline_says_how_to_make_one(tmp_path, capsys):
    assert main([str(tmp_path / "none.json"), str(RECORDED / "sample.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "--benchmark-json" in err and len(err.splitlines()) == 1


def test_the_junit_file_validates_against_jenkins_schema(tmp_path):
    """junit-10.xsd (Jenkins' xunit schema, as pytest's own tests use it) comes from pytest's source
    distribution: .ci/run fetches it; without it the test says so."""
    xsd = ROOT / ".ci-cache" / "junit-10.xsd"
    if not xsd.exists():
        pytest.skip(f"{xsd} is missing: .ci/run fetches it from pytest's source distribution")
    import xmlschema

    recorded = RECORDED / "sample.json"
    slower = rewritten(recorded, tmp_path / "slow.json", 2.0, keep=lambda b: "b4-m224" not in b["name"])
    outputs = ["--junit", str(tmp_path / "g.xml"), "--markdown", str(tmp_path / "g.md")]
    assert main([str(recorded), str(slower), *outputs]) == 1
    schema = xmlschema.XMLSchema(str(xsd))
    suite = xmlschema.XMLResource(str(tmp_path / "g.xml")).root
    schema.validate(suite[0] if suite.tag == "testsuites" else suite)  # the schema's root element is a testsuite
    text = (tmp_path / "g.xml").read_text()
    assert "<failure" in text and "missing from the candidate run" in text


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
    assert verdicts[0].verdict in ("same", "underpowered"), verdicts
    assert main([str(baseline), str(candidate)]) == 0


def test_files_without_raw_samples_are_unusable_for_the_gate(tmp_path, capsys):
    """pytest-benchmark's storage keeps no raw samples unless --benchmark-save-data: the report and history
    read such files, the gate says what it lacks."""
    data = json.loads(H100.read_text())
    for bench in data["benchmarks"]:
        del bench["stats"]["data"]
    bare = tmp_path / "0001_saved.json"
    bare.write_text(json.dumps(data))
    assert len(load([bare])) == len(data["benchmarks"])
    assert main([str(H100), str(bare)]) == 2
    assert "--benchmark-save-data" in capsys.readouterr().err


def test_samples_of_two_clocks_are_unusable(capsys):
    """The gate's suites recorded with host-clock samples (14533ec) against the baseline's CUDA-event samples:
    the times are not comparable, the gate says so in one line."""
    host = ROOT / "reports" / "h100-2026-11-25-gate" / "bench-host-clock-14533ec.json"
    assert main([str(host), str(BASELINE), "--allow-other-gpu", "--allow-missing"]) == 2
    error = capsys.readouterr().err
    assert "timed with the host clock, the candidate with the CUDA events" in error and len(error.splitlines()) == 1


def test_runs_from_different_hardware_are_refused(quick_run_path):
    assert main([str(H100), str(quick_run_path)]) == 2


def test_two_gpus_of_one_model_are_refused_unless_allowed(tmp_path, capsys):
    """The committed baseline and a second run of the same commit on another H100 of the device pool: the
    machines differ by more than the threshold (the gate flags 24 of 60 cases), so the gate refuses to call
    that a regression unless told to compare machines."""
    other = ROOT / "reports" / "h100-2026-11-25-gate" / "bench-2-79f51be.json"
    assert main([str(BASELINE), str(other)]) == 2
    error = capsys.readouterr().err
    assert "two GPUs of one model" in error and "--allow-other-gpu" in error and len(error.splitlines()) == 1
    assert main([str(BASELINE), str(other), "--allow-other-gpu", "--markdown", str(tmp_path / "g.md")]) == 1
    assert "24 slower" in (tmp_path / "g.md").read_text()


def test_samples_of_different_kinds_or_broken_ones_are_unusable(tmp_path, capsys):
    """A whole run's batches against three run totals (files before sample_unit), zero times, and a
    nonsensical --alpha: exit 2, one line naming the case or the option."""
    recorded = RECORDED / "sample.json"
    data = json.loads(recorded.read_text())
    for bench in data["benchmarks"]:
        bench["extra_info"]["sample_unit"] = "batch"
    batches = tmp_path / "batches.json"
    batches.write_text(json.dumps(data))
    assert main([str(recorded), str(batches)]) == 2
    assert "record the baseline again" in capsys.readouterr().err
    broken = rewritten(recorded, tmp_path / "zero.json", 0.0)  # a timer that returned nothing
    assert main([str(recorded), str(broken)]) == 2
    assert "not a positive finite time" in capsys.readouterr().err
    assert main([str(recorded), str(recorded), "--alpha", "0.7"]) == 2
    assert "--alpha 0.7" in capsys.readouterr().err
