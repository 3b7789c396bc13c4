"""The benchmark suites in quick mode, run as a user runs them, and the JSON they leave behind."""

from __future__ import annotations

import json
import pytest

from harness import stages

CASE_FIELDS = {"stage", "engine", "variant", "device", "precision", "batch_size", "model_height", "model_width",
               "source", "source_height", "source_width", "images_per_s", "megapixels_per_s", "timer", "l2",
               "noise_rel_iqr", "noisy", "throttled"}
FINGERPRINT_FIELDS = {"gpu_name", "gpu_uuid", "gpu_compute_capability", "gpu_memory_bytes", "driver", "cuda", "cudnn",
                      "torch", "torchvision", "cvcuda", "nvimgcodec", "onnxruntime", "tensorrt", "python",
                      "git_commit", "git_dirty", "gpu_state_before", "gpu_state_after", "throttled"}


@pytest.fixture(scope="module")
def quick_run(quick_run_path) -> dict:
    return json.loads(quick_run_path.read_text())


def test_every_entry_carries_its_case_and_timing(quick_run):
    benchmarks = quick_run["benchmarks"]
    names = {b["extra_info"]["stage"] for b in benchmarks}
    assert {*stages("staged"), "end_to_end", "throughput"} <= names
    for bench in benchmarks:
        info = bench["extra_info"]
        assert CASE_FIELDS <= set(info), f"{bench['name']} lacks {CASE_FIELDS - set(info)}"
        assert info["images_per_s"] > 0 and bench["stats"]["median"] > 0
        assert len(bench["stats"]["data"]) == bench["stats"]["rounds"]  # raw samples are kept


def test_every_entry_says_how_many_samples_and_what_they_can_detect(quick_run):
    """Whole runs are timed as runs, as many as the noise asks for (at least 3 on the CPU, 5 on a GPU); every
    entry names its sample count and unit and the smallest slowdown the gate would flag, and pytest-benchmark's
    statistics are those of the kept samples."""
    import numpy as np

    seen_runs = False
    for bench in quick_run["benchmarks"]:
        info, stats = bench["extra_info"], bench["stats"]
        assert info["sample_count"] == len(stats["data"]) == info["rounds"]
        assert info["detectable_slowdown"] is None or info["detectable_slowdown"] > 0
        assert stats["median"] == pytest.approx(float(np.median(stats["data"])))
        whole = info["variant"].startswith("files-") or info["stage"] in ("throughput", "sample_workload")
        assert info["sample_unit"] == ("run" if whole else "round")
        if whole:
            seen_runs = True
            assert info["rounds"] >= 3 and info["rounds_stop"] in ("minimum", "target", "budget")
    assert seen_runs


def test_end_to_end_breakdown_comes_from_paired_rounds(quick_run):
    """Each timed round keeps its stage times beside its total (the sample), and the breakdown is the median
    of per-round differences with an interval around it; the uninstrumented case pairs each round with an
    instrumented twin.  Arithmetic on what the file holds, never a timing against a bound."""
    import numpy as np

    seen = set()
    for bench in quick_run["benchmarks"]:
        info, data = bench["extra_info"], bench["stats"]["data"]
        if info["stage"] != "end_to_end":
            continue
        seen.add(info["variant"])
        if info["variant"] == "uninstrumented":
            cost = np.asarray(info["round_paired_ms"]) / (np.asarray(data) * 1e3) - 1
            assert len(info["round_paired_ms"]) == len(data)
            assert info["instrumentation_cost"] == pytest.approx(float(np.median(cost)))
            low, high = info["instrumentation_cost_interval"]
            assert low <= info["instrumentation_cost"] <= high
            continue
        rounds = info["round_stage_ms"]
        assert set(rounds) == set(stages("staged"))  # the suites' pipelines run staged
        assert all(len(values) == len(data) for values in rounds.values())
        unattributed = np.asarray(data) * 1e3 - np.sum(list(rounds.values()), axis=0)
        assert info["unattributed_ms"] == pytest.approx(float(np.median(unattributed)))
        low, high = info["unattributed_ms_interval"]
        assert low <= info["unattributed_ms"] <= high
        assert info["stage_ms"] == pytest.approx({s: float(np.median(v)) for s, v in rounds.items()})
    assert seen == {"", "uninstrumented"}


def test_uninstrumented_twin_of_every_end_to_end_case(quick_run):
    variants = {}
    for bench in quick_run["benchmarks"]:
        info = bench["extra_info"]
        if info["stage"] == "end_to_end":
            key = (info["engine"], info["batch_size"], info["source"], info["model_height"], info["precision"])
            variants.setdefault(key, set()).add(info["variant"])
    assert variants and all(v == {"", "uninstrumented"} for v in variants.values())


def test_machine_info_has_the_fingerprint(quick_run):
    harness = quick_run["machine_info"]["harness"]
    assert FINGERPRINT_FIELDS <= set(harness)
    assert harness["torch"] and harness["python"]


def test_suites_run_as_a_smoke_test_with_benchmarks_disabled():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), HARNESS_BENCH_QUICK="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "bench/", "-q", "-p", "no:cacheprovider",
                             "--benchmark-disable"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]


def test_git_commit_named_by_the_environment_beats_the_checkout(monkeypatch):
    """A GPU runner's copy may carry a stale .git: HARNESS_GIT_COMMIT then names what really ran."""
    from harness.env import git_state

    monkeypatch.delenv("HARNESS_GIT_COMMIT", raising=False)
    here = git_state()
    assert here["git_dirty"] in (True, False) and len(here["git_commit"] or "0" * 40) == 40
    monkeypatch.setenv("HARNESS_GIT_COMMIT", "f" * 40)
    assert git_state() == {"git_commit": "f" * 40, "git_dirty": None}


