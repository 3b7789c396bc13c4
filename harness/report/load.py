"""Load one or many --benchmark-json files into one tidy pandas DataFrame, one row per case and run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.report import CASE_KEY, ReportError
from harness.results import MEASURED_FIELDS

STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "rounds")
INFO = tuple(name for name in MEASURED_FIELDS if name not in STATS)  # `rounds` comes from the statistics


def load_file(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ReportError(f"{path}: cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise ReportError(f"{path}: is not valid JSON ({error}); was the run cut short?") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(f"{path}: has no 'benchmarks' list: it is not a pytest-benchmark --benchmark-json file")
    if not data["benchmarks"]:
        raise ReportError(f"{path}: holds no benchmark (every case skipped, or the run was cut short): "
                          "run the suites where they can run")
    machine = data.get("machine_info") or {}
    env = machine.get("harness") or {}
    run = data.get("datetime") or path.stem
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    rows = []
    for index, bench in enumerate(data["benchmarks"]):
        stats = bench.get("stats") if isinstance(bench, dict) else None
        if not isinstance(stats, dict) or "median" not in stats or "data" not in stats:
            raise ReportError(f"{path}: benchmark #{index} has no statistics with raw data: "
                              "rerun pytest-benchmark with --benchmark-json")
        info = bench.get("extra_info") or {}
        row = {"file": str(path), "run": run, "name": bench.get("name"), "group": bench.get("group"),
               "samples": list(stats["data"])}
        row.update({key: info.get(key) for key in CASE_KEY})
        if row["stage"] is None:  # a plain pytest-benchmark file: the test name is all there is
            row["stage"] = bench.get("name")
        row["variant"] = row["variant"] or ""
        row.update({key: stats.get(key) for key in STATS})
        row.update({key: info.get(key) for key in INFO})
        row["hardware"] = env.get("gpu_name") or cpu.get("brand_raw") or machine.get("processor")
        row.update({f"env_{key}": value for key, value in env.items() if not isinstance(value, (dict, list))})
        rows.append(row)
    return pd.DataFrame(rows)


def load(paths) -> pd.DataFrame:
    """All files in one table."""
    frames = [load_file(p) for p in paths]
    if not frames:
        raise ReportError("no benchmark files given")
    return pd.concat(frames, ignore_index=True)
