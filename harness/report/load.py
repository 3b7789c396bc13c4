"""Load one or many --benchmark-json files into one tidy pandas DataFrame, one row per case and run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.report import CASE_KEY, ReportError
from harness.report.present import run_label
from harness.results import MEASURED_FIELDS

STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "rounds")
INFO = tuple(name for name in MEASURED_FIELDS if name not in STATS)  # `rounds` comes from the statistics


def commit_of(data: dict) -> str | None:
    """A benchmark file's commit: the harness's recorded one, else pytest-benchmark's."""
    env = (data.get("machine_info") or {}).get("harness") or {}
    return env.get("git_commit") or (data.get("commit_info") or {}).get("id")


def load_file(path: str | Path, data: dict | None = None) -> pd.DataFrame:
    """One benchmark file's cases; `data`: its JSON, when the caller has read it already."""
    path = Path(path)
    if data is None:
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
    commit = commit_of(data)
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    label = run_label(path)
    rows = []
    for index, bench in enumerate(data["benchmarks"]):
        stats = bench.get("stats") if isinstance(bench, dict) else None
        if not isinstance(stats, dict) or "median" not in stats:
            raise ReportError(f"{path}: benchmark #{index} has no statistics: rerun pytest-benchmark with "
                              "--benchmark-json")
        info = bench.get("extra_info") or {}
        # raw samples: every --benchmark-json file has them; pytest-benchmark's storage only with --benchmark-save-data
        row = {"file": str(path), "label": label, "run": run, "commit": commit, "name": bench.get("name"),
               "group": bench.get("group"),
               "samples": list(stats.get("data") or [])}
        row.update({key: info.get(key) for key in CASE_KEY})
        if row["stage"] is None:  # a plain pytest-benchmark file: the test name is all there is
            row["stage"] = bench.get("name")
        row["variant"] = row["variant"] or ""
        row.update({key: stats.get(key) for key in STATS})
        row.update({key: info.get(key) for key in INFO})
        row["hardware"] = env.get("gpu_name") or cpu.get("brand_raw") or machine.get("processor")
        row.update({f"env_{key}": value for key, value in env.items() if not isinstance(value, (dict, list))})
        row.update({key: value for key, value in info.items() if key not in row})  # fields of other versions
        rows.append(row)
    return pd.DataFrame(rows)


def load(paths) -> pd.DataFrame:
    """All files in one table."""
    frames = [load_file(p) for p in paths]
    if not frames:
        raise ReportError("no benchmark files given")
    return pd.concat(frames, ignore_index=True)


def environment(paths) -> pd.DataFrame:
    """What each file ran on, one row per file: GPU and its UUID (two machines of one model differ: see the
    gate), driver, CUDA, cuDNN, the libraries, Python, the commit,
    the rounds and L2 mode of its cases, and the GPU's clocks and throttling before and after the run."""
    rows = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        env = (data.get("machine_info") or {}).get("harness") or {}
        commit = commit_of(data)
        dirty = env.get("git_dirty", (data.get("commit_info") or {}).get("dirty"))
        infos = [b.get("extra_info") or {} for b in data["benchmarks"]]
        rounds = [b["stats"]["rounds"] for b in data["benchmarks"] if "rounds" in (b.get("stats") or {})]
        before, after = env.get("gpu_state_before") or {}, env.get("gpu_state_after") or {}

        def state(s):
            if not s or s.get("sm_clock_mhz") is None:
                return None
            reasons = ", ".join(s.get("throttle_reasons") or []) or "none"
            return f"SM {s['sm_clock_mhz']}/{s.get('max_sm_clock_mhz')} MHz, {s.get('temperature_c')} °C, " \
                   f"{s.get('power_w', 0):.0f} W; throttle: {reasons}"

        cudnn = env.get("cudnn")
        rows.append({
            "file": run_label(path), "run at": data.get("datetime"),
            "GPU": env.get("gpu_name") or (data.get("machine_info") or {}).get("processor"),
            "GPU UUID": env.get("gpu_uuid"), "driver": env.get("driver"), "CUDA": env.get("cuda"),
            "cuDNN": f"{cudnn // 10000}.{cudnn // 100 % 100}.{cudnn % 100}" if isinstance(cudnn, int) else cudnn,
            **{name: env.get(key) for name, key in (("torch", "torch"), ("torchvision", "torchvision"),
                                                   ("CV-CUDA", "cvcuda"), ("nvImageCodec", "nvimgcodec"),
                                                   ("ONNX Runtime", "onnxruntime"), ("TensorRT", "tensorrt"),
                                                   ("Python", "python"))},
            "commit": (commit[:10] + (" (dirty)" if dirty else "")) if commit else None,
            "rounds": f"{min(rounds)}-{max(rounds)}" if rounds and min(rounds) != max(rounds) else
                      (rounds[0] if rounds else None),
            "L2": ", ".join(sorted({str(i["l2"]) for i in infos if i.get("l2")})) or None,
            "threads": env.get("torch_threads"),
            "GPU before": state(before), "GPU after": state(after),
            "throttled": ", ".join(env["throttled"]) if env.get("throttled") else
                         ("no" if "throttled" in env else None),
        })
    return pd.DataFrame(rows)