def test_pytest_benchmark_save_and_compare_work_on_the_suites(tmp_path):
    """pytest-benchmark's own --benchmark-autosave and --benchmark-compare on our cases (its storage is
    relative to the working directory, so the runs start in tmp_path)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
               HARNESS_BENCH_QUICK="1")
    command = [sys.executable, "-m", "pytest", str(root / "bench" / "test_stages.py"), "-q", "-p", "no:cacheprovider",
               "-c", str(root / "pyproject.toml"), "--rootdir", str(root), "-k", "test_stage_at_model_size and resize",
               "--benchmark-storage=file://./store"]
    saved = subprocess.run(command + ["--benchmark-autosave"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert saved.returncode == 0, saved.stdout[-2000:]
    [run] = list((tmp_path / "store").rglob("*.json"))
    assert {b["group"] for b in json.loads(run.read_text())["benchmarks"]} == {"resize"}
    # no --benchmark-compare-fail: two runs' timings are the benchmarks' to compare, never a test's
    compared = subprocess.run(command + ["--benchmark-compare"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
    assert compared.returncode == 0, compared.stdout[-2000:]
    assert "resize" in compared.stdout and "NOW" in compared.stdout  # the comparison table was printed
    history = subprocess.run([sys.executable, "-m", "harness.report", "history", str(tmp_path / "store"), "-o",
                              str(tmp_path / "history")], cwd=root, env=env, capture_output=True, text=True,
                             timeout=600)
    assert history.returncode == 0, history.stderr  # the storage folder is a history of runs as it stands
    rows = (tmp_path / "history" / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + len(json.loads(run.read_text())["benchmarks"]) and "resize" in rows[1]


def test_pytest_benchmarks_histogram_works_on_the_suites(tmp_path):
    """--benchmark-histogram (pygal, the `histogram` extra) on a slice of the suites: one SVG per group."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import importlib.util

    if importlib.util.find_spec("pygal") is None:  # not imported here: pygal adds an import hook to the process
        pytest.skip("pygal is not installed: pip install -e '.[histogram]'")
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), HARNESS_BENCH_QUICK="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "bench/test_stages.py", "-q", "-p", "no:cacheprovider",
                             "-k", "test_stage_at_model_size", f"--benchmark-histogram={tmp_path / 'h'}"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    svgs = list(tmp_path.glob("h*.svg"))
    assert svgs and all(svg.read_text().lstrip().startswith("<?xml") for svg in svgs)


def test_one_noise_figure(quick_run):
    """noise_rel_iqr is the stored statistics' iqr / median, for every entry."""
    for bench in quick_run["benchmarks"]:
        stats = bench["stats"]
        assert bench["extra_info"]["noise_rel_iqr"] == pytest.approx(stats["iqr"] / stats["median"], abs=1e-12)


def test_rounds_adapt_to_the_noise_within_the_budget(quick_run):
    """Every case, whole runs included, chooses its rounds from a pilot (benchkit.choose_rounds) and says
    why; `fixed` remains for --bench-budget-s 0."""
    from harness.benchkit import median_confidence

    for bench in quick_run["benchmarks"]:
        info, data = bench["extra_info"], bench["stats"]["data"]
        assert info["rounds"] == len(data)
        if info["rounds_stop"] == "fixed":
            assert info["pilot_rounds"] == 0
            continue
        assert info["rounds_stop"] in ("minimum", "target", "budget") and info["pilot_rounds"] == 3
        assert info["rounds"] >= 3 and info["ci_target"] == 0.01 and info["ci_budget_s"] > 0
        assert info["ci_rel"] == pytest.approx(median_confidence(data))


def test_choose_rounds_from_a_pilot():
    from harness.benchkit import choose_rounds

    assert choose_rounds([1.0, 1.0, 1.0], minimum=5, budget_s=100, target=0.01) == (5, "minimum")
    steady, noisy = [1.0, 1.01, 0.99], [1.0, 1.2, 0.8]  # IQR / median 1.5% and 30% (pytest-benchmark's quartiles)
    assert choose_rounds(steady, minimum=3, budget_s=100, target=0.01) == (6, "target")  # (1.57 * 1.5) ** 2
    assert choose_rounds(noisy, minimum=3, budget_s=10_000, target=0.02) == (555, "target")  # (1.57 * 30 / 2) ** 2
    assert choose_rounds(noisy, minimum=3, budget_s=10_000, target=0.01) == (1000, "budget")  # 2219 > MAX_ROUNDS
    assert choose_rounds(noisy, minimum=3, budget_s=50, target=0.01) == (50, "budget")  # 50 s of 1 s rounds


def test_group_by_a_parameter_name_works_on_the_suites():
    """--benchmark-group-by=param:engine: the decoder, inference and end-to-end tests have no `engine`
    parameter; bench/conftest.py takes it from their results record instead of stopping with a KeyError."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), HARNESS_BENCH_QUICK="1", HARNESS_BENCH_BUDGET_S="0")
    result = subprocess.run([sys.executable, "-m", "pytest", "bench/test_stages.py", "-q", "-p", "no:cacheprovider",
                             "-k", "test_decode or test_stage_at_model_size", "--benchmark-group-by=param:engine"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "benchmark 'engine=cpu'" in result.stdout  # the decoder case's record: its decoder is its engine
    assert "benchmark \"engine=('torch', 'cpu')\"" in result.stdout  # the stage cases' parameter, as it is
