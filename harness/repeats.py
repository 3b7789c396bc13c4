"""Process-level repeats: the benchmark suites run in K fresh processes per side, the sides interleaved on one
machine, and each side's processes merged into one benchmark file whose samples keep their process index.

    python -m harness.repeats -o DIR [-n 3] [--side NAME=CHECKOUT[,VAR=VALUE...]]... [-- PYTEST ARGS]

A case's rounds share one process: its memory placement, its libraries' first choices (cuDNN's algorithms,
the caching allocator's blocks), its clocks.  Their spread says nothing about the next process, so a gate
that sees one process per side is confidently wrong about a case that moves between processes.  Here each
side runs `python -m pytest bench/ --benchmark-json ...` K times, in the order A B, B A, A B, ... (each side
first as often as the other, so that a drift of the machine favours neither), and DIR/NAME.json holds the
pooled samples (pytest-benchmark's statistics recomputed from them), with `sample_process` giving each sample's
process and `process_medians_s` each process's median.  The gate resamples processes, then rounds within them.

Sides default to one, `run=.` (the checkout this command runs in).  Two commits: a worktree of each
(`git worktree add`), `--side base=../base --side candidate=.`.  Two option sets of one checkout: the same
folder with environment variables, `--side a=. --side b=.,HARNESS_BENCH_SLOWDOWN=cvcuda:0.1`.  The per-process
files and logs stay in DIR/processes/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness import HarnessError
from harness.errors import OneLineParser, guarded
from harness.files import write_atomic


@dataclass(frozen=True)
class Side:
    name: str
    checkout: Path
    env: dict = field(default_factory=dict)


def parse_side(text: str) -> Side:
    """NAME=CHECKOUT[,VAR=VALUE...]"""
    name, _, rest = text.partition("=")
    checkout, *assignments = rest.split(",")
    if not name or not checkout or not all("=" in a for a in assignments):
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=CHECKOUT[,VAR=VALUE...]")
    path = Path(checkout).resolve()
    if not (path / "bench").is_dir():
        raise argparse.ArgumentTypeError(f"{checkout}: not a checkout of this project (no bench/ folder in it)")
    return Side(name, path, dict(a.split("=", 1) for a in assignments))


def schedule(sides: list[Side], processes: int) -> list[tuple[int, Side]]:
    """(process index, side) in running order: A B, B A, A B, ..."""
    order = []
    for index in range(processes):
        order += [(index, side) for side in (sides if index % 2 == 0 else sides[::-1])]
    return order


def run_process(side: Side, index: int, folder: Path, pytest_args: list[str]) -> tuple[Path, int]:
    """One fresh pytest process of the suites in `side`'s checkout: (its JSON file, its exit status)."""
    out = folder / f"{side.name}-p{index}.json"
    env = {**os.environ, **side.env,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(side.checkout), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "bench/", "-p", "no:cacheprovider", "--benchmark-json", str(out),
               *pytest_args]
    with open(folder / f"{side.name}-p{index}.log", "wb") as log:
        status = subprocess.run(command, cwd=side.checkout, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    return out, status


def merge(files: list[Path]) -> dict:
    """One benchmark file from several processes' files of one side: each case's samples pooled in process
    order, its statistics and the figures derived from them recomputed, `sample_process` and
    `process_medians_s` added; the machine and run information of the first process, throttling from all."""
    from harness.benchkit import NOISE_THRESHOLD, median_confidence, paired_breakdown, relative_iqr, sample_power, \
        stats_of

    runs = [json.loads(path.read_text()) for path in files]
    merged = json.loads(json.dumps(runs[0]))
    harness_info = merged["machine_info"].setdefault("harness", {})
    throttled = sorted({r for run in runs for r in (run["machine_info"].get("harness") or {}).get("throttled") or []})
    harness_info.update(processes=len(runs), throttled=throttled,
                        load_after=(runs[-1]["machine_info"].get("harness") or {}).get("load_after"),
                        gpu_state_after=(runs[-1]["machine_info"].get("harness") or {}).get("gpu_state_after"))
    by_name: dict[str, list[tuple[int, dict]]] = {}
    for index, run in enumerate(runs):
        for bench in run["benchmarks"]:
            by_name.setdefault(bench["fullname"], []).append((index, bench))
    merged["benchmarks"] = []
    for entries in by_name.values():
        bench = json.loads(json.dumps(entries[0][1]))
        samples = [v for _, b in entries for v in b["stats"]["data"]]
        process = [index for index, b in entries for _ in b["stats"]["data"]]
        stats = stats_of(samples)
        bench["stats"] = {**stats.as_dict(), "data": samples, "iterations": 1}
        info = bench["extra_info"]
        first = entries[0][1]["stats"]["median"]
        scale = first / stats.median if stats.median > 0 else float("nan")
        info.update(sample_process=process, process_medians_s=[b["stats"]["median"] for _, b in entries],
                    median_s=stats.median, rounds=len(samples), noise_rel_iqr=relative_iqr(samples),
                    ci_rel=median_confidence(samples), throttled=bool(throttled),
                    host_median_s=float(np.median([b["extra_info"].get("host_median_s") or np.nan
                                                   for _, b in entries])))
        info["noisy"] = info["noise_rel_iqr"] > NOISE_THRESHOLD
        info.update(sample_power(samples, info.get("sample_unit") or "round", process))
        for rate in ("images_per_s", "megapixels_per_s"):  # both are work / the median
            if isinstance(info.get(rate), (int, float)):
                info[rate] *= scale
        if info.get("cuda_event_ms"):
            info["cuda_event_ms"] = [v for _, b in entries for v in b["extra_info"].get("cuda_event_ms") or []]
            info["cuda_event_median_ms"] = float(np.median(info["cuda_event_ms"]))
        rounds = {key: _pooled([b["extra_info"].get(key) for _, b in entries]) for key in ("round_stage_ms",
                                                                                           "round_paired_ms")}
        if any(value is not None for value in rounds.values()):
            info.update({k: v for k, v in rounds.items() if v is not None})
            info.update(paired_breakdown(samples, rounds["round_stage_ms"], rounds["round_paired_ms"]))
        merged["benchmarks"].append(bench)
    return merged


def _pooled(values: list):
    """Per-round lists (or dicts of them) of several processes, joined in process order."""
    if any(v is None for v in values):
        return None
    if isinstance(values[0], dict):
        return {key: [x for v in values for x in v[key]] for key in values[0]}
    return [x for v in values for x in v]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = OneLineParser(prog="python -m harness.repeats", description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for NAME.json and processes/")
    parser.add_argument("-n", "--processes", type=int, default=3, help="fresh processes per side")
    parser.add_argument("--side", type=parse_side, action="append", dest="sides", metavar="NAME=CHECKOUT[,VAR=VALUE]",
                        help="a side to run (repeatable; default run=.)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    args = parser.parse_args(own)
    args.pytest_args = pytest_args
    return guarded("harness.repeats", _run, args, debug=args.debug)


def _run(args) -> int:
    sides = args.sides or [parse_side("run=.")]
    if args.processes < 1 or len({s.name for s in sides}) != len(sides):
        raise HarnessError("give -n 1 or more and a distinct NAME for each --side")
    folder = args.output / "processes"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {side.name: [] for side in sides}
    failed = []
    for index, side in schedule(sides, args.processes):
        print(f"harness.repeats: {side.name} process {index + 1}/{args.processes}", file=sys.stderr, flush=True)
        out, status = run_process(side, index, folder, args.pytest_args)
        if out.exists():
            files[side.name].append(out)
        if status != 0:
            failed.append(f"{side.name} process {index + 1} (pytest exit {status}, log {out.with_suffix('.log')})")
    for name, paths in files.items():
        if not paths:
            raise HarnessError(f"no process of side {name} wrote a benchmark file: see {folder}/{name}-p*.log")
        write_atomic(args.output / f"{name}.json", json.dumps(merge(paths), indent=1).encode())
        print(f"{name}: {args.output / f'{name}.json'} ({len(paths)} processes)")
    if failed:
        print("harness.repeats: error: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
