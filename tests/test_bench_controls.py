"""Controlled CPU runs: the suites set torch's and OpenCV's threads, record the CPU settings and load in the
file, and the report warns about a run that started on a busy machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.env import THREAD_VARIABLES
from harness.report.findings import findings
from harness.report.load import load
from harness.report.render import write_report

ROOT = Path(__file__).resolve().parent.parent
CPU_FIELDS = {"torch_threads", "torch_interop_threads", "opencv_threads", "omp_num_threads", "mkl_num_threads",
              "openblas_num_threads", "cpu_count", "cpu_usable", "cpu_governor", "threadpools", "load_before",
              "load_after"}


#: the runs, started together (each is mostly imports): name -> (environment, options)
RUNS = {"option": ({"HARNESS_BENCH_THREADS": "2", "OMP_NUM_THREADS": "2"}, ("--bench-threads", "1")),
        "variable": ({"HARNESS_BENCH_THREADS": "2"}, ()),
        "default": ({"OMP_NUM_THREADS": "2"}, ())}


@pytest.fixture(scope="module")
def run_paths(tmp_path_factory) -> dict[str, Path]:
    """One resize case of the suites, exactly its minimum rounds, in a fresh process per entry of RUNS."""
    folder = tmp_path_factory.mktemp("controls")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_BENCH_") and k not in THREAD_VARIABLES}
    started = {}
    for name, (env, options) in RUNS.items():
        command = [sys.executable, "-m", "pytest", "bench/test_stages.py", "-q", "-p", "no:cacheprovider", "-k",
                   "test_stage_at_model_size and resize", "--bench-quick", *options,
                   "--benchmark-json", str(folder / f"{name}.json")]
        started[name] = subprocess.Popen(command, cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT),
                                                                 "HARNESS_BENCH_BUDGET_S": "0", **env},
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, process in started.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {output[-3000:]}"
    return {name: folder / f"{name}.json" for name in RUNS}


@pytest.fixture(scope="module")
def runs(run_paths) -> dict[str, dict]:
    return {name: json.loads(path.read_text()) for name, path in run_paths.items()}


@pytest.fixture(scope="module")
def run(runs) -> dict:
    """--bench-threads 1 against an environment that asks for 2 (HARNESS_BENCH_THREADS, OMP_NUM_THREADS)."""
    return runs["option"]


def test_the_option_sets_the_threads_over_the_environment(run):
    harness = run["machine_info"]["harness"]
    assert harness["torch_threads"] == 1 and harness["opencv_threads"] == 1


def test_the_file_records_the_cpu_settings_and_load(run):
    harness = run["machine_info"]["harness"]
    assert CPU_FIELDS <= set(harness), CPU_FIELDS - set(harness)
    assert harness["omp_num_threads"] == "2" and harness["mkl_num_threads"] is None
    assert harness["openblas_num_threads"] is None
    assert harness["cpu_count"] == os.cpu_count() and harness["cpu_usable"] == len(os.sched_getaffinity(0))
    assert isinstance(harness["torch_interop_threads"], int) and harness["torch_interop_threads"] >= 1
    assert all(isinstance(harness[k], float) and harness[k] >= 0 for k in ("load_before", "load_after"))
    assert harness["cpu_governor"] is None or isinstance(harness["cpu_governor"], str)
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        assert harness["threadpools"] is None
    else:
        assert isinstance(harness["threadpools"], list)


def test_scalar_settings_reach_the_report_table(run_paths):
    table = load([run_paths["option"]])
    assert table["env_torch_threads"].tolist() == [1]
    assert {"env_load_before", "env_cpu_usable", "env_opencv_threads"} <= set(table.columns)


def test_the_environment_variable_is_honoured(runs):
    harness = runs["variable"]["machine_info"]["harness"]
    assert harness["torch_threads"] == 2 and harness["opencv_threads"] == 2


def test_the_default_is_one_thread_whatever_omp_asks(runs):
    harness = runs["default"]["machine_info"]["harness"]
    assert harness["torch_threads"] == 1 and harness["opencv_threads"] == 1


def with_load(run: dict, path: Path, load_before: float) -> Path:
    data = json.loads(json.dumps(run))
    data["machine_info"]["harness"]["load_before"] = load_before
    path.write_text(json.dumps(data))
    return path


def warnings_of(path: Path) -> list[str]:
    (_, topics), = findings(load([path]))
    return dict(topics).get("Warnings", [])


def test_the_report_warns_about_a_busy_machine(run, tmp_path):
    cores = run["machine_info"]["harness"]["cpu_usable"]
    busy = with_load(run, tmp_path / "busy.json", cores + 1.5)
    assert any(f"the machine was busy: load {cores + 1.5:.2f} on {cores} cores" in w for w in warnings_of(busy))
    written = write_report(load([busy]), tmp_path / "report")
    assert "the machine was busy" in written["markdown"].read_text()
    assert "the machine was busy" in written["html"].read_text()


def test_no_busy_warning_below_the_core_count(run, tmp_path):
    cores = run["machine_info"]["harness"]["cpu_usable"]
    calm = with_load(run, tmp_path / "calm.json", cores - 0.5)
    assert not any("busy" in w for w in warnings_of(calm))
