"""Side by side: the same cases from two runs (two GPUs, backends or library versions), with ratios,
pairing only cases whose parameters match and listing the cases either side lacks."""

from __future__ import annotations

import pandas as pd

from harness.report import CASE_KEY
from harness.report.gate import case_name


def side_by_side(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    key = list(CASE_KEY)
    merged = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    table = pd.DataFrame({
        "case": [case_name(r) for _, r in both.iterrows()],
        "a_ms": both["median_a"].to_numpy() * 1e3,
        "b_ms": both["median_b"].to_numpy() * 1e3,
        "speedup_b_over_a": (both["median_a"] / both["median_b"]).to_numpy(),  # above 1: b is faster
    })
    only_a = [case_name(r) for _, r in merged[merged["_merge"] == "left_only"].iterrows()]
    only_b = [case_name(r) for _, r in merged[merged["_merge"] == "right_only"].iterrows()]
    return table.sort_values("speedup_b_over_a").reset_index(drop=True), only_a, only_b
