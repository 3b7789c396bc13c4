"""Tables and plots from the tidy benchmark table (harness.report.load)."""

from __future__ import annotations

import pandas as pd

from harness import STAGES
from harness.report import CASE_KEY

PAIR_KEY = [k for k in CASE_KEY if k not in ("engine", "device")]


def stage_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per-stage cases: median ms and images/s, one row per case."""
    rows = table[table["stage"].isin(STAGES)].copy()
    rows["median_ms"] = rows["median"] * 1e3
    columns = ["hardware", *CASE_KEY, "median_ms", "images_per_s", "noise_rel_iqr"]
    return rows[columns].sort_values(["stage", "engine", "batch_size"]).reset_index(drop=True)


def speedups(table: pd.DataFrame, candidate: str = "cvcuda", baselines=("torch@cuda", "opencv@cpu")) -> pd.DataFrame:
    """Speed-up of `candidate` over each baseline engine per stage: baseline time / candidate time
    (above 1: the candidate is faster), pairing only cases with equal parameters."""
    rows = table[table["stage"].isin(STAGES)].copy()
    rows["who"] = rows["engine"] + "@" + rows["device"]
    out = []
    cand = rows[rows["engine"] == candidate]
    for baseline in baselines:
        base = rows[rows["who"] == baseline]
        merged = cand.merge(base, on=PAIR_KEY, suffixes=("", "_base"))
        for _, r in merged.iterrows():
            out.append({**{k: r[k] for k in PAIR_KEY}, "candidate": candidate, "baseline": baseline,
                        "speedup": r["median_base"] / r["median"]})
    return pd.DataFrame(out)


def breakdown(table: pd.DataFrame) -> pd.DataFrame:
    """End-to-end cases with their per-stage milliseconds, one column per stage."""
    rows = table[(table["stage"] == "end_to_end") & (table["variant"] == "")]
    if "stage_ms" not in rows:
        return pd.DataFrame()
    stages = pd.DataFrame(list(rows["stage_ms"]), index=rows.index)[list(STAGES)]
    return pd.concat([rows[["engine", "precision", "batch_size", "model_height", "source"]], stages], axis=1)
