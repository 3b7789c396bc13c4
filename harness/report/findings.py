"""The report's opening: what the files say, computed from them (never written by hand), per GPU.

Each finding is a sentence with its numbers and the case they come from: the best end-to-end throughput per
model and precision, where a batch of 32 spends its time, how close the chains and inference come to the
GPU's floor and peak, what CV-CUDA gains over the other engines, the comparison with CV-CUDA's own sample,
and the warnings a reader must see before trusting the rest (throttled runs, busy machines, noisy and
underpowered cases)."""

from __future__ import annotations

import pandas as pd

from harness.report.present import STAGE_COLORS, number
from harness.report.tables import (KINDS, WHOLE, breakdown, floor_fractions, kind_of, peak_fractions,
                                   sample_comparison, speedups)

POWER = 0.10  # a case whose samples cannot show the gate a 10% slowdown is underpowered for CI
#: The heading of files that name no GPU or CPU model (harness.distributed on a CPU Python cannot name).
UNKNOWN_HARDWARE = "Unknown hardware (the files name no GPU or CPU model)"


def model_of(engine: str) -> str:
    """The model of a whole pipeline's engine label (ops+decoder+backend:model)."""
    return engine.split(":")[-1] if ":" in engine else "?"


def describe(row) -> str:
    """A case in a few words: kind, engine, variant, batch, model side, source, file (where known)."""
    parts = [str(row["stage"]).replace("_", " "), str(row["engine"]).split(":")[0]]
    if row.get("variant"):
        parts.append(str(row["variant"]))
    parts += [f"batch {number(row['batch_size'])}", f"{number(row['model_height'])} px"]
    if row.get("source"):
        parts.append(f"from {row['source']}")
    return ", ".join(parts) + (f" ({row['label']})" if row.get("label") else "")


def best_throughput(rows: pd.DataFrame) -> list[str]:
    """One figure per kind of measurement, the best of its cases, labelled with the kind, model, precision and
    source size: figures of different kinds measure different things and are never ranked together."""
    whole = rows[rows["stage"].isin(WHOLE) & rows["images_per_s"].notna()
                 & (rows["rank"].isna() | (rows["rank"] == "all"))]
    if whole.empty:
        return []
    kinds = whole.apply(kind_of, axis=1)
    out = []
    for kind in [k for k in KINDS if k in set(kinds)]:
        best = whole[kinds == kind].loc[lambda group: group["images_per_s"].idxmax()]
        out.append(f"{KINDS[kind]}: **{number(best['images_per_s'])} images/s**, {model_of(best['engine'])} "
                   f"{best['precision']} ({describe(best)}).")
    return out


def time_shares(rows: pd.DataFrame) -> list[str]:
    parts = breakdown(rows)
    out = []
    if not parts.empty:
        parts = parts[parts["batch_size"] == 32]
        stages = [c for c in parts.columns if c in STAGE_COLORS]
        for side, group in parts.groupby("model_height"):
            shares = group[stages].div(group[stages].sum(axis=1), axis=0).median().dropna().sort_values(ascending=False)
            top = ", ".join(f"{stage} {number(share, 'share')}" for stage, share in shares.head(5).items())
            out.append(f"Batch 32 at {number(side)} px ({len(group)} end-to-end cases, median shares of the stage "
                       f"time): {top}.")
    lanes = rows[rows["bound_images_per_s"].notna() & (rows["batch_size"] == 32) & (rows["executor"] == "overlapped")]
    for _, row in lanes.sort_values("bound_fraction").head(4).iterrows():
        busiest = (row["bound_lane"] if isinstance(row.get("bound_lane"), str)  # older files: the whole run's
                   else max(row["lane_seconds"], key=row["lane_seconds"].get) if isinstance(row["lane_seconds"], dict)
                   else "?")
        out.append(f"Overlapped, {describe(row)}: {number(row['steady_images_per_s'])} images/s steady, "
                   f"{number(row['bound_fraction'], 'fraction')} of the pipelining bound "
                   f"({number(row['bound_images_per_s'])} images/s, set by the {busiest} lane){lock_share(row)}.")
    return out


def lock_share(row) -> str:
    """The lanes' threads' CPU time over the run's, where recorded: near one core, they take turns on the
    interpreter lock, whatever the lanes' busy times say."""
    cpu, seconds = row.get("lane_cpu_seconds"), row.get("seconds")
    if not isinstance(cpu, dict) or not cpu or not isinstance(seconds, (int, float)) or not seconds > 0:
        return ""
    return f"; the lanes' threads used {number(sum(cpu.values()) / seconds, 'fraction')} of one core"


