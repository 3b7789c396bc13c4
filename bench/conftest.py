"""Fixtures of the benchmark suites.  The full per-stage and end-to-end suites arrive with issue 4."""
