"""Load one or many --benchmark-json files into one tidy pandas DataFrame, one row per case and run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness import HarnessError
from harness.files import read_regular_file
from harness.report import CASE_KEY, ReportError
from harness.report.present import run_label
from harness.results import MEASURED_FIELDS

STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "rounds")
INFO = tuple(name for name in MEASURED_FIELDS if name not in STATS)  # `rounds` comes from the statistics
TIMES = ("min", "max", "mean", "median", "q1", "q3")  # seconds: positive and finite where present
SPREADS = ("stddev", "iqr")  # finite and not negative where present
#: The largest benchmark file read (the recorded ones are at most 2.1 MB): parsing it takes about 1 GB of memory.
MAX_JSON_BYTES = 256 << 20
OUT_OF_MEMORY = ("out of host memory holding the files' samples: give fewer or smaller files, or run on a machine "
                 "with more memory")


def read_json(path: str | Path):
    """A file's JSON; a FIFO, device, folder or file over MAX_JSON_BYTES is refused before it is read."""
    try:
        data = read_regular_file(path, MAX_JSON_BYTES, "a --benchmark-json file")
    except HarnessError as error:
        raise ReportError(str(error)) from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ReportError(f"{path}: is not valid JSON ({error}); was the run cut short?") from None


def machine_of(data: dict) -> tuple[dict, dict]:
    """A file's machine_info and its harness block, {} where missing or not an object."""
    machine = data.get("machine_info")
    machine = machine if isinstance(machine, dict) else {}
    env = machine.get("harness")
    return machine, env if isinstance(env, dict) else {}


def commit_of(data: dict) -> str | None:
    """A benchmark file's commit: the harness's recorded one, else pytest-benchmark's."""
    commit_info = data.get("commit_info")
    return machine_of(data)[1].get("git_commit") or (commit_info if isinstance(commit_info, dict) else {}).get("id")


def throttled_flag(value, where: str) -> bool | None:
    """A `throttled` entry as its writers leave it: a bool (per case, and harness.distributed's), a list of
    throttle reasons (per file: empty, not throttled), "true"/"false", or None where it was not recorded."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ReportError(f"{where}: 'throttled' is {value!r}: it must be true, false or a list of throttle reasons")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def checked_samples(stats: dict, where: str) -> np.ndarray:
    """A case's raw samples as a float array, after its statistics are checked: a timer that returned nothing
    or a NaN written as null would give ratios of 0, inf or NaN downstream.  One line naming the case."""
    def broken(what: str, value, kind: str = "a positive finite time"):
        return ReportError(f"{where}: {what} is {value!r}, not {kind}: the run is broken; rerun it or leave the "
                           "file out")

    for key in TIMES:
        if key in stats and not (_number(stats[key]) and stats[key] > 0):
            raise broken(f"its {key}", stats[key])
    for key in SPREADS:
        if key in stats and not (_number(stats[key]) and stats[key] >= 0):
            raise broken(f"its {key}", stats[key], "a finite spread of 0 or more")
    rounds = stats["rounds"]
    if not (isinstance(rounds, int) and not isinstance(rounds, bool) and rounds > 0):
        raise broken("its rounds", rounds, "a positive whole number")
    data = stats.get("data")  # pytest-benchmark's storage keeps them only with --benchmark-save-data
    if data is None:
        return np.empty(0)
    if not isinstance(data, list):
        raise broken("its raw samples ('data')", type(data).__name__, "a list of times")
    values = np.array(data)
    if values.dtype.kind in "iuf" and values.ndim == 1 and (np.isfinite(values) & (values > 0)).all():
        return values.astype(float)
    index, value = next(((i, v) for i, v in enumerate(data) if not (_number(v) and v > 0)), (None, None))
    if index is not None:
        raise broken(f"raw sample #{index}", value)
    return np.asarray(data, dtype=float)  # integers past float64's exact range: still numbers


def checked_spans(spans, where: str) -> None:
    """A whole-run case's `lane_spans` (harness.runner's timeline, drawn by the report): a list of
    [lane, batch, stage, clock, start_s, end_s] rows; one line naming the case where a row is not one."""
    rows = spans if isinstance(spans, list) else [spans]
    for index, span in enumerate(rows):
        ok = (isinstance(span, list) and len(span) == 6 and isinstance(span[0], str)
              and isinstance(span[1], int) and not isinstance(span[1], bool) and span[1] >= 1
              and (span[2] is None or isinstance(span[2], str)) and span[3] in ("host", "cuda")
              and _number(span[4]) and _number(span[5]) and span[5] >= span[4])
        if not ok:
            raise ReportError(f"{where}: lane_spans row #{index} is {span!r}, not [lane, batch, stage, clock "
                              "('host' or 'cuda'), start_s, end_s >= start_s]: leave the file out or rerun it")


def load_file(path: str | Path, data: dict | None = None) -> pd.DataFrame:
    """One benchmark file's cases; `data`: its JSON, when the caller has read it already."""
    path = Path(path)
    if data is None:
        data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(f"{path}: has no 'benchmarks' list: it is not a pytest-benchmark --benchmark-json file")
    if not data["benchmarks"]:
        raise ReportError(f"{path}: holds no benchmark (every case skipped, or the run was cut short): "
                          "run the suites where they can run")
    machine, env = machine_of(data)
    run = data.get("datetime") or path.stem
    commit = commit_of(data)
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    label = run_label(path)
    file_throttled = throttled_flag(env.get("throttled"), f"{path}: machine_info.harness")
    rows = []
    for index, bench in enumerate(data["benchmarks"]):
        stats = bench.get("stats") if isinstance(bench, dict) else None
        name = bench.get("name") if isinstance(bench, dict) else None
        where = f"{path}: benchmark #{index}" + (f" ({name})" if name else "")
        missing = [key for key in ("median", "rounds") if not isinstance(stats, dict) or key not in stats]
        if missing:
            raise ReportError(f"{where} has no statistics ({' and '.join(missing)} missing): rerun pytest-benchmark "
                              "with --benchmark-json")
        info = bench.get("extra_info") or {}
        if not isinstance(info, dict):
            raise ReportError(f"{where}: its extra_info is a {type(info).__name__}, not an object: it is not a "
                              "pytest-benchmark --benchmark-json file")
        if info.get("lane_spans") is not None:
            checked_spans(info["lane_spans"], where)
        row = {"file": str(path), "label": label, "run": run, "commit": commit, "name": name,
               "group": bench.get("group"), "samples": checked_samples(stats, where)}
        row.update({key: info.get(key) for key in CASE_KEY})
        if row["stage"] is None:  # a plain pytest-benchmark file: the test name is all there is
            row["stage"] = bench.get("name")
        row["variant"] = row["variant"] or ""
        row.update({key: stats.get(key) for key in STATS})
        row.update({key: info.get(key) for key in INFO})
        row["hardware"] = env.get("gpu_name") or cpu.get("brand_raw") or machine.get("processor")
        flags = {file_throttled, throttled_flag(info.get("throttled"), f"{where}: extra_info")} - {None}
        row["throttled"] = any(flags) if flags else None  # throttled if the case or its file says so
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


