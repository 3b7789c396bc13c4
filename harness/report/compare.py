"""Side by side: the same cases from two runs (two GPUs, backends or library versions), with ratios,
pairing only cases whose parameters match and listing the cases either side lacks."""

from __future__ import annotations

import pandas as pd

from harness.report import case_name, pair_cases


def side_by_side(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The ratio runs as the gate's does: b's time over a's (a the baseline, b the candidate; above 1: b is
    slower)."""
    both, only_a, only_b = pair_cases(a, b, ("_a", "_b"))
    table = pd.DataFrame({
        "case": [case_name(r) for _, r in both.iterrows()],
        "a_ms": both["median_a"].to_numpy() * 1e3,
        "b_ms": both["median_b"].to_numpy() * 1e3,
        "ratio_b_over_a": (both["median_b"] / both["median_a"]).to_numpy(),
    })
    return table.sort_values("ratio_b_over_a", ascending=False).reset_index(drop=True), only_a, only_b


def plot_side_by_side(table: pd.DataFrame, label_a: str, label_b: str, most: int = 40) -> bytes | None:
    """One bar per case from 1 to b time / a time on a log scale symmetric about 1, ticks on both sides (the
    `most` cases that differ most when there are more): right of 1, b is slower; left, faster."""
    from matplotlib.ticker import FixedLocator, NullLocator

    from harness.report.render import plt, png

    if table.empty:
        return None
    import numpy as np

    ratio = table["ratio_b_over_a"]
    shown = table.loc[np.abs(np.log(ratio)).sort_values(ascending=False).index[:most]]
    shown = shown.sort_values("ratio_b_over_a")
    reach = max(1.1, float(np.exp(np.abs(np.log(shown["ratio_b_over_a"])).max())) * 1.15)
    figure, axis = plt.subplots(figsize=(9, 0.28 * len(shown) + 1.8))
    colors = ["#BE0032" if r > 1 else "#008856" for r in shown["ratio_b_over_a"]]
    axis.barh(shown["case"], shown["ratio_b_over_a"] - 1, left=1, color=colors)
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_xlim(1 / reach, reach)
    steps = [s for s in (1.05, 1.1, 1.25, 1.5, 2, 3, 5, 10, 30, 100) if s <= reach]
    ticks = sorted({1.0, *steps[-3:], *[1 / s for s in steps[-3:]]})
    axis.xaxis.set_major_locator(FixedLocator(ticks))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.set_xticklabels([f"{t:.3g}x" if t >= 1 else f"1/{1 / t:.3g}" for t in ticks])
    title = f"b: {label_b}\nagainst a: {label_a}"
    if len(table) > most:
        title += f"\n({most} of {len(table)} cases: those that differ most)"
    axis.set(title=title, xlabel="b time / a time (log): left of 1, b is faster; right, slower")
    axis.tick_params(axis="y", labelsize=6)
    axis.grid(axis="x", alpha=0.3)
    return png(figure)
