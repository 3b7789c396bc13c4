"""Regression gate: a candidate run against a baseline run, case by case.

A case is "slower" only when its median time grew by more than the threshold (default 5%) AND the raw
samples say so with confidence (one-sided Mann-Whitney U test, default alpha 0.01); "faster" likewise the
other way; "ambiguous" when the medians moved past the threshold but the samples cannot tell; otherwise
"same".  Environment fields that must match (hardware) are checked first; others are reported.
Exit status for CI: 0 no regression, 1 regression, 2 unusable input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd
from scipy.stats import mannwhitneyu

from harness.errors import guarded
from harness.inputs import write_atomic
from harness.report import ReportError, case_name, pair_cases
from harness.report.load import load

MUST_MATCH = ("hardware",)
REPORTED = ("env_driver", "env_cuda", "env_cudnn", "env_torch", "env_torchvision", "env_cvcuda", "env_nvimgcodec",
            "env_onnxruntime", "env_tensorrt", "env_python")


@dataclass(frozen=True)
class Verdict:
    case: str
    baseline_ms: float
    candidate_ms: float
    ratio: float  # candidate / baseline median time: above 1 is slower
    p_slower: float
    p_faster: float
    verdict: str  # slower | faster | same | ambiguous


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, threshold: float = 0.05, alpha: float = 0.01):
    """Verdicts for the cases both runs have, the cases only one has, and environment differences."""
    for column in MUST_MATCH:
        a, b = set(baseline[column].dropna()), set(candidate[column].dropna())
        if a != b:
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
        ratio = row["median_cand"] / row["median_base"]
        p_slower = mannwhitneyu(cand, base, alternative="greater").pvalue
        p_faster = mannwhitneyu(cand, base, alternative="less").pvalue
        if ratio > 1 + threshold:
            verdict = "slower" if p_slower < alpha else "ambiguous"
        elif ratio < 1 - threshold:
            verdict = "faster" if p_faster < alpha else "ambiguous"
        else:
            verdict = "same"
        verdicts.append(Verdict(case_name(row), row["median_base"] * 1e3, row["median_cand"] * 1e3, ratio,
                                float(p_slower), float(p_faster), verdict))
    return verdicts, only_base, only_cand, env_diffs


def markdown(verdicts, only_base, only_cand, env_diffs, threshold: float, alpha: float) -> str:
    slower = sum(v.verdict == "slower" for v in verdicts)
    lines = [f"# Regression gate: {'REGRESSION' if slower else 'no regression'}", "",
             f"{len(verdicts)} cases compared; slower = median time up by more than {threshold:.0%} and "
             f"Mann-Whitney U p < {alpha} on the raw samples.", "",
             "| case | baseline ms | candidate ms | ratio | p (slower) | verdict |", "|---|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: -v.ratio):
        lines.append(f"| {v.case} | {v.baseline_ms:.4g} | {v.candidate_ms:.4g} | {v.ratio:.3f} | {v.p_slower:.2g} | "
                     f"{'**slower**' if v.verdict == 'slower' else v.verdict} |")
    for title, cases in (("Only in the baseline", only_base), ("Only in the candidate", only_cand)):
        if cases:
            lines += ["", f"## {title}", ""] + [f"- {c}" for c in cases]
    if env_diffs:
        lines += ["", "## Environment differences (reported, not gated)", ""]
        lines += [f"- {k}: {a} -> {b}" for k, (a, b) in env_diffs.items()]
    return "\n".join(lines) + "\n"


def junit(verdicts) -> str:
    failures = sum(v.verdict == "slower" for v in verdicts)
    cases = []
    for v in verdicts:
        body = ""
        if v.verdict == "slower":
            message = f"{v.ratio:.3f}x the baseline median ({v.baseline_ms:.4g} -> {v.candidate_ms:.4g} ms), p={v.p_slower:.2g}"
            body = f"<failure message={quoteattr(message)}/>"
        cases.append(f'  <testcase classname="harness.gate" name={quoteattr(v.case)} time="{v.candidate_ms / 1e3:.6f}">'
                     f"{body}<system-out>{escape(v.verdict)}</system-out></testcase>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="harness regression gate" tests="{len(verdicts)}" '
            f'failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report.gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--threshold", type=float, default=0.05, help="relative change of the median that counts")
    parser.add_argument("--alpha", type=float, default=0.01, help="significance level of the Mann-Whitney U test")
    parser.add_argument("--markdown", type=Path, help="write the Markdown report here (default: stdout)")
    parser.add_argument("--junit", type=Path, help="also write JUnit XML here")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    args = parser.parse_args(argv)
    return guarded("harness.report.gate", _run, args, error_status=2, debug=args.debug)


def _run(args) -> int:
    verdicts, only_base, only_cand, env_diffs = compare(load([args.baseline]), load([args.candidate]),
                                                        args.threshold, args.alpha)
    if not verdicts:
        raise ReportError(f"{args.baseline} and {args.candidate} have no case in common: nothing to gate")
    text = markdown(verdicts, only_base, only_cand, env_diffs, args.threshold, args.alpha)
    if args.markdown:
        write_atomic(args.markdown, text.encode())
    else:
        print(text, end="")
    if args.junit:
        write_atomic(args.junit, junit(verdicts).encode())
    return 1 if any(v.verdict == "slower" for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
