"""Tables and plots from the tidy benchmark table (harness.report.load)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import STAGES
from harness.report import CASE_KEY
from harness.results import WHOLE_PIPELINES, gpu_seconds
from harness.results import kind_of as results_kind_of

PAIR_KEY = [k for k in CASE_KEY if k not in ("engine", "device")]


#: Whole-pipeline cases, from JPEG bytes to JPEG bytes: their images/s are the end-to-end throughput.
WHOLE = WHOLE_PIPELINES


#: What each kind of whole-pipeline case measures, as the first screen labels its figure.
KINDS = {"end_to_end": "One batch in memory, JPEG bytes to JPEG bytes",
         "throughput": "In-memory throughput, batch after batch",
         "throughput_from_files": "Files through the executor",
         "sample_workload": "The sample's workload, 256 1080p files",
         "distributed_throughput": "A directory run (command line, harness.distributed)"}


def kind_of(row) -> str:
    """A case's kind of measurement: its record's `kind`, or for files written before that field, the kind its
    stage and variant imply (harness.results.kind_of)."""
    kind = row.get("kind")
    return kind if isinstance(kind, str) and kind else results_kind_of(row["stage"], row.get("variant") or "")


def whole_table(table: pd.DataFrame) -> pd.DataFrame:
    """Whole-pipeline cases, one row each with its kind of measurement (the first screen's figures come from
    these rows): images/s and median time, fastest first within a kind."""
    rows = table[table["stage"].isin(WHOLE) & table["images_per_s"].notna()].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["kind"] = rows.apply(kind_of, axis=1).map(KINDS)
    rows["median_ms"] = rows["median"] * 1e3
    columns = ["kind", "engine", "variant", "precision", "batch_size", "model_height", "source", "images_per_s",
               "median_ms", "label", "hardware"]
    return rows[columns].sort_values(["kind", "images_per_s"], ascending=[True, False]).reset_index(drop=True)


def stage_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per-stage cases: median ms and images/s, one row per case."""
    rows = table[table["stage"].isin(STAGES)].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["median_ms"] = rows["median"] * 1e3
    columns = ["label", "hardware", *CASE_KEY, "median_ms", "images_per_s", "noise_rel_iqr"]
    rows = rows[columns].dropna(axis=1, how="all")  # world_size and rank exist only for multi-process runs
    return rows.sort_values(["stage", "engine", "batch_size"]).reset_index(drop=True)


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
    rows = table[(table["stage"] == "end_to_end") & (table["variant"] == "") & table["stage_ms"].notna()]
    if rows.empty:
        return pd.DataFrame()
    stages = pd.DataFrame(list(rows["stage_ms"]), index=rows.index).reindex(columns=list(STAGES))
    stages = stages.dropna(axis=1, how="all")  # the preprocessing a run did not use
    return pd.concat([rows[["label", "hardware", "engine", "precision", "batch_size", "model_height",
                            "source"]], stages],
                     axis=1)


def _gpu_seconds(rows: pd.DataFrame) -> pd.Series:
    return gpu_seconds(rows["cuda_event_median_ms"], rows["median"])


def copy_bandwidth(table: pd.DataFrame) -> dict:
    """Device-to-device copy bandwidth (bytes read + written per second) per hardware, from d2d_copy cases."""
    rows = table[table["stage"] == "d2d_copy"]
    return {hw: float((g["bytes_moved"] / _gpu_seconds(g)).median()) for hw, g in rows.groupby("hardware")}


def floor_fractions(table: pd.DataFrame) -> pd.DataFrame:
    """Pre- and post-processing chains against their memory-bandwidth floor: floor time (bytes that must be
    read and written / copy bandwidth of the same GPU) over measured time; 1.0 would be copy speed."""
    rows = table[table["stage"].isin(["preprocess", "postprocess"]) & table["floor_bytes"].notna()].copy()
    bandwidth = copy_bandwidth(table)
    rows = rows[rows["hardware"].isin(bandwidth)]
    if rows.empty:
        return pd.DataFrame()
    rows["gpu_ms"] = _gpu_seconds(rows) * 1e3
    rows["floor_ms"] = rows["floor_bytes"] / rows["hardware"].map(bandwidth) * 1e3
    rows["fraction_of_floor"] = rows["floor_ms"] / rows["gpu_ms"]
    columns = ["label", "hardware", "stage", "engine", "variant", "batch_size", "model_height", "source", "gpu_ms",
               "floor_ms", "fraction_of_floor"]
    order = ["stage", "engine", "variant", "source", "model_height", "batch_size"]
    return rows[columns].sort_values(order).reset_index(drop=True)


def peak_fractions(table: pd.DataFrame) -> pd.DataFrame:
    """Inference against the GPU's published peak for its precision (harness.report.peaks)."""
    from harness.report.peaks import peak_tflops

    rows = table[(table["stage"] == "inference") & table["flops"].notna() & (table["device"] == "cuda")].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["tflops_per_s"] = rows["flops"] / _gpu_seconds(rows) / 1e12
    rows["peak_tflops"] = [peak_tflops(h, p) for h, p in zip(rows["hardware"], rows["precision"])]
    rows = rows[rows["peak_tflops"].notna()]
    rows["fraction_of_peak"] = rows["tflops_per_s"] / rows["peak_tflops"]
    columns = ["label", "hardware", "engine", "variant", "precision", "batch_size", "model_height", "images_per_s",
               "tflops_per_s", "peak_tflops", "fraction_of_peak"]
    order = ["engine", "precision", "variant", "model_height", "batch_size"]
    return rows[columns].sort_values(order).reset_index(drop=True)