def against_limits(rows: pd.DataFrame) -> list[str]:
    out = []
    floors = floor_fractions(rows)
    if not floors.empty:
        for (stage, variant), group in floors.groupby(["stage", "variant"]):
            best = group.loc[group["fraction_of_floor"].idxmax()]
            out.append(f"{stage} chain ({variant or 'staged'}): at best "
                       f"{number(best['fraction_of_floor'], 'fraction')} "
                       f"of the memory-bandwidth floor ({best['engine']}, batch {number(best['batch_size'])}, "
                       f"{number(best['model_height'])} px from {best['source']}: {number(best['gpu_ms'])} ms "
                       f"against {number(best['floor_ms'])} ms).")
    peaks = peak_fractions(rows)
    if not peaks.empty:
        for precision, group in peaks.groupby("precision"):
            best = group.loc[group["fraction_of_peak"].idxmax()]
            out.append(f"Inference in {precision}: at best {number(best['fraction_of_peak'], 'fraction')} of the "
                       f"published peak ({number(best['tflops_per_s'])} of {number(best['peak_tflops'])} TFLOPS, "
                       f"{best['variant'] or 'default'}, batch {number(best['batch_size'])}, "
                       f"{number(best['model_height'])} px).")
    return out


def engine_gains(rows: pd.DataFrame) -> list[str]:
    gains = speedups(rows)
    out = []
    for baseline, group in (gains.groupby("baseline") if not gains.empty else []):
        values = group["speedup"]
        engine, device = baseline.split("@")
        out.append(f"CV-CUDA against {engine} on the {device.upper().replace('CUDA', 'GPU')}: median "
                   f"{number(values.median(), 'speedup')} "
                   f"over {len(values)} per-stage cases (from {number(values.min(), 'speedup')} to "
                   f"{number(values.max(), 'speedup')}).")
    return out


#: the sample-workload variants the findings compare with CV-CUDA's sample (bench/test_sample_workload.py)
SAMPLE_VARIANTS = ("sample-work", "sample-work-compiled", "sample-work-compiled-fused", "fastest", "fastest-fused")


def against_sample(rows: pd.DataFrame) -> list[str]:
    table = sample_comparison(rows)
    return [f"The sample's work, {r['variant']}, batch {number(r['batch_size'])} at {number(r['model_height'])} px: "
            f"{number(r['images_per_s'])} images/s, {number(r['speedup_over_sample'], 'speedup')} CV-CUDA's sample "
            f"({number(r['sample_images_per_s'])} images/s; {r['label']})."
            for _, r in table.iterrows() if r["variant"] in SAMPLE_VARIANTS]


def busy(rows: pd.DataFrame) -> list[str]:
    """Files whose run started with more load than usable cores: their CPU cases waited for a core."""
    out = []
    for label, run in rows.groupby("label"):
        load, cores = run.iloc[0].get("env_load_before"), run.iloc[0].get("env_cpu_usable")
        if pd.notna(load) and pd.notna(cores) and load > cores:
            out.append(f"**Busy machine** ({label}): the machine was busy: load {number(float(load))} on "
                       f"{number(int(cores))} cores when the run started; CPU cases may be slow and noisy.")
    return out


def warnings(rows: pd.DataFrame) -> list[str]:
    out = busy(rows)
    throttled = sorted(rows.loc[rows["throttled"] == True, "label"].unique())  # noqa: E712 (None stays out)
    if throttled:
        out.append(f"**Throttled** (heat or power pulled the clocks down): {', '.join(throttled)}. Their numbers "
                   "are not the GPU's.")
    noisy = rows["noisy"] == True  # noqa: E712
    if noisy.any():
        out.append(f"{noisy.sum()} of {len(rows)} cases are noisy (IQR over 5% of the median): "
                   f"{', '.join(rows.loc[noisy, 'stage'].value_counts().head(4).index)} most often.")
    power = rows["detectable_slowdown"]
    weak = (power.isna() & rows["sample_count"].notna()) | (power > POWER)
    if weak.any():
        out.append(f"{weak.sum()} of {len(rows)} cases are underpowered: their samples cannot show the regression "
                   f"gate a {number(POWER, 'fraction')} slowdown "
                   f"({', '.join(rows.loc[weak, 'stage'].value_counts().head(4).index)} "
                   "most often).")
    return out


TOPICS = (("How fast: the best throughput of each kind", best_throughput), ("Where the time goes", time_shares),
          ("What bounds it: against the GPU's limits", against_limits), ("Warnings", warnings),
          ("CV-CUDA against the other engines", engine_gains), ("Against CV-CUDA's own sample", against_sample))


def findings(table: pd.DataFrame) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """Per GPU in the files: (GPU, [(topic, sentences), ...]) in the order a reader asks (how fast, where the
    time goes, what bounds it, what to distrust), topics without a finding left out."""
    sections = []
    for hardware, rows in table.groupby("hardware", dropna=False):
        topics = [(topic, sentences) for topic, make in TOPICS if (sentences := make(rows))]
        name = hardware if isinstance(hardware, str) else UNKNOWN_HARDWARE
        sections.append((name, topics or [("Nothing to read", ["These files hold no case the findings read."])]))
    return sections
