"""The report: Markdown and a self-contained HTML page with PNG plots, from one or many benchmark files."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness import STAGES  # noqa: E402
from harness.inputs import write_atomic  # noqa: E402
from harness.report.tables import (breakdown, copy_bandwidth, end_to_end_summary, floor_fractions,  # noqa: E402
                                   peak_fractions, scaling, sample_comparison, speedups, stage_table)


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def plot_throughput(table: pd.DataFrame) -> bytes | None:
    rows = table[(table["stage"] == "end_to_end") & (table["variant"] == "")]
    if rows.empty:
        return None
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, group in rows.groupby(["engine", "precision", "model_height", "source"]):
        group = group.sort_values("batch_size")
        axis.plot(group["batch_size"], group["images_per_s"], marker="o", label=" ".join(map(str, label)))
    axis.set(xscale="log", xlabel="batch size", ylabel="images/s (end to end)", title="Throughput against batch size")
    axis.legend(fontsize=7)
    return png(figure)


def plot_breakdown(table: pd.DataFrame) -> bytes | None:
    parts = breakdown(table)
    if parts.empty:
        return None
    labels = [f"{r.engine.split('+')[0]} {r.precision} b{r.batch_size} m{r.model_height} {r.source}" for r in parts.itertuples()]
    figure, axis = plt.subplots(figsize=(8, 0.5 * len(parts) + 1.5))
    left = pd.Series(0.0, index=parts.index)
    for stage in (s for s in STAGES if s in parts):  # a run has the staged or the fused preprocessing
        axis.barh(labels, parts[stage].fillna(0.0), left=left, label=stage)
        left += parts[stage].fillna(0.0)
    axis.set(xlabel="ms per batch", title="Where the time goes (end to end, per stage)")
    axis.legend(fontsize=7, ncol=4)
    return png(figure)


def plot_speedups(table: pd.DataFrame) -> bytes | None:
    gains = speedups(table)
    if gains.empty:
        return None
    median = gains.groupby(["stage", "baseline"])["speedup"].median().unstack()
    figure, axis = plt.subplots(figsize=(7, 4))
    median.plot.bar(ax=axis)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set(yscale="log", ylabel="median speed-up (baseline time / cvcuda time, log)",
             title="CV-CUDA against the other engines, per stage")
    return png(figure)


def write_report(table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """report.md, report.html (PNG plots embedded) and the PNG files; returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots = {"throughput": plot_throughput(table), "breakdown": plot_breakdown(table), "speedups": plot_speedups(table)}
    for name, data in plots.items():
        if data is not None:
            write_atomic(folder / f"{name}.png", data)
            written[name] = folder / f"{name}.png"
    stages, gains = stage_table(table), speedups(table)
    hardware = ", ".join(sorted(map(str, table["hardware"].dropna().unique()))) or "unknown"
    bandwidth = pd.DataFrame([{"hardware": h, "copy_GB_per_s": b / 1e9} for h, b in copy_bandwidth(table).items()])
    sections = [("End to end: non-inference share, unattributed time, instrumentation cost", end_to_end_summary(table)),
                ("The sample's workload against CV-CUDA's sample", sample_comparison(table)),
                ("Several processes (harness.distributed): aggregate images/s and scaling efficiency", scaling(table)),
                ("Device-to-device copy bandwidth (read + write)", bandwidth),
                ("Pre- and post-processing against the memory-bandwidth floor", floor_fractions(table)),
                ("Inference against the GPU's peak", peak_fractions(table)),
                ("Speed-ups of CV-CUDA (baseline time / CV-CUDA time)", gains),
                ("End-to-end breakdown (ms)", breakdown(table)), ("Per-stage cases", stages)]
    markdown = [f"# Benchmark report", "", f"Hardware: {hardware}. Files: {', '.join(sorted(table['file'].unique()))}.", ""]
    html = [f"<!doctype html><html><head><meta charset='utf-8'><title>Benchmark report</title></head><body>",
            f"<h1>Benchmark report</h1><p>Hardware: {hardware}</p>"]
    for name in written:
        markdown += [f"![{name}]({name}.png)", ""]
        encoded = base64.b64encode(plots[name]).decode()
        html.append(f"<img alt='{name}' src='data:image/png;base64,{encoded}'/>")
    for title, frame in sections:
        if frame.empty:
            continue
        markdown += [f"## {title}", "", frame.to_markdown(index=False, floatfmt=".4g"), ""]
        html += [f"<h2>{title}</h2>", frame.to_html(index=False, float_format=lambda v: f"{v:.4g}")]
    html.append("</body></html>")
    write_atomic(folder / "report.md", "\n".join(markdown).encode())
    write_atomic(folder / "report.html", "\n".join(html).encode())
    written.update(markdown=folder / "report.md", html=folder / "report.html")
    return written
