"""Prints benchmark files at a glance, one line per case: stage, engine, case, median ms, GPU ms, images/s,
noise.  It reads them through harness.report.load, so it takes every file the report takes (the suites',
harness.distributed's, plain pytest-benchmark's); the full report is `python -m harness.report report`.
Usage: python tools/bench_summary.py FILE.json [...]"""

import sys

from harness.report import ReportError
from harness.report.load import load
from harness.report.present import readable

COLUMNS = ["label", "stage", "engine", "variant", "device", "precision", "batch_size", "model_height", "source",
           "world_size", "rank", "median_ms", "cuda_event_median_ms", "images_per_s", "noise_rel_iqr",
           "unattributed_fraction", "throttled"]

if __name__ == "__main__":
    try:
        table = load(sys.argv[1:])
    except ReportError as error:
        sys.exit(f"bench_summary: {error}")
    table["median_ms"] = table["median"] * 1e3
    shown = [c for c in COLUMNS if c in table and table[c].notna().any()]
    print(readable(table.sort_values(["label", "stage", "engine"])[shown]).to_markdown(index=False))
