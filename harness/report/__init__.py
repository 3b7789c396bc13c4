"""Turning pytest-benchmark JSON into answers: one tidy table, comparisons and regression gates."""

from harness import HarnessError

#: The columns that identify a case: two rows with equal values measured the same work.
CASE_KEY = ("stage", "engine", "variant", "device", "precision", "batch_size", "model_height", "model_width", "source")


class ReportError(HarnessError):
    """A benchmark file that cannot be used; the message names the file and the problem."""
