"""Regression gate: a candidate run against a baseline run, case by case.

For each case both runs have: the ratio of median times (candidate / baseline: above 1 is slower) and its
confidence interval, a percentile bootstrap over both runs' raw samples (two-sided, 1 - 2 alpha: each side
at alpha), hierarchical where both ran in several processes (harness.repeats): processes resampled, then
rounds within them.  The verdict comes from the interval against the threshold t (default 5%):

- slower: the whole interval above 1 + t (a regression);
- faster: the whole interval below 1 - t;
- same: the whole interval within 1 +- t;
- underpowered: the interval reaches past 1 + t or 1 - t and does not lie beyond it: the samples cannot
  tell (too few, or too noisy).  Listed, not failed.

A case of the baseline missing from the candidate fails the gate (unless --allow-missing); new cases are
listed.  Exit status for CI: 0 no regression, 1 regression (or missing cases), 2 unusable input or run:
malformed or empty files, a missing baseline, different hardware, a throttled GPU (unless --allow-throttled),
two GPUs of one model (unless --allow-other-gpu: on the H100 pool one commit differed by up to 1.8x between
two machines), a file that names no GPU or CPU model (unless --allow-unknown-hardware: two unknowns need not
be one machine).  --markdown and --junit are written whatever the exit status, a refusal's reason included.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from harness.errors import OneLineParser, guarded
from harness.files import write_atomic
from harness.report import ReportError, case_name, clock_of, pair_cases
from harness.report.load import OUT_OF_MEMORY, load

MUST_MATCH = ("hardware",)
REPORTED = ("env_torch_threads", "env_opencv_threads", "env_driver", "env_cuda", "env_cudnn", "env_torch",
            "env_torchvision", "env_cvcuda", "env_nvimgcodec",
            "env_onnxruntime", "env_tensorrt", "env_python")
DEFAULT_THRESHOLD = 0.05
RESAMPLES = 2000
MIN_SAMPLES = 3  # fewer in either run: no interval worth the name, the case is underpowered
#: Values one vectorized step of the bootstrap resamples at most (32 MB an array): a case of 300,000 samples
#: is resampled a few resamples at a time, not 2000 at once (4.8 GB an array).
CHUNK_VALUES = 1 << 22


@dataclass(frozen=True)
class Verdict:
    case: str
    baseline_ms: float
    candidate_ms: float
    ratio: float  # candidate / baseline median time: above 1 is slower
    low: float  # the ratio's confidence interval
    high: float
    samples: tuple[int, int]  # baseline's, candidate's
    verdict: str  # slower | faster | same | underpowered
    processes: tuple[int, int] = (1, 1)  # how many processes each side's samples came from


def ratio_interval(base: list[float], cand: list[float], alpha: float, seed: int = 0, base_process=None,
                   cand_process=None) -> tuple[float, float]:
    """Bootstrap interval of median(cand) / median(base), two-sided at 1 - 2 alpha.

    Where both sides' samples come from two or more processes (`*_process`: each sample's process index), the
    bootstrap is hierarchical: each resample draws processes with replacement, then rounds with replacement
    within each drawn process, so that the interval holds the process-to-process spread (a process's rounds
    share its memory placement, its libraries' first choices and its clocks: their spread says nothing about
    the next process).  Otherwise it resamples rounds (scipy's percentile bootstrap)."""
    if min(len(base), len(cand)) < MIN_SAMPLES:
        return float("-inf"), float("inf")
    groups = [process_groups(base, base_process), process_groups(cand, cand_process)]
    rng = np.random.default_rng(seed)
    if min(len(g) for g in groups) >= 2:
        medians = [hierarchical_medians(g, RESAMPLES, rng) for g in groups]
        ratios = medians[1] / medians[0]
        return float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))

    def statistic(c, b, axis):
        return np.median(c, axis=axis) / np.median(b, axis=axis)

    batch = max(1, CHUNK_VALUES // max(len(base), len(cand)))
    result = bootstrap((np.asarray(cand, float), np.asarray(base, float)), statistic, vectorized=True,
                       paired=False, confidence_level=1 - 2 * alpha, n_resamples=RESAMPLES, method="percentile",
                       rng=rng, batch=min(batch, RESAMPLES))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def process_groups(samples, process=None) -> list[np.ndarray]:
    """The samples split by process index, in order of first appearance; one group without indices (or with
    indices that do not match the samples)."""
    values = np.asarray(samples, float)
    if not isinstance(process, (list, tuple, np.ndarray)) or len(process) != len(values):
        return [values]
    process = np.asarray(process)
    return [values[process == index] for index in dict.fromkeys(process.tolist())]


def process_count(samples, process=None) -> int:
    return len(process_groups(samples, process))


def hierarchical_medians(groups: list[np.ndarray], resamples: int, rng) -> np.ndarray:
    """Medians of `resamples` two-level resamples: processes drawn with replacement, then each drawn
    process's rounds with replacement (its own count); padded with NaN so that one nanmedian takes them all,
    CHUNK_VALUES values at a time."""
    sizes = np.array([len(g) for g in groups])
    padded = np.full((len(groups), sizes.max()), np.nan)
    for index, group in enumerate(groups):
        padded[index, :len(group)] = group
    step = max(1, CHUNK_VALUES // padded.size)
    return np.concatenate([_resampled_medians(padded, sizes, min(step, resamples - start), rng)
                           for start in range(0, resamples, step)])


def _resampled_medians(padded: np.ndarray, sizes: np.ndarray, resamples: int, rng) -> np.ndarray:
    groups = len(sizes)
    drawn = rng.integers(0, groups, size=(resamples, groups))  # which process fills each slot
    positions = (rng.random((resamples, groups, sizes.max())) * sizes[drawn][..., None]).astype(int)
    values = padded[drawn[..., None], positions]
    values[np.arange(sizes.max()) >= sizes[drawn][..., None]] = np.nan  # a smaller process's slot is shorter
    return np.nanmedian(values.reshape(resamples, -1), axis=1)


def verdict_of(low: float, high: float, threshold: float) -> str:
    if low > 1 + threshold:
        return "slower"
    if high < 1 - threshold:
        return "faster"
    if 1 - threshold <= low and high <= 1 + threshold:
        return "same"
    return "underpowered"


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD,
            alpha: float = 0.01):
    """Verdicts for the cases both runs have, the cases only one has, and environment differences.  Hardware
    that a side does not record is not compared here: see unknown_hardware."""
    for column in MUST_MATCH:
        a, b = set(baseline[column].dropna()), set(candidate[column].dropna())
        if a and b and a != b:
            raise ReportError(f"the runs differ in {column} ({sorted(a)} against {sorted(b)}): "
                              "gate a run against a baseline from the same hardware")
    env_diffs = {}
    for column in REPORTED:
        if column in baseline and column in candidate:
            a, b = set(baseline[column].dropna()), set(candidate[column].dropna())
            if a != b:
                env_diffs[column] = (sorted(map(str, a)), sorted(map(str, b)))
    pairs, only_base, only_cand = pair_cases(baseline, candidate, ("_base", "_cand"))
    verdicts = []
    for _, row in pairs.iterrows():
        base, cand = row["samples_base"], row["samples_cand"]
        check_samples(row, base, cand)
        ratio = row["median_cand"] / row["median_base"]
        processes = [row.get(f"sample_process{side}") for side in ("_base", "_cand")]
        low, high = ratio_interval(base, cand, alpha, base_process=processes[0], cand_process=processes[1])
        verdicts.append(Verdict(case_name(row), row["median_base"] * 1e3, row["median_cand"] * 1e3, ratio, low,
                                high, (len(base), len(cand)), verdict_of(low, high, threshold),
                                (process_count(base, processes[0]), process_count(cand, processes[1]))))
    return verdicts, only_base, only_cand, env_diffs


def unit(row, side: str) -> str:
    value = row.get(f"sample_unit{side}")
    return value if isinstance(value, str) else "round"  # files before sample_unit kept rounds


def check_samples(row, base, cand) -> None:
    """A ratio of medians means something only for samples of the same kind (load has checked that they are
    positive and finite): whole runs of files kept steady batches from ea35c0a to 79f51be, three run totals
    before and adaptive runs since (their medians differ up to 10-fold)."""
    name = case_name(row)
    clocks = clock_of(row.get("timer_base")), clock_of(row.get("timer_cand"))
    if clocks[0] != clocks[1]:
        raise ReportError(f"{name}: the baseline was timed with the {clocks[0]}, the candidate with the "
                          f"{clocks[1]}: record the baseline again with this version")
    if unit(row, "_base") != unit(row, "_cand"):
        raise ReportError(f"{name}: the baseline's samples are {unit(row, '_base')}s, the candidate's "
                          f"{unit(row, '_cand')}s: record the baseline again with this version")
    threads = row.get("env_torch_threads_base"), row.get("env_torch_threads_cand")
    if row.get("device") == "cpu" and all(pd.notna(t) for t in threads) and threads[0] != threads[1]:
        raise ReportError(f"{name}: the baseline ran on {threads[0]:.0f} CPU threads, the candidate on "
                          f"{threads[1]:.0f}: run both with the same --bench-threads")


def throttled_runs(*tables: pd.DataFrame) -> list[str]:
    """The files whose GPU was throttled by heat or power during a case or the run (load's `throttled`)."""
    return sorted({file for table in tables for file in table.loc[table["throttled"].eq(True), "file"]})


def unknown_hardware(*tables: pd.DataFrame) -> list[str]:
    """The files that name no GPU or CPU model (harness.distributed on a CPU whose model Python cannot read)."""
    return sorted({file for table in tables for file in table.loc[table["hardware"].isna(), "file"]})


def other_gpus(baseline: pd.DataFrame, candidate: pd.DataFrame) -> tuple[str, str] | None:
    """The two GPUs' UUIDs when both files name one and they differ: machines of one model differ by more
    than a regression threshold (the hosts' CPUs, clocks, PCIe), so a gate across them tests the machine."""
    models = [set(table["hardware"].dropna()) for table in (baseline, candidate)]
    if models[0] != models[1]:
        return None  # different models: compare() says so
    uuids = [table["env_gpu_uuid"].dropna().unique() if "env_gpu_uuid" in table else [] for table in
             (baseline, candidate)]
    if len(uuids[0]) == 1 and len(uuids[1]) == 1 and uuids[0][0] != uuids[1][0]:
        return str(uuids[0][0]), str(uuids[1][0])
    return None


def failed(verdicts, missing: list[str], allow_missing: bool) -> bool:
    return any(v.verdict == "slower" for v in verdicts) or bool(missing and not allow_missing)


def markdown(verdicts, only_base, only_cand, env_diffs, threshold: float, alpha: float,
             allow_missing: bool = False) -> str:
    counts = {name: sum(v.verdict == name for v in verdicts) for name in ("slower", "faster", "same", "underpowered")}
    verdict = "REGRESSION" if failed(verdicts, only_base, allow_missing) else "no regression"
    lines = [f"# Regression gate: {verdict}", "",
             f"{len(verdicts)} cases compared: {counts['slower']} slower, {counts['faster']} faster, "
             f"{counts['same']} same, {counts['underpowered']} underpowered; {len(only_base)} missing from the "
             f"candidate{' (allowed)' if allow_missing and only_base else ''}, {len(only_cand)} new.", "",
             f"Ratio = candidate / baseline median time (above 1 is slower), with its {1 - 2 * alpha:.0%} bootstrap "
             f"interval; slower = the whole interval above {1 + threshold:.2f}, same = within "
             f"{1 - threshold:.2f}..{1 + threshold:.2f}, underpowered = the samples cannot tell.  Where both "
             "sides ran in several processes the interval resamples processes, then rounds within them.", ""]
    single = sum(min(v.processes) < 2 for v in verdicts)
    if single:
        lines += [f"**Warning:** {single} of {len(verdicts)} cases come from one process on a side: their interval "
                  "holds the spread of rounds within that process only, not from one process to the next, and can "
                  "be confidently wrong; run both sides in several processes (python -m harness.repeats).", ""]
    lines += ["| case | processes | samples | baseline ms | candidate ms | ratio | interval | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: (v.verdict != "slower", -v.ratio)):
        interval = "n/a (too few samples)" if not np.isfinite(v.low) else f"{v.low:.3f}-{v.high:.3f}"
        lines.append(f"| {v.case} | {v.processes[0]}, {v.processes[1]} | {v.samples[0]}, {v.samples[1]} | "
                     f"{v.baseline_ms:.4g} | {v.candidate_ms:.4g} | "
                     f"{v.ratio:.3f} | {interval} | {'**slower**' if v.verdict == 'slower' else v.verdict} |")
    for title, cases in (("Missing from the candidate", only_base), ("New in the candidate", only_cand)):
        if cases:
            lines += ["", f"## {title}", ""] + [f"- {c}" for c in cases]
    if env_diffs:
        lines += ["", "## Environment differences (reported, not gated)", ""]
        lines += [f"- {k}: {a} -> {b}" for k, (a, b) in env_diffs.items()]
    return "\n".join(lines) + "\n"


def refusal_markdown(reason: str) -> str:
    """The Markdown report of a gate that could not run: CI publishes the reason as it publishes verdicts."""
    return f"# Regression gate: not run\n\nThe gate refused its input (exit 2): {reason}\n"


def junit(verdicts, only_base, allow_missing: bool = False, refusal: str | None = None) -> bytes:
    """JUnit XML through junitparser: a slower case is a failure, a missing one too (skipped with
    --allow-missing), an underpowered one is skipped with the reason; the rest pass.  A gate that refused its
    input (`refusal`) is one case in error with the reason."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    suite = TestSuite("harness regression gate")
    if refusal is not None:
        case = TestCase("input", classname="harness.gate")
        case.result = [Error(refusal)]
        suite.add_testcase(case)
    for v in verdicts:
        case = TestCase(v.case, classname="harness.gate", time=round(v.candidate_ms / 1e3, 6))
        message = (f"{v.ratio:.3f}x the baseline median ({v.baseline_ms:.4g} -> {v.candidate_ms:.4g} ms), "
                   f"interval {v.low:.3f}-{v.high:.3f}, samples {v.samples[0]} and {v.samples[1]}, processes "
                   f"{v.processes[0]} and {v.processes[1]}")
        if v.verdict == "slower":
            case.result = [Failure(message)]
        elif v.verdict == "underpowered":
            case.result = [Skipped(f"underpowered: {message}")]
        case.system_out = v.verdict
        suite.add_testcase(case)
    for name in only_base:
        case = TestCase(name, classname="harness.gate")
        case.result = [(Skipped if allow_missing else Failure)("missing from the candidate run")]
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    return xml.tostring()


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m harness.report.gate", description=__doc__.split("\n\n")[0],
                           epilog="exit status: 0 no regression; 1 a regression, or baseline cases missing from the "
                           "candidate; 2 unusable input (malformed or empty files, a missing baseline, different "
                           "hardware, a throttled GPU, two GPUs of one model, unknown hardware). --markdown and "
                           "--junit are written whatever the status.")
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="relative change of the median that counts")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="each side of the ratio's bootstrap interval (the interval is at 1 - 2 alpha)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="do not fail when cases of the baseline are missing from the candidate")
    parser.add_argument("--allow-throttled", action="store_true",
                        help="gate runs whose GPU was throttled by heat or power (refused otherwise: exit 2)")
    parser.add_argument("--allow-other-gpu", action="store_true",
                        help="gate runs from two GPUs of the same model (refused otherwise: exit 2)")
    parser.add_argument("--allow-unknown-hardware", action="store_true",
                        help="gate files that name no GPU or CPU model (refused otherwise: exit 2)")
    parser.add_argument("--markdown", type=Path, help="write the Markdown report here (default: stdout)")
    parser.add_argument("--junit", type=Path, help="also write JUnit XML here")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    args = parser.parse_args(argv)
    return guarded("harness.report.gate", _run, args, error_status=2, debug=args.debug)


def _run(args) -> int:
    """The gate; when it refuses its input, --markdown and --junit still get the reason before it exits 2."""
    try:
        return _gate(args)
    except (ReportError, MemoryError) as error:  # errors.fatal_message's advice (lower -b) is the pipeline's
        reason = OUT_OF_MEMORY if isinstance(error, MemoryError) else str(error)
        for path, content in ((args.markdown, refusal_markdown(reason).encode()),
                              (args.junit, junit([], [], refusal=reason) if args.junit else None)):
            if path is not None:
                write_atomic(path, content)
        raise ReportError(reason) from None


def _gate(args) -> int:
    if not 0 < args.alpha < 0.5 or not (math.isfinite(args.threshold) and args.threshold >= 0):
        raise ReportError(f"--alpha {args.alpha} and --threshold {args.threshold}: give 0 < alpha < 0.5 and a "
                          "threshold of 0 or more")
    if not args.baseline.exists():
        raise ReportError(f"baseline {args.baseline} does not exist: record one on this GPU with "
                          "`pytest bench/ --benchmark-json BASELINE.json` at a known-good commit")
    baseline, candidate = load([args.baseline]), load([args.candidate])
    for table in (baseline, candidate):
        bare = table.loc[table["samples"].map(len) == 0, "file"]
        if len(bare):
            raise ReportError(f"{bare.iloc[0]}: holds no raw samples (pytest-benchmark's storage keeps them only "
                              "with --benchmark-save-data): the gate needs them; rerun with --benchmark-json")
    throttled = throttled_runs(baseline, candidate)
    if throttled and not args.allow_throttled:
        raise ReportError(f"the GPU was throttled (heat or power) during {', '.join(throttled)}: its times are not "
                          "comparable; run again, or pass --allow-throttled")
    unknown = unknown_hardware(baseline, candidate)
    if unknown and not args.allow_unknown_hardware:
        raise ReportError(f"{', '.join(unknown)} names no GPU or CPU model: two files of unknown hardware need not "
                          "come from one machine; record both with the suites (pytest bench/ names the CPU), or "
                          "pass --allow-unknown-hardware if they ran on one machine")
    gpus = other_gpus(baseline, candidate)
    if gpus and not args.allow_other_gpu:
        raise ReportError(f"the runs are from two GPUs of one model ({gpus[0]} and {gpus[1]}): between two H100s "
                          "of one pool the same commit's cases differed by up to 1.8x (reports/h100-2026-11-25-gate); "
                          "record the baseline on this GPU (or run both commits in one job), or pass --allow-other-gpu")
    verdicts, only_base, only_cand, env_diffs = compare(baseline, candidate, args.threshold, args.alpha)
    if not verdicts:
        raise ReportError(f"{args.baseline} and {args.candidate} have no case in common: nothing to gate")
    text = markdown(verdicts, only_base, only_cand, env_diffs, args.threshold, args.alpha, args.allow_missing)
    if args.markdown:
        write_atomic(args.markdown, text.encode())
    else:
        print(text, end="")
    if args.junit:
        write_atomic(args.junit, junit(verdicts, only_base, args.allow_missing))
    return 1 if failed(verdicts, only_base, args.allow_missing) else 0


if __name__ == "__main__":
    sys.exit(main())