ARCHITECTURES = {"x86_64", "amd64", "aarch64", "arm64", "i386", "i686", "ppc64le", "s390x"}


def cpu_text(env: dict, machine: dict) -> str | None:
    """The host's CPU as one line: its name, and its model number, clock and cores where the file says them
    (GPU runs on two hosts differ in what the host does: encode, reading, launching)."""
    name = env.get("cpu")
    info = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    if not name or name.lower() in ARCHITECTURES:  # older files hold platform.processor(): only the architecture
        name = info.get("brand_raw") or machine.get("processor") or name
        if name and info.get("model") is not None and "model" not in name:
            name += f" (family {info.get('family')} model {info['model']})"
    details = [info.get("hz_advertised_friendly"),
               f"{env['cpu_count']} cores" if env.get("cpu_count") else None]
    details = ", ".join(d for d in details if d)
    return f"{name}, {details}" if name and details else (name or details or None)


def environment(paths) -> pd.DataFrame:
    """What each file ran on, one row per file: GPU and its UUID (two machines of one model differ: see the
    gate), driver, CUDA, cuDNN, the libraries, Python, the commit,
    the rounds and L2 mode of its cases, and the GPU's clocks and throttling before and after the run."""
    rows = []
    for path in paths:
        data = read_json(path)
        machine, env = machine_of(data)
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
        gpu = env.get("gpu_name")
        cpu = cpu_text(env, machine)
        on_gpu = {"driver": env.get("driver"), "CUDA": env.get("cuda"), "cuDNN": (
            f"{cudnn // 10000}.{cudnn // 100 % 100}.{cudnn % 100}" if isinstance(cudnn, int) else cudnn),
            "CV-CUDA": env.get("cvcuda"), "nvImageCodec": env.get("nvimgcodec")}
        rows.append({
            "file": run_label(path), "run at": data.get("datetime"), "GPU": gpu, "CPU": cpu,
            "GPU UUID": env.get("gpu_uuid"),
            # a CPU-only file names no GPU libraries: torch reports its build's CUDA even where no GPU is
            **{name: value if gpu else None for name, value in on_gpu.items()},
            **{name: env.get(key) for name, key in (("torch", "torch"), ("torchvision", "torchvision"),
                                                   ("ONNX Runtime", "onnxruntime"), ("TensorRT", "tensorrt"),
                                                   ("Python", "python"))},
            "commit": (commit[:10] + (" (dirty)" if dirty else "")) if commit else None,
            "rounds": f"{min(rounds)}-{max(rounds)}" if rounds and min(rounds) != max(rounds) else
                      (rounds[0] if rounds else None),
            "L2": ", ".join(sorted({str(i["l2"]) for i in infos if i.get("l2")})) or None,
            "threads": env.get("torch_threads"),
            "GPU before": state(before), "GPU after": state(after),
            "throttled": throttled_text(env.get("throttled"), [i.get("throttled") for i in infos], str(path)),
        })
    return pd.DataFrame(rows)


def throttled_text(value, cases: list, where: str) -> str | None:
    """A file's throttle note for the environment table, from its own flag (`value`) and its cases': the
    reasons it lists, else yes or no; None where neither records one."""
    flags = {throttled_flag(flag, where) for flag in (value, *cases)} - {None}
    if isinstance(value, list) and value:
        return ", ".join(map(str, value))
    return ("yes" if any(flags) else "no") if flags else None