def percent_interval(interval) -> str | None:
    """A stored [low, high] fraction as text ("0.2%..0.4%"); None for files without paired rounds."""
    if not isinstance(interval, (list, tuple, np.ndarray)) or len(interval) != 2:
        return None
    return f"{interval[0]:.1%}..{interval[1]:.1%}"


def end_to_end_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per end-to-end case: the share of everything but inference, what the stage events left unattributed,
    and what the instrumentation costs (instrumented / uninstrumented time - 1, same run: the median over
    paired rounds, benchkit.paired_breakdown)."""
    rows = table[table["stage"] == "end_to_end"]
    timed = rows[(rows["variant"] == "") & rows["stage_ms"].notna()].copy()
    if timed.empty:
        return pd.DataFrame()
    timed["inference_ms"] = [s.get("inference", float("nan")) for s in timed["stage_ms"]]
    timed["non_inference_share"] = 1 - timed["inference_ms"] / timed["end_to_end_ms"]
    key = [k for k in CASE_KEY if k != "variant"]
    bare = rows[rows["variant"] == "uninstrumented"]
    bare = bare.assign(paired=bare.get("instrumentation_cost", np.nan),
                       cost_interval=bare.get("instrumentation_cost_interval", None))
    bare = bare[[*key, "file", "median", "paired", "cost_interval"]].rename(columns={"median": "bare"})
    timed = timed.merge(bare, on=[*key, "file"], how="left")
    # the paired rounds' median where the file has them; files before them: a ratio of two medians
    timed["instrumentation_overhead"] = timed["paired"].astype(float).fillna(timed["median"] / timed["bare"] - 1)
    timed["unattributed_95"] = timed.get("unattributed_fraction_interval", pd.Series(None, index=timed.index)).map(
        percent_interval)
    timed["instrumentation_95"] = timed["cost_interval"].map(percent_interval)
    columns = ["label", "hardware", "engine", "precision", "batch_size", "model_height", "source", "end_to_end_ms",
               "inference_ms", "non_inference_share", "unattributed_fraction", "unattributed_95",
               "instrumentation_overhead", "instrumentation_95"]
    order = ["engine", "precision", "source", "model_height", "batch_size"]
    return timed[columns].sort_values(order).reset_index(drop=True)


def sample_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """The sample's workload: this pipeline's images/s against CV-CUDA's sample on the same GPU."""
    rows = table[(table["stage"] == "sample_workload") & table["sample_images_per_s"].notna()].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["speedup_over_sample"] = rows["images_per_s"] / rows["sample_images_per_s"]
    columns = ["label", "hardware", "variant", "precision", "batch_size", "model_height", "images_per_s",
               "sample_images_per_s", "speedup_over_sample"]
    return rows[columns].sort_values(["batch_size", "model_height", "label"]).reset_index(drop=True)


def scaling(table: pd.DataFrame) -> pd.DataFrame:
    """harness.distributed's whole-run entries: aggregate and per-rank images/s, scaling efficiency."""
    rows = table[(table["stage"] == "distributed_throughput") & (table["rank"] == "all")].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["slowest_rank_images_per_s"] = [min(r) for r in rows["per_rank_images_per_s"]]
    rows["fastest_rank_images_per_s"] = [max(r) for r in rows["per_rank_images_per_s"]]
    columns = ["hardware", "engine", "variant", "precision", "batch_size", "model_height", "world_size",
               "procs_per_gpu",
               "hosts", "images", "median", "images_per_s", "slowest_rank_images_per_s", "fastest_rank_images_per_s",
               "scaling_efficiency", "label"]
    rows["hosts"] = [len(h) for h in rows["hosts"]]
    return rows[columns].rename(columns={"median": "seconds"}).sort_values(
        ["engine", "variant", "precision", "world_size"]).reset_index(drop=True)


LANE_PLOTS = 4  # lane timelines in one report at most: each is a figure the width of the page


def lane_cases(table: pd.DataFrame, limit: int = LANE_PLOTS) -> pd.DataFrame:
    """Whole-run cases with a recorded timeline (`lane_spans`, harness.runner) for the report's lane timelines.
    One per GPU, engine, executor, batch size, model side and source size, so that a case's overlapped and
    sequential runs both show and repeated files or precisions do not crowd out the rest: of each, the run
    with the most batches (the first file's at a tie); then the `limit` with the most batches, in key order.
    Files from before timelines were recorded have none: an empty table."""
    if "lane_spans" not in table:
        return pd.DataFrame()
    rows = table[table["lane_spans"].map(lambda spans: isinstance(spans, list) and len(spans) > 0)].copy()
    if rows.empty:
        return pd.DataFrame()
    rows["batches"] = rows["lane_spans"].map(lambda spans: max(span[1] for span in spans))
    key = ["hardware", "engine", "executor", "batch_size", "model_height", "source"]
    rows = rows.sort_values("batches", ascending=False, kind="stable").drop_duplicates(key).head(limit)
    columns = ["label", *key[:2], "stage", "variant", "precision", *key[2:], "batches", "lane_spans"]
    return rows[columns].sort_values(key, kind="stable").reset_index(drop=True)
