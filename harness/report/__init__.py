"""Turning pytest-benchmark JSON into answers: one tidy table, comparisons and regression gates."""

import pandas as pd

from harness import HarnessError
from harness.results import CASE_FIELDS

#: The columns that identify a case: two rows with equal values measured the same work.
CASE_KEY = CASE_FIELDS


class ReportError(HarnessError):
    """A benchmark file that cannot be used; the message names the file and the problem."""


def clock_of(timer) -> str:
    """What a case's samples were timed with, from its `timer` note: "CUDA events, blocked" (the per-stage
    cases, queued behind a blocking kernel), "CUDA events" (other GPU cases) or "host clock" (CPU cases, and
    GPU cases of old files): two clocks' times are not comparable."""
    if not isinstance(timer, str) or not timer.startswith("CUDA events"):
        return "host clock"
    return "CUDA events, blocked" if timer.startswith("CUDA events behind a blocking kernel") else "CUDA events"


def case_name(row) -> str:
    """A case's key values joined with '/', empty ones left out."""
    parts = [str(row[k]) for k in CASE_KEY if row.get(k) not in (None, "") and not pd.isna(row[k])]
    return "/".join(parts)


def _key_text(value) -> str:
    """A key value as text, so that files whose key columns pandas typed differently (all-empty `rank` in one,
    integers in the other; 1 against 1.0) still pair."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def case_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The CASE_KEY columns as text (_key_text): what pairs, groups and de-duplicates cases across files."""
    return frame[list(CASE_KEY)].apply(lambda column: column.map(_key_text))


def unique_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per case: where several files hold a case (a suite and a slice of it), the row with the most raw
    samples."""
    def count(samples) -> int:
        return len(samples) if isinstance(samples, (list, tuple)) or hasattr(samples, "shape") else 0

    counts = frame["samples"].map(count) if "samples" in frame else pd.Series(0, index=frame.index)
    keys = case_keys(frame)
    best = counts.groupby([keys[k] for k in CASE_KEY], dropna=False).idxmax()
    return frame.loc[sorted(best.to_numpy())]


def pair_cases(a, b, suffixes: tuple[str, str]):
    """Rows of `a` and `b` merged on CASE_KEY: (the pairs, names of cases only in a, only in b)."""
    a, b = (frame.assign(**case_keys(frame)) for frame in (a, b))
    merged = a.merge(b, on=list(CASE_KEY), how="outer", suffixes=suffixes, indicator=True)
    names = {side: [case_name(r) for _, r in merged[merged["_merge"] == side].iterrows()]
             for side in ("left_only", "right_only")}
    return merged[merged["_merge"] == "both"], names["left_only"], names["right_only"]
