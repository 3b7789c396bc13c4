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


def plot_side_by_side(table: pd.DataFrame, label_a: str, label_b: str, most: int = 40) -> bytes | None:
    """Horizontal bars of b's speed-up over a per case (log scale, 1 = the same); the `most` cases that
    differ most when there are more."""
    from matplotlib.ticker import FuncFormatter

    from harness.report.render import plt, png

    if table.empty:
        return None
    import numpy as np

    shown = table.loc[np.abs(np.log(table["speedup_b_over_a"])).sort_values(ascending=False).index[:most]]
    shown = shown.sort_values("speedup_b_over_a")
    figure, axis = plt.subplots(figsize=(9, 0.28 * len(shown) + 1.5))
    colors = ["tab:green" if s >= 1 else "tab:red" for s in shown["speedup_b_over_a"]]
    axis.barh(shown["case"], shown["speedup_b_over_a"], color=colors)
    axis.axvline(1.0, color="black", linewidth=0.8)
    title = f"{label_b} against {label_a}: a time / b time (above 1: b faster)"
    if len(table) > most:
        title += f"\n{most} of {len(table)} cases, those that differ most"
    axis.set(xscale="log", title=title)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axis.xaxis.set_major_formatter(plain)
    axis.xaxis.set_minor_formatter(plain)
    axis.tick_params(axis="y", labelsize=6)
    return png(figure)
