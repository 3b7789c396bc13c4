"""Two GPUs (or two runs) side by side, explained: each case's time on one over the other with the gate's
interval, the cases grouped by what the data sheets say bounds them (memory bandwidth, tensor cores, CUDA
cores, JPEG decoders, the host), each group's measured ratio against the ratio the two data sheets predict,
where an end-to-end difference comes from stage by stage, and the copy bandwidth each GPU reached.

Ratios are b's time over a's, as the gate and `compare` read them: below 1, b is faster.  a is the first GPU
by name (or the first file by name, for two runs of one GPU)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import STAGES
from harness.report import case_keys
from harness.report.compare import cautions, side_by_side
from harness.report.findings import describe
from harness.report.peaks import spec
from harness.report.present import number
from harness.report.tables import KINDS, WHOLE, copy_bandwidth, kind_of

#: A group's measured ratio "agrees" with the data sheets' when within this fraction of it.
AGREE = 0.10
MOST_COMPARISONS = 3  # b sides compared with a (more GPUs or runs: the first ones by name)


def sides(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """What the files compare: their GPU models when there are several; else their folders, or else the files
    themselves, where each shares cases with another (runs of one GPU); else nothing (the files of one run,
    each holding its own suites)."""
    models = sorted(table["hardware"].dropna().unique())
    if len(models) > 1:
        return [(model, table[table["hardware"] == model]) for model in models]
    keys = case_keys(table).agg("/".join, axis=1)
    folders = table["label"].map(lambda label: label.rpartition("/")[0])
    for groups in (folders, table["label"]):
        names = sorted(groups.unique())
        cases = {name: set(keys[groups == name]) for name in names}
        if len(names) > 1 and all(any(cases[n] & cases[m] for m in names if m != n) for n in names):
            return [(name, table[groups == name]) for name in names]
    return []


def resource_of(row) -> str | None:
    """What bounds a per-stage case, by the data sheets: None for whole pipelines and stages with no one bound."""
    if row["stage"] in WHOLE:
        return None
    if row["device"] != "cuda":
        return "host"
    if row["stage"] == "inference":
        return f"{'CUDA' if row['precision'] == 'fp32' else 'tensor'} cores ({row['precision']})"
    if row["stage"] == "decode":
        return "JPEG decoders"
    if row["stage"] == "encode":
        return None  # entropy coding on the CUDA cores and copies: no one figure predicts it
    if row["stage"] in ("d2d_copy", "preprocess", "postprocess") or row["stage"] in STAGES:
        return "memory bandwidth"
    return None


def predicted(resource: str, precision: str, gpu_a: str, gpu_b: str) -> float | None:
    """b's time over a's as the data sheets predict it for work bound by `resource`."""
    figure = precision if resource.endswith(f"cores ({precision})") else \
        {"memory bandwidth": "memory_tb_s", "JPEG decoders": "jpeg_decoders"}.get(resource)
    if figure is None:
        return None
    a, b = spec(gpu_a, figure), spec(gpu_b, figure)
    return a / b if a and b else None


def compare_sides(a: tuple[str, pd.DataFrame], b: tuple[str, pd.DataFrame]) -> dict:
    """Everything the report says about b against a: the paired table (with each case's resource), the cases
    left out, the warnings, and the findings' sentences by topic."""
    (name_a, rows_a), (name_b, rows_b) = a, b
    table, only_a, only_b, left_out = side_by_side(rows_a, rows_b)
    table["resource"] = [resource_of(r) for _, r in table.iterrows()] if not table.empty else []
    models = [set(rows["hardware"].dropna()) for rows in (rows_a, rows_b)]
    gpus = (models[0].pop(), models[1].pop()) if all(len(m) == 1 for m in models) and models[0] != models[1] \
        else None
    topics = [("Headline differences (b time / a time, 95% interval)", headlines(table, name_a, name_b)),
              ("Against the data sheets" if gpus else "By what bounds each case", by_resource(table, gpus)),
              ("Where the end-to-end difference comes from", contributions(table)),
              ("Copy bandwidth", bandwidths(rows_a, rows_b, name_a, name_b))]
    return {"a": name_a, "b": name_b, "gpus": gpus is not None, "table": table, "only_a": only_a, "only_b": only_b,
            "left_out": left_out,
            "warnings": cautions(rows_a, rows_b, left_out), "topics": [(t, s) for t, s in topics if s]}


def comparisons(table: pd.DataFrame) -> list[dict]:
    """b against a for each later side (sides()) that shares cases with the first, the first few."""
    found = sides(table)
    compared = [compare_sides(found[0], other) for other in found[1:]]
    return [c for c in compared if not c["table"].empty][:MOST_COMPARISONS]


def what(row) -> str:
    """A paired case in a few words, its precision included."""
    return f"{describe(row)}, {row['precision']}"


def times(value) -> str:
    """A ratio of times to three decimals: 0.698x, 1.000x."""
    return f"{value:.3f}x"


def interval(row) -> str:
    low, high = row["low"], row["high"]
    if pd.isna(low) or pd.isna(high):
        return "no interval: too few raw samples"
    return f"{times(low)}-{times(high)}"


def headlines(table: pd.DataFrame, name_a: str, name_b: str) -> list[str]:
    """Per kind of whole-pipeline measurement, the case a runs fastest, with b's figure and the ratio."""
    whole = table[table["stage"].isin(WHOLE) & table["images_per_s_a"].notna() & table["images_per_s_b"].notna()]
    if whole.empty:
        return []
    kinds = whole.apply(kind_of, axis=1)
    out = []
    for kind in [k for k in KINDS if k in set(kinds)]:
        row = whole[kinds == kind].loc[lambda group: group["images_per_s_a"].astype(float).idxmax()]
        out.append(f"{KINDS[kind]}: **{times(row['ratio_b_over_a'])}** ({interval(row)}): "
                   f"{number(float(row['images_per_s_b']))} images/s on {name_b} against "
                   f"{number(float(row['images_per_s_a']))} on {name_a} ({what(row)}).")
    return out


def by_resource(table: pd.DataFrame, gpus: tuple[str, str] | None) -> list[str]:
    """Each resource's cases: the median ratio and its spread, and where the sides are two GPU models (`gpus`,
    a's and b's), the data sheets' prediction."""
    out = []
    for resource, group in table.dropna(subset=["resource"]).groupby("resource", sort=False):
        ratios = group["ratio_b_over_a"].astype(float)
        q1, q3 = np.percentile(ratios, [25, 75])
        spread = f" (middle half {times(q1)}-{times(q3)})" if len(group) >= 4 else \
            f" ({', '.join(times(r) for r in sorted(ratios))})"
        measured = f"{resource}: median **{times(ratios.median())}** over {len(group)} case(s){spread}"
        expected = {predicted(resource, p, *gpus) for p in group["precision"]} - {None} if gpus else set()
        if not gpus:
            out.append(measured + ".")
        elif resource == "host":
            out.append(measured + "; the host's CPU, not the GPU, sets these: no data-sheet prediction.")
        elif len(expected) == 1:
            value = expected.pop()
            verdict = "agrees" if abs(ratios.median() / value - 1) <= AGREE else "**disagrees**"
            out.append(f"{measured}; the data sheets predict {times(value)}: {verdict} "
                       f"(within {number(AGREE, 'fraction')} counts as agreeing){agreeing(group, value)}.")
        else:
            out.append(measured + "; the data sheets give no figure for this on both GPUs.")
    return out


def agreeing(group: pd.DataFrame, value: float) -> str:
    """Where a group disagrees as a whole, which of its cases do scale as predicted (the copy alone, say: the
    stages that share its bound but run far below it are set by something else, launches or latency)."""
    close = (group["ratio_b_over_a"].astype(float) / value - 1).abs() <= AGREE
    if close.all() or abs(group["ratio_b_over_a"].astype(float).median() / value - 1) <= AGREE:
        return ""
    names = sorted({"/".join(filter(None, (row["stage"], row["variant"]))) for _, row in group[close].iterrows()})
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"; {close.sum()} of {len(group)} case(s) scale as predicted" + (f": {shown}" if names else "")


def contributions(table: pd.DataFrame, most: int = 3) -> list[str]:
    """Per paired end-to-end case (batch 32 first): b's time over a's, and each stage's share of the
    difference, biggest first."""
    rows = table[(table["stage"] == "end_to_end") & (table["variant"] == "")]
    timed = rows[["stage_ms_a", "stage_ms_b"]].map(lambda s: isinstance(s, dict)).all(axis=1)
    rows = rows[timed]
    rows = rows.assign(first=(rows["batch_size"].astype(float) != 32)).sort_values(["first", "case"])
    out = []
    for _, row in rows.head(most).iterrows():
        total = float(row["end_to_end_ms_b"]) - float(row["end_to_end_ms_a"])
        deltas = {s: row["stage_ms_b"].get(s, 0.0) - row["stage_ms_a"].get(s, 0.0) for s in STAGES
                  if s in row["stage_ms_a"] or s in row["stage_ms_b"]}
        deltas["unattributed"] = total - sum(deltas.values())
        ranked = sorted(deltas.items(), key=lambda item: -abs(item[1]))[:4]
        parts = ", ".join(f"{stage} {ms:+.2f} ms" + (f" ({ms / total:.0%})" if abs(total) > 1e-9 else "")
                          for stage, ms in ranked)
        out.append(f"{what(row)}: {times(row['ratio_b_over_a'])} ({interval(row)}), "
                   f"{number(float(row['end_to_end_ms_a']))} to {number(float(row['end_to_end_ms_b']))} ms a batch "
                   f"({total:+.2f} ms): {parts}.")
    return out


def bandwidths(rows_a: pd.DataFrame, rows_b: pd.DataFrame, name_a: str, name_b: str) -> list[str]:
    """The device-to-device copy bandwidth each side reached, against its data sheet."""
    out, measured = [], []
    for name, rows in ((name_a, rows_a), (name_b, rows_b)):
        for hardware, value in copy_bandwidth(rows).items():
            sheet = spec(hardware, "memory_tb_s")
            share = f", {number(value / (sheet * 1e12), 'fraction')} of the data sheet's {sheet:g} TB/s" \
                if sheet else ""
            out.append(f"{name}: {number(value / 1e9)} GB/s read + written{share}.")
            measured.append(value)
    if len(measured) == 2:
        out.append(f"{name_b} over {name_a}: {times(measured[1] / measured[0])} the bandwidth.")
    return out
