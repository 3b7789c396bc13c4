"""The report: findings first, the environment of each file, plots, then the tables (long ones folded), as
Markdown and one self-contained HTML page, with the PNG plots and every table as CSV beside them."""

from __future__ import annotations

import base64
import html as htmlmod
import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from harness import LANES  # noqa: E402
from harness.files import write_atomic  # noqa: E402
from harness.report.findings import findings  # noqa: E402
from harness.report.compare import SHOWN  # noqa: E402
from harness.report.gpus import comparisons  # noqa: E402
from harness.report.load import environment  # noqa: E402
from harness.report.present import DASH, KELLY, LANE_COLORS, STAGE_COLORS, arranged, readable  # noqa: E402
from harness.report.tables import (breakdown, copy_bandwidth, end_to_end_summary, floor_fractions,  # noqa: E402
                                   lane_cases, peak_fractions, scaling, sample_comparison, speedups, stage_table,
                                   whole_table)

FOLD_ROWS = 15  # tables longer than this are folded away in the page (and whole in their CSV)
CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{padding:3px 5px;border-bottom:1px solid #e4e4e4;text-align:right}
th{background:#f4f4f4;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
.scroll{overflow-x:auto;max-width:100%}img{max-width:100%;height:auto;display:block;margin:.8em 0}
details summary{cursor:pointer;color:#0057a0;margin:.4em 0}.findings li{margin:.25em 0}
h4{margin:.9em 0 .2em}.findings{margin-top:.2em}.env,.note{color:#444;font-size:.92em}
"""


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _short(engine: str) -> str:
    """ops+decoder+backend:model -> ops+decoder (the model is in the panel or legend elsewhere)."""
    return engine.split("+pytorch")[0].split(":")[0]


def plot_throughput(table: pd.DataFrame) -> bytes | None:
    """Small multiples: one panel per GPU, precision and source size; one line per engine and model side;
    batch sizes as the ticks; IQR bars (the times' quartiles as images/s); the legend under the panels."""
    rows = table[table["stage"].isin(["end_to_end", "throughput"]) & (table["variant"] == "")].copy()
    if rows.empty:
        return None
    models = rows["engine"].map(lambda e: e.split(":")[-1] if ":" in e else "")
    rows["series"] = rows["stage"].str.replace("_", " ") + ", " + rows["engine"].map(_short) + ", " + \
        rows["model_height"].map(lambda s: f"{s:g} px") + (", " + models if models.nunique() > 1 else "")
    panels = list(rows.groupby(["hardware", "precision", "source"]))
    series = sorted(rows["series"].unique())
    palette = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    colors = {name: palette[index % len(palette)] for index, name in enumerate(series)}
    columns = min(len(panels), 2)
    lines = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(6 * columns, 3.6 * lines), squeeze=False, sharey=False)
    for axis, ((hardware, precision, source), group) in zip(axes.flat, panels):
        for name, points in group.groupby("series"):
            points = points.groupby("batch_size")[["images_per_s", "median", "q1", "q3"]].median().sort_index()
            rate = points["images_per_s"]
            low, high = rate * points["median"] / points["q3"], rate * points["median"] / points["q1"]
            axis.errorbar(points.index, rate, yerr=[rate - low, high - rate], marker="o", markersize=4, capsize=3,
                          color=colors[name], label=name)
        batches = sorted(group["batch_size"].unique())
        axis.set_xscale("log", base=2)
        axis.xaxis.set_major_locator(FixedLocator(batches))
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xticklabels([f"{b:g}" for b in batches])
        axis.set(xlabel="batch size", ylabel="images/s", title=f"{hardware}\n{precision}, from {source}")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    handles = [plt.Line2D([], [], color=colors[s], marker="o") for s in series]
    figure.legend(handles, series, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=min(3, len(series)), fontsize=8,
                  frameon=False)
    figure.suptitle("End-to-end throughput against batch size (median, bars: interquartile range)", y=1.0)
    figure.tight_layout()
    return png(figure)


def plot_breakdown(table: pd.DataFrame) -> bytes | None:
    """Small multiples (one panel per GPU, model side and source size) of stacked bars, one bar per case
    (repeated runs of a case: their median), each stage in its own colour, the legend beside the panels."""
    parts = breakdown(table)
    if parts.empty:
        return None
    key = ["hardware", "engine", "precision", "batch_size", "model_height", "source"]
    stages = [c for c in parts.columns if c in STAGE_COLORS]
    parts = parts.groupby(key, dropna=False)[stages].median().reset_index()
    panels = list(parts.groupby(["hardware", "model_height", "source"]))
    columns = min(len(panels), 2)
    lines = (len(panels) + columns - 1) // columns
    tallest = max(len(group) for _, group in panels)
    figure, axes = plt.subplots(lines, columns, figsize=(7 * columns, (0.3 * tallest + 1.2) * lines), squeeze=False)
    for axis, ((hardware, side, source), group) in zip(axes.flat, panels):
        group = group.sort_values(["precision", "engine", "batch_size"])
        labels = [f"{_short(r.engine)} {r.precision} b{r.batch_size:g}" for r in group.itertuples()]
        left = np.zeros(len(group))
        for stage in stages:
            values = group[stage].fillna(0.0).to_numpy()
            axis.barh(labels, values, left=left, color=STAGE_COLORS[stage])
            left += values
        axis.invert_yaxis()
        axis.tick_params(axis="y", labelsize=8)
        axis.set(xlabel="ms per batch", title=f"{hardware}: {side:g} px from {source}")
        axis.grid(axis="x", alpha=0.3)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=STAGE_COLORS[s]) for s in stages]
    figure.legend(handles, stages, loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize=9, frameon=False,
                  title="stage")
    figure.suptitle("Where the time goes: end to end, per stage (median of repeated runs)")
    figure.tight_layout()
    return png(figure)


def plot_speedups(table: pd.DataFrame) -> bytes | None:
    gains = speedups(table)
    if gains.empty:
        return None
    median = gains.groupby(["stage", "baseline"])["speedup"].median().unstack()
    figure, axis = plt.subplots(figsize=(9, 4))
    width = 0.8 / median.shape[1]
    for index, (baseline, color) in enumerate(zip(median.columns, ("#0067A5", "#F38400", "#008856"))):
        values = median[baseline].to_numpy()
        x = np.arange(len(median)) + (index - (median.shape[1] - 1) / 2) * width
        axis.bar(x, values - 1, bottom=1, width=width, color=color, label=baseline)  # from 1: above it, faster
    axis.set_xticks(np.arange(len(median)), median.index, rotation=90)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set(yscale="log", xlabel="", ylabel="median speed-up (x, log)",
             title="CV-CUDA against the other engines, per stage: baseline time / CV-CUDA time (above 1: faster)")
    axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    axis.legend(title="baseline", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    axis.grid(axis="y", alpha=0.3)
    return png(figure)


def plot_side_by_side(table: pd.DataFrame, label_a: str, label_b: str, most: int = 40) -> bytes | None:
    """One bar per case from 1 to b time / a time on a log scale symmetric about 1, ticks on both sides (the
    `most` cases that differ most when there are more): right of 1, b is slower; left, faster."""
    if table.empty:
        return None
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


def lane_busy(spans) -> dict[str, float]:
    """Each lane's busy seconds over a run's timeline: per batch the longer of its host and GPU span, as
    harness.runner's lane_seconds counts them."""
    longest: dict[tuple[str, int], float] = {}
    for lane, batch, stage, _, start, end in spans:
        if stage is None:
            longest[lane, batch] = max(longest.get((lane, batch), 0.0), end - start)
    busy: dict[str, float] = {}
    for (lane, _), seconds in longest.items():
        busy[lane] = busy.get(lane, 0.0) + seconds
    return busy


def plot_lanes(spans, title: str) -> bytes | None:
    """A Gantt chart of one whole run (its `lane_spans`): a row per lane, read on top, and for a GPU lane a
    host row (launching) and a GPU row (CUDA events) under it; one bar per batch, odd batches solid and even
    ones light, so that a gap in a row is a stall and bars stacked in time are batches overlapping; the row
    labels give each row's busy share of the run, the title the binding lane (the most busy time)."""
    rows: dict[tuple[str, str], list] = {}
    for lane, batch, stage, clock, start, end in spans:
        if stage is None:
            rows.setdefault((lane, clock), []).append((batch, start, end))
    if not rows:
        return None
    order = {lane: index for index, lane in enumerate(LANES)}
    keys = sorted(rows, key=lambda k: (order.get(k[0], len(LANES)), k[0], k[1] != "host"))
    wall = max(end for bars in rows.values() for _, _, end in bars) or 1.0
    batches = max(batch for bars in rows.values() for batch, _, _ in bars)
    dense = batches > 60  # white edges and hatching would hide the thin bars
    figure, axis = plt.subplots(figsize=(11, 0.42 * len(keys) + 1.6))
    labels = []
    for y, (lane, clock) in enumerate(keys):
        color = LANE_COLORS.get(lane, KELLY[6])
        bars = rows[lane, clock]
        for parity, alpha in ((1, 1.0), (0, 0.45)):
            spans_of = [(start, end - start) for batch, start, end in bars if batch % 2 == parity]
            axis.broken_barh(spans_of, (y - 0.36, 0.72), facecolors=color, alpha=alpha, edgecolor="white",
                             linewidth=0 if dense else 0.4, hatch="///" if clock == "cuda" and not dense else None)
        if batches <= 40:  # numbers fit inside the bars
            for batch, start, end in bars:
                if end - start > wall / 60:
                    axis.text((start + end) / 2, y, str(batch), ha="center", va="center", fontsize=7,
                              color="white" if batch % 2 else "black")
        both = (lane, "host") in rows and (lane, "cuda") in rows
        name = f"{lane} ({'GPU' if clock == 'cuda' else 'host'})" if both or clock == "cuda" else lane
        labels.append(f"{name}  {sum(end - start for _, start, end in bars) / wall:.0%}")
    busy = lane_busy(spans)
    binding = max(busy, key=busy.get)
    axis.set_yticks(range(len(keys)), labels)
    axis.invert_yaxis()
    axis.set_xlim(0, wall * 1.01)
    gpu = any(clock == "cuda" for _, clock in keys)
    clocks = "host clock; GPU rows: CUDA events, origins within microseconds" if gpu else "host clock"
    axis.set(xlabel=f"seconds since the run's start ({clocks})",
             title=f"{title}\nbinding lane: {binding}, busy {busy[binding]:.3g} s of the {wall:.3g} s run "
                   f"({busy[binding] / wall:.0%}); {batches} batches")
    axis.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color="#848482", alpha=a) for a in (1.0, 0.45)]
    names = ["odd batch", "even batch"]
    if gpu and not dense:
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="#848482", edgecolor="white", hatch="///"))
        names.append("CUDA events")
    axis.legend(handles, names, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    return png(figure)


def lane_caption(case) -> str:
    """A timeline's case in words: file, stage, engine, precision, batch, sizes, executor."""
    def given(value) -> bool:
        return value is not None and value != "" and not pd.isna(value)

    words = [" ".join(str(v) for v in (case.stage, _short(case.engine), case.precision) if given(v))]
    if given(case.batch_size):
        words.append(f"batch {case.batch_size:g}")
    if given(case.model_height):
        words.append(f"{case.model_height:g} px" + (f" from {case.source}" if given(case.source) else ""))
    return f"{case.label}: " + ", ".join([*words, f"{case.executor} executor"])


def lane_timelines(table: pd.DataFrame) -> list[tuple[str, str, bytes]]:
    """(name, caption, PNG) of the lane timelines the report shows (tables.lane_cases picks them)."""
    out = []
    for index, case in enumerate(lane_cases(table).itertuples(), start=1):
        caption = lane_caption(case)
        data = plot_lanes(case.lane_spans, caption)
        if data is not None:
            out.append((f"lanes-{index}", caption, data))
    return out


def sections(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The report's tables, in order, with a file column where rows can come from several files."""
    bandwidth = pd.DataFrame([{"hardware": h, "copy_GB_per_s": b / 1e9} for h, b in copy_bandwidth(table).items()])
    return [("Whole pipelines: images/s of each kind of measurement", whole_table(table)),
            ("End to end: non-inference share, unattributed time, instrumentation cost", end_to_end_summary(table)),
            ("The sample's workload against CV-CUDA's sample", sample_comparison(table)),
            ("Several processes (harness.distributed): aggregate images/s and scaling efficiency", scaling(table)),
            ("Device-to-device copy bandwidth (read + write)", bandwidth),
            ("Pre- and post-processing against the memory-bandwidth floor", floor_fractions(table)),
            ("Inference against the GPU's peak", peak_fractions(table)),
            ("Speed-ups of CV-CUDA (baseline time / CV-CUDA time)", speedups(table)),
            ("End-to-end breakdown (ms per batch)", breakdown(table)), ("Per-stage cases", stage_table(table))]


def slug(title: str) -> str:
    """A table's file name: its title up to a colon or parenthesis, lower case, words joined by dashes."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", re.split(r"[:(]", title.lower())[0]).strip("-")[:60]


def _csv(frame: pd.DataFrame) -> bytes:
    """Every column; dicts and lists as JSON so that a spreadsheet keeps them in one cell."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, (dict, list))).any():
            out[column] = out[column].map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    return out.to_csv(index=False).encode()


BREAKS = re.compile(r"([/+_:-])")  # where a long name (never a number) may wrap: after its separators


def html_table(frame: pd.DataFrame, index: bool = False) -> str:
    """The table as HTML, its names free to wrap after their separators so that it fits the window."""
    def breakable(text) -> str:
        text = htmlmod.escape(str(text))
        return BREAKS.sub(r"\1<wbr>", text) if re.search("[a-zA-Z]", text) else text

    cells = readable(frame).map(breakable)
    cells.columns = [htmlmod.escape(str(c)) for c in cells.columns]
    cells.index = [htmlmod.escape(str(i)) for i in cells.index]
    return "<div class='scroll'>" + cells.to_html(index=index, border=0, escape=False) + "</div>"


def table_text(frame: pd.DataFrame) -> tuple[str, str, pd.DataFrame]:
    """(Markdown note, HTML note, the table to show): key columns first, and the columns that hold one value on
    every row said once in the note instead."""
    shown, constant = arranged(frame)
    if not constant:
        return "", "", shown
    note = "Every row: " + "; ".join(f"{name} {value}" for name, value in constant.items()) + "."
    return note, f"<p class='note'>{htmlmod.escape(note)}</p>", shown


def environment_blocks(env: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The environment as Markdown and HTML: what every file shares as one list of fields, then a row per file
    with the fields that differ (a column per file would run off the window with a few files)."""
    shown = readable(env.set_index("file")).replace(DASH, np.nan).dropna(axis=1, how="all").fillna(DASH)
    same = [c for c in shown.columns if shown[c].nunique() == 1]
    differ = shown.drop(columns=same)
    shared = pd.DataFrame({"value": [shown[c].iloc[0] for c in same]}, index=same)
    md, html = [], []
    if same:
        title = "Every file" if len(shown) > 1 else shown.index[0]
        md += [f"{title}:", "", shared.to_markdown(headers=["", "value"]), ""]
        html += [f"<p>{htmlmod.escape(title)}:</p>", html_table(shared, index=True)]
    if not differ.empty:
        md += ["Per file, what differs:", "", differ.to_markdown(), ""]
        html += ["<p>Per file, what differs:</p>", html_table(differ.rename_axis(None), index=True)]
    return md, html


def page(title: str, blocks: list[str]) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{htmlmod.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width'><style>{CSS}</style></head><body>"
            + "\n".join(blocks) + "</body></html>")


def inline(markdown_text: str) -> str:
    """**bold** of the findings' sentences, the rest escaped."""
    parts = htmlmod.escape(markdown_text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def environment_line(env: pd.DataFrame) -> str:
    """One sentence of what the files ran on, for the top of the page (the whole table is further down)."""
    def values(column, rows=env):
        found = sorted({str(v) for v in rows[column].dropna()}) if column in rows else []
        return "/".join(found) or "?"

    commits = sorted({c.split(" ")[0] for c in env["commit"].dropna()})
    gpu = env["GPU"].notna() if "GPU" in env else pd.Series(False, index=env.index)
    parts = []
    if gpu.any():
        parts.append(f"{int(gpu.sum())} file(s) from {values('GPU')}: driver {values('driver')}, CUDA "
                     f"{values('CUDA')}, cuDNN {values('cuDNN')}, CV-CUDA {values('CV-CUDA')}, nvImageCodec "
                     f"{values('nvImageCodec')}")
    if not gpu.all():
        cpus = env.loc[~gpu]
        parts.append(f"{int((~gpu).sum())} file(s) from the CPU, no GPU ({values('CPU', cpus)})")
    return (f"{'; '.join(parts)}; torch {values('torch')}, Python {values('Python')}; commits "
            f"{', '.join(commits) or 'unknown'}; throttled: {values('throttled')}.")


def write_report(table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """report.md, report.html (plots embedded), the PNG plots and tables/*.csv (cases.csv: every case with
    every field); returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tables").mkdir(exist_ok=True)
    written: dict[str, Path] = {}
    plots = {"throughput": plot_throughput(table), "breakdown": plot_breakdown(table), "speedups": plot_speedups(table)}
    for name, data in plots.items():
        if data is not None:
            write_atomic(folder / f"{name}.png", data)
            written[name] = folder / f"{name}.png"
    files = sorted(table["file"].unique())
    env = environment(files)
    summary = findings(table)
    ran_on = environment_line(env)
    compared = comparisons(table)
    md = ["# Benchmark report", "", ran_on, "", "## Findings", ""]
    body = ["<h1>Benchmark report</h1>", f"<p class='env'>{htmlmod.escape(ran_on)}</p>",
            "<h2 id='findings'>Findings</h2>"]
    against = {c["gpus"]: [] for c in compared}
    for c in compared:  # two GPU models: the answer, first; two runs of one: after what the runs say
        against[c["gpus"]].append((f"b: {c['b']} against a: {c['a']}",
                                   [*([("Warnings", [f"**{w}.**" for w in c["warnings"]])] if c["warnings"] else []),
                                    *c["topics"]]))
    for gpu, topics in [*against.get(True, []), *summary, *against.get(False, [])]:
        md += [f"### {gpu}", ""]
        body.append(f"<h3>{htmlmod.escape(gpu)}</h3>")
        for topic, sentences in topics:
            md += [f"**{topic}**", "", *[f"- {s}" for s in sentences], ""]
            body += [f"<h4>{htmlmod.escape(topic)}</h4><ul class='findings'>",
                     *[f"<li>{inline(s)}</li>" for s in sentences], "</ul>"]
    env_md, env_html = environment_blocks(env)
    md += ["## Environment", "", *env_md]
    body += ["<h2 id='environment'>Environment</h2>", *env_html]
    md.append("## Plots\n")
    body.append("<h2 id='plots'>Plots</h2>")
    for name in (n for n in plots if n in written):
        md += [f"![{name}]({name}.png)", ""]
        body.append(f"<img alt='{name}' src='data:image/png;base64,{base64.b64encode(plots[name]).decode()}'/>")
    timelines = lane_timelines(table)
    if timelines:
        clocks = "on the host clock and, for GPU lanes, on CUDA events" if "GPU" in env and env["GPU"].notna().any() \
            else "on the host clock"
        about = (f"Each lane's batches over one whole run (the last timed run of the case), {clocks}: gaps are "
                 "stalls, bars at the same time are batches overlapping.")
        md += ["### Lane timelines", "", about, ""]
        body += ["<h3 id='lanes'>Lane timelines</h3>", f"<p>{htmlmod.escape(about)}</p>"]
    for name, caption, data in timelines:
        write_atomic(folder / f"{name}.png", data)
        written[name] = folder / f"{name}.png"
        md += [f"![{caption.replace('[', '(').replace(']', ')')}]({name}.png)", ""]
        body.append(f"<img alt='{htmlmod.escape(caption, quote=True)}' "
                    f"src='data:image/png;base64,{base64.b64encode(data).decode()}'/>")
    cases = table.drop(columns=["samples", "lane_spans"], errors="ignore")  # the timelines are in the plots
    write_atomic(folder / "tables" / "cases.csv", _csv(cases))
    written["cases"] = folder / "tables" / "cases.csv"
    ratio_tables = [(f"Per case {index}: b {c['b']} against a {c['a']} (b time / a time, 95% interval)",
                     c["table"][[SHOWN[0], "resource", *SHOWN[1:]]]) for index, c in enumerate(compared, start=1)]
    for title, frame in [*ratio_tables, *sections(table)]:
        if frame.empty:
            continue
        csv = folder / "tables" / f"{slug(title)}.csv"
        write_atomic(csv, _csv(frame))
        link = f"tables/{csv.name}"
        md += [f"## {title}", "", f"{len(frame)} rows; every column in [{link}]({link}).", ""]
        body += [f"<h2>{htmlmod.escape(title)}</h2>", f"<p>{len(frame)} rows; every column in "
                 f"<a href='{link}'>{link}</a>.</p>"]
        note_md, note_html, shown = table_text(frame)
        md += [note_md, ""] if note_md else []
        body += [note_html] if note_html else []
        if len(frame) > FOLD_ROWS:
            md += [f"<details><summary>{len(frame)} rows</summary>", "", readable(shown).to_markdown(index=False),
                   "", "</details>", ""]
            body.append(f"<details><summary>Show the {len(frame)} rows</summary>{html_table(shown)}</details>")
        else:
            md += [readable(shown).to_markdown(index=False), ""]
            body.append(html_table(shown))
    md += ["", f"Every case with every field: [tables/cases.csv](tables/cases.csv) ({len(cases)} rows)."]
    body.append(f"<p>Every case with every field: <a href='tables/cases.csv'>tables/cases.csv</a> "
                f"({len(cases)} rows).</p>")
    write_atomic(folder / "report.md", "\n".join(md).encode())
    write_atomic(folder / "report.html", page("Benchmark report", body).encode())
    written.update(markdown=folder / "report.md", html=folder / "report.html")
    return written
