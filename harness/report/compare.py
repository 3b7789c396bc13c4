"""Side by side: the same cases from two runs (two GPUs, backends or library versions), with ratios,
pairing only cases whose parameters match and listing the cases either side lacks."""

from __future__ import annotations

import pandas as pd

from harness.report import case_name, pair_cases


def side_by_side(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    both, only_a, only_b = pair_cases(a, b, ("_a", "_b"))
    table = pd.DataFrame({
        "case": [case_name(r) for _, r in both.iterrows()],
        "a_ms": both["median_a"].to_numpy() * 1e3,
        "b_ms": both["median_b"].to_numpy() * 1e3,
        "speedup_b_over_a": (both["median_a"] / both["median_b"]).to_numpy(),  # above 1: b is faster
    })
    return table.sort_values("speedup_b_over_a").reset_index(drop=True), only_a, only_b
