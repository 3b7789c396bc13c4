"""History across runs, as asv shows its users: each case's median against the runs' commits and dates on
one GPU, the steps in it found by a change-point method (ruptures' PELT), and the commits at which each case
got slower or faster.

    python -m harness.report history RUNS... -o DIR [--gpu NAME] [--threshold 0.05]

RUNS are benchmark files or folders of them (searched recursively: a folder of recorded runs, or
pytest-benchmark's own storage, `.benchmarks/`); other JSON files in a folder are listed and left out.
A run's commit is the harness's recorded one (machine_info.harness.git_commit), else pytest-benchmark's;
runs are ordered by the time they ran.

Steps: PELT (Killick et al. 2012) on the log of the medians, with the l2 cost and a penalty of
2 σ² log n (BIC-like), σ being the larger of the run-to-run noise (a robust MAD of successive differences)
and a run's own uncertainty about its median (from its IQR and sample count), never below a quarter of the
threshold; a step is kept when the medians of the runs on either side differ by more than --threshold and
by more than z standard errors of that difference (σ √(1/n₁ + 1/n₂)), z Bonferroni-corrected over the cases
so that noise alone gives a reported step in fewer than 1% of histories (about 2.6 for one case, 3.9 for
100).  A single run off its neighbours, or the oldest run alone, is an excursion, not a step: the plateaus
on either side are compared instead, the step placed at the first run after the earlier one; the newest run
alone counts (confirm it with another run).  Series with fewer than 5 samples a run (older files' 3 rounds of
whole runs) are left out of the search: their medians cannot show a step.

A series is one case measured one way: one clock (harness.report.clock_of: CUDA events since 79f51be, the host
clock before), one sample unit (`sample_unit`: a round, a whole run, or a batch, as the files of ea35c0a to
79f51be kept for whole runs: their medians are a batch's time, not a run's; "round" in files from before the
field) and one GPU card (its UUID: two H100s of one pool differed by up to 1.8x on one commit).  A change of
method or card starts another series, never a step.  A run found twice (one datetime, commit, machine and
process count: a copied file, or pytest-benchmark's saved copy of a --benchmark-json run) counts once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import ReportError, case_name, clock_of
from harness.report.gate import unit
from harness.report.load import commit_of, load_file, machine_of, read_json

SHOWN = 12  # series plotted: those with steps first, the largest first
MIN_SAMPLES = 5  # per run: fewer (old files kept 3 rounds of whole runs) cannot tell a step from the noise
ALPHA = 0.01  # chance, over all the cases together, of one step reported where there is only noise


def run_identity(data: dict) -> tuple:
    """What makes a run one run: pytest-benchmark writes one datetime per session into every file it saves."""
    machine, env = machine_of(data)
    return data.get("datetime"), commit_of(data), machine.get("node"), env.get("gpu_uuid"), env.get("processes")


def benchmark_files(paths) -> tuple[list[tuple[Path, dict]], list[str]]:
    """The benchmark files among `paths` (folders searched recursively), each with its JSON, and what was
    left out and why (a FIFO or an oversized file among them too: read_json); a run found twice is kept at its
    first file."""
    found, left_out, seen = [], [], {}
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"{path}: no such file or folder")
        for candidate in (sorted(path.rglob("*.json")) if path.is_dir() else [path]):
            try:
                data = read_json(candidate)
            except ReportError as error:
                left_out.append(str(error))
                continue
            when = data.get("datetime") if isinstance(data, dict) else None
            if not (isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and data["benchmarks"]):
                left_out.append(f"{candidate}: not a benchmark file with cases")
            elif not isinstance(when, str) or pd.isna(pd.to_datetime(when, utc=True, errors="coerce")):
                left_out.append(f"{candidate}: says not when it ran (no 'datetime'): it has no place in a history")
            elif run_identity(data) in seen:
                left_out.append(f"{candidate}: the same run as {seen[run_identity(data)]} (datetime, commit, "
                                "machine): counted once")
            else:
                seen[run_identity(data)] = candidate
                found.append((candidate, data))
    if not found:
        raise ReportError("no benchmark files among " + ", ".join(map(str, paths)))
    return found, left_out


def series_label(case: str, clock: str, sample_unit: str, uuid) -> str:
    """A case with its method, short: 'case [CUDA events, runs, GPU-622dd461]'."""
    units = {"batch": "batches"}.get(sample_unit, sample_unit + "s")
    card = f", GPU-{str(uuid).removeprefix('GPU-')[:8]}" if isinstance(uuid, str) and uuid else ""
    return f"{case} [{clock}, {units}{card}]"


def history_table(files, gpu: str | None = None) -> pd.DataFrame:
    """One row per case and run (`files`: benchmark_files' paths and JSON): the series (the case with its clock,
    sample unit and GPU card), those parts, GPU, commit, when, median and quartiles (ms), file."""
    table = pd.concat([load_file(path, data) for path, data in files], ignore_index=True)
    table["commit"] = table["commit"].fillna("unknown").str[:10]
    # each file's own datetime (their formats may differ); benchmark_files kept dated runs only
    table["when"] = table["run"].map(lambda run: pd.to_datetime(run, utc=True, errors="coerce"))
    gpus = sorted(table["hardware"].dropna().unique())
    if gpu is None and len(gpus) > 1:
        raise ReportError(f"the runs are from {len(gpus)} GPUs ({'; '.join(gpus)}): name one with --gpu")
    if gpu is not None:
        if gpu not in gpus:
            raise ReportError(f"no run on {gpu!r}: the runs are from {'; '.join(gpus) or 'unknown hardware'}")
        table = table[table["hardware"] == gpu]
    rows = [r for _, r in table.iterrows()]
    clocks, units = [clock_of(r.get("timer")) for r in rows], [unit(r, "") for r in rows]
    uuids = [u if isinstance(u, str) and u else None for u in table.get("env_gpu_uuid", [None] * len(rows))]
    names = [series_label(case_name(r), c, u, g) for r, c, u, g in zip(rows, clocks, units, uuids)]
    out = pd.DataFrame({"series": names, "case": [case_name(r) for r in rows], "clock": clocks,
                        "sample_unit": units, "gpu_uuid": uuids, "gpu": table["hardware"], "commit": table["commit"],
                        "when": table["when"], "median_ms": table["median"] * 1e3,
                        "q1_ms": table["q1"] * 1e3, "q3_ms": table["q3"] * 1e3, "samples": table["rounds"],
                        "process_se": [process_error(r.get("process_medians_s")) for r in rows],
                        "file": table["label"]})
    return out.sort_values(["series", "when", "file"]).reset_index(drop=True)


def process_error(medians) -> float:
    """A run's standard error of its log median from its processes' own medians (harness.repeats), NaN for a
    run of one process: the rounds of one process cannot show how far the next would land."""
    if not isinstance(medians, (list, tuple)) or len(medians) < 2:
        return float("nan")
    return float(np.std(np.log(medians), ddof=1) / math.sqrt(len(medians)))


def noise(points: pd.DataFrame, threshold: float) -> float:
    """The noise of one case's log medians: the larger of the run-to-run spread (a robust MAD of successive
    differences / √2) and the typical run's own uncertainty about its median (McGill's 1.57 IQR / √n, a 95%
    half-width, as a standard error, or the spread of its processes' medians where it ran in several, whichever
    is larger), never below a quarter of the threshold."""
    y = np.log(points["median_ms"].to_numpy(dtype=float))
    within = (1.57 / 1.96) * (points["q3_ms"] - points["q1_ms"]) / np.sqrt(points["samples"].clip(lower=1)) \
        / points["median_ms"]
    if "process_se" in points:
        within = np.fmax(within, points["process_se"])
    sigma = max(math.log1p(threshold) / 4, float(np.nanmedian(within)) if within.notna().any() else 0.0)
    if len(y) >= 3:
        diffs = np.diff(y)
        sigma = max(sigma, 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2))
    return sigma


def steps(points: pd.DataFrame, threshold: float, z: float) -> list[dict]:
    """The steps of one case's runs (in time order): where, the medians before and after, and which way; a
    step must exceed z standard errors of the difference between the two sides."""
    import ruptures

    y = np.log(points["median_ms"].to_numpy(dtype=float))
    if len(y) < 2:
        return []
    sigma = noise(points, threshold)
    ends = ruptures.Pelt(model="l2", min_size=1, jump=1).fit(y.reshape(-1, 1)).predict(
        pen=2 * sigma ** 2 * math.log(len(y)))
    segments = list(zip([0, *ends], ends))
    # one run off its neighbours is an excursion and the oldest run alone says nothing: both are left out, so
    # that the plateaus around them are compared; the newest run alone is kept (confirm it with another run)
    plateaus = [(a, b) for i, (a, b) in enumerate(segments) if b - a > 1 or i == len(segments) - 1]
    out = []
    for (start, end), (begin, stop) in zip(plateaus, plateaus[1:]):
        before = float(np.exp(np.median(y[start:end])))
        after = float(np.exp(np.median(y[begin:stop])))
        ratio = after / before
        n1, n2 = end - start, stop - begin
        if n1 < 2 or abs(math.log(ratio)) <= max(math.log1p(threshold), z * sigma * math.sqrt(1 / n1 + 1 / n2)):
            continue  # within the threshold, or within the noise of so few runs
        row, previous = points.iloc[end], points.iloc[end - 1]  # the first run after the earlier plateau
        out.append({"series": row["series"], "case": row["case"], "verdict": "slower" if ratio > 1 else "faster",
                    "commit": row["commit"], "after_commit": previous["commit"], "when": row["when"],
                    "before_ms": before, "after_ms": after, "ratio": ratio, "runs_before": n1, "runs_after": n2})
    return out


def all_steps(history: pd.DataFrame, threshold: float) -> pd.DataFrame:
    from scipy.stats import norm

    series = history.groupby("series")
    z = float(norm.isf(ALPHA / 2 / max(len(series), 1)))  # Bonferroni over the series, two-sided
    found = [s for _, points in series if points["samples"].median() >= MIN_SAMPLES
             for s in steps(points.reset_index(drop=True), threshold, z)]
    columns = ["series", "case", "verdict", "commit", "after_commit", "when", "before_ms", "after_ms", "ratio",
               "runs_before", "runs_after"]
    table = pd.DataFrame(found, columns=columns)
    table["when"] = pd.to_datetime(table["when"], utc=True)
    return table.sort_values(["when", "series"]).reset_index(drop=True)


def plot_history(history: pd.DataFrame, found: pd.DataFrame) -> bytes | None:
    """Small multiples, one series of two or more runs each: median (IQR bars) per run, ticks named by commit,
    steps marked."""
    from matplotlib.ticker import FixedLocator

    from harness.report.render import plt, png

    stepped = list(dict.fromkeys(found.sort_values("ratio", key=lambda r: -abs(np.log(r)))["series"]))
    medians = history.groupby("series")["median_ms"]
    spread = medians.agg(lambda m: m.max() / m.min())[medians.size() > 1].sort_values(ascending=False)
    cases = (stepped + [c for c in spread.index if c not in stepped])[:SHOWN]
    if not cases:
        return None
    columns = min(len(cases), 3)
    lines = (len(cases) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5.2 * columns, 3.4 * lines), squeeze=False)
    for axis, case in zip(axes.flat, cases):
        points = history[history["series"] == case].reset_index(drop=True)
        x = np.arange(len(points))
        axis.errorbar(x, points["median_ms"], yerr=[points["median_ms"] - points["q1_ms"],
                                                    points["q3_ms"] - points["median_ms"]],
                      marker="o", markersize=4, capsize=3, color="#0067A5")
        for _, step in found[found["series"] == case].iterrows():
            at = int(np.flatnonzero((points["commit"] == step["commit"]) & (points["when"] == step["when"]))[0])
            axis.axvline(at - 0.5, color="#BE0032" if step["verdict"] == "slower" else "#008856", linestyle="--")
        axis.xaxis.set_major_locator(FixedLocator(x))
        axis.set_xticklabels(points["commit"].str[:7], rotation=60, fontsize=7)
        axis.set_ylim(bottom=0)
        axis.set_ylabel("median (ms)")
        axis.set_title("\n".join(case[i:i + 48] for i in range(0, len(case), 48)), fontsize=7)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(cases):]:
        axis.set_visible(False)
    figure.suptitle("Median per run against commit (bars: IQR; dashed: a step, red slower, green faster)")
    figure.tight_layout()
    return png(figure)


def write_history(paths, folder: Path, gpu: str | None = None, threshold: float = 0.05) -> dict[str, Path]:
    """history.md, history.html, history.png, history.csv (every run of every case) and steps.csv."""
    import base64
    import html as htmlmod

    from harness.files import write_atomic
    from harness.report.present import readable
    from harness.report.render import html_table, page

    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ReportError(f"--threshold {threshold}: give the smallest step to report as a fraction of 0 or more "
                          "(0.05: 5%)")
    files, left_out = benchmark_files(paths)
    history = history_table(files, gpu)
    found = all_steps(history, threshold)
    folder.mkdir(parents=True, exist_ok=True)
    written = {"csv": folder / "history.csv", "steps": folder / "steps.csv"}
    write_atomic(written["csv"], history.to_csv(index=False).encode())
    write_atomic(written["steps"], found.to_csv(index=False).encode())
    image = plot_history(history, found)
    runs = history.drop_duplicates("file").sort_values("when")
    gpus = ", ".join(sorted(history["gpu"].dropna().unique()))
    series = history.groupby("series")
    summary = (f"{len(series)} series (a case on one GPU card, timed one way) of {history['case'].nunique()} cases "
               f"over {len(runs)} runs on {gpus}, commits "
               f"{runs['commit'].iloc[0]} ({runs['when'].iloc[0]:%Y-%m-%d}) to {runs['commit'].iloc[-1]} "
               f"({runs['when'].iloc[-1]:%Y-%m-%d}); steps larger than {threshold:.0%}: "
               f"{(found['verdict'] == 'slower').sum()} slower, {(found['verdict'] == 'faster').sum()} faster.")
    alone = (series.size() == 1).sum()
    if alone:
        summary += f" {alone} of the series hold a single run: no step to find in them."
    few = ((series["samples"].median() < MIN_SAMPLES) & (series.size() > 1)).sum()
    if few:
        summary += f" {few} series keep fewer than {MIN_SAMPLES} samples a run: too few to find steps in, left out."
    shown = found.drop(columns="case").assign(when=found["when"].dt.strftime("%Y-%m-%d %H:%M")).rename(
        columns={"ratio": "ratio_after_over_before"})
    md = ["# History", "", summary, ""]
    body = ["<h1>History</h1>", f"<p>{htmlmod.escape(summary)}</p>"]
    if image is not None:
        write_atomic(folder / "history.png", image)
        written["plot"] = folder / "history.png"
        md += ["![history](history.png)", ""]
        body.append(f"<img alt='history' src='data:image/png;base64,{base64.b64encode(image).decode()}'/>")
    for verdict in ("slower", "faster"):
        rows = shown[shown["verdict"] == verdict].drop(columns="verdict")
        title = f"Where cases got {verdict}"
        md += [f"## {title}", "", readable(rows).to_markdown(index=False) if len(rows) else "None.", ""]
        body += [f"<h2>{title}</h2>", html_table(rows) if len(rows) else "<p>None.</p>"]
    if left_out:
        md += ["## Files left out", "", *[f"- {line}" for line in left_out], ""]
        body += ["<h2>Files left out</h2><ul>", *[f"<li>{htmlmod.escape(line)}</li>" for line in left_out], "</ul>"]
    md.append("Every run of every case: [history.csv](history.csv); the steps: [steps.csv](steps.csv).")
    body.append("<p>Every run of every case: <a href='history.csv'>history.csv</a>; the steps: "
                "<a href='steps.csv'>steps.csv</a>.</p>")
    write_atomic(folder / "history.md", "\n".join(md).encode())
    write_atomic(folder / "history.html", page("History", body).encode())
    written.update(markdown=folder / "history.md", html=folder / "history.html")
    return written
