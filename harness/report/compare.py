"""Side by side: the same cases from two runs (two GPUs, backends or library versions), with ratios and their
confidence intervals, pairing only cases whose parameters match and listing the cases either side lacks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report import CASE_KEY, case_name, clock_of, pair_cases, unique_cases
from harness.report.gate import ratio_interval, unit

ALPHA = 0.025  # each side of the ratio's bootstrap interval: a 95% interval
#: The columns the compare command shows and writes; side_by_side's table also keeps each case's key and the
#: two sides' images/s and stage times, for the GPU findings (harness.report.gpus).
SHOWN = ["case", "a_ms", "b_ms", "ratio_b_over_a", "low", "high"]
PAIRED = ("images_per_s", "stage_ms", "end_to_end_ms")  # kept from both sides, as field_a and field_b


def side_by_side(a: pd.DataFrame, b: pd.DataFrame, alpha: float = ALPHA):
    """The ratio runs as the gate's does: b's time over a's (a the baseline, b the candidate; above 1: b is
    slower), with the gate's bootstrap interval at 1 - 2 alpha.  Returns the table, the cases only in a, only
    in b, and the cases left out with why: two clocks' or two sample units' medians are no ratio."""
    both, only_a, only_b = pair_cases(unique_cases(a), unique_cases(b), ("_a", "_b"))
    rows, left_out = [], []
    for _, row in both.iterrows():
        clocks = clock_of(row.get("timer_a")), clock_of(row.get("timer_b"))
        units = unit(row, "_a"), unit(row, "_b")
        if clocks[0] != clocks[1] or units[0] != units[1]:
            left_out.append(f"{case_name(row)}: a: {clocks[0]}, {units[0]} samples; b: {clocks[1]}, {units[1]} "
                            "samples")
            continue
        low, high = ratio_interval(row["samples_a"], row["samples_b"], alpha,
                                   base_process=row.get("sample_process_a"),
                                   cand_process=row.get("sample_process_b"))
        finite = np.isfinite(low) and np.isfinite(high)  # infinite: too few raw samples for an interval
        rows.append({"case": case_name(row), "a_ms": row["median_a"] * 1e3, "b_ms": row["median_b"] * 1e3,
                     "ratio_b_over_a": row["median_b"] / row["median_a"],
                     "low": low if finite else np.nan, "high": high if finite else np.nan,
                     **{key: row[key] for key in CASE_KEY},
                     **{f"{field}{side}": row.get(f"{field}{side}") for field in PAIRED for side in ("_a", "_b")}})
    extra = [*CASE_KEY, *(f"{field}{side}" for field in PAIRED for side in ("_a", "_b"))]
    table = pd.DataFrame(rows, columns=[*SHOWN, *extra])
    return table.sort_values("ratio_b_over_a", ascending=False).reset_index(drop=True), only_a, only_b, left_out


def cards_of(a: pd.DataFrame, b: pd.DataFrame) -> tuple[str, str] | None:
    """Two of the cards where a and b are one GPU model but their files name several cards between them: a card
    of a and another card, of a or b.  The gate's other_gpus is the case of one card a side; this also covers
    runs recorded in several device calls."""
    if set(a["hardware"].dropna()) != set(b["hardware"].dropna()) or "env_gpu_uuid" not in a or "env_gpu_uuid" not in b:
        return None
    ours = sorted(a["env_gpu_uuid"].dropna().unique())
    others = sorted((set(a["env_gpu_uuid"].dropna()) | set(b["env_gpu_uuid"].dropna())) - set(ours[:1]))
    return (str(ours[0]), str(others[0])) if ours and others else None


def cautions(a: pd.DataFrame, b: pd.DataFrame, left_out: list[str]) -> list[str]:
    """What makes the ratios mean less than they seem: two cards of one model, cases timed two ways."""
    found = []
    cards = cards_of(a, b)
    if cards:
        found.append(f"a and b ran on two GPUs of one model ({cards[0]} and {cards[1]}): the ratios hold the "
                     "machines' difference too (up to 1.8x between two H100s of one pool on one commit)")
    if left_out:
        found.append(f"{len(left_out)} cases were timed two ways (clock or sample unit): left out, listed below")
    return found
