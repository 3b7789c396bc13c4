"""What several test modules share: the checkout, the small model's options, the command line run in a fresh
interpreter or in this process, and the one-line error check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The command line's options for LR-ASPP MobileNetV3 with synthetic weights: seconds on the CPU, where the
#: default ResNet-101 takes minutes
SMALL_MODEL = ["--model", "lraspp_mobilenet_v3_large", "--weights", "synthetic"]
#: ... on the CPU at 64x64: a whole run in seconds
SMALL_CPU_RUN = [*SMALL_MODEL, "--device", "cpu", "-th", "64", "-tw", "64"]


def python_env(*first_on_path: Path, **extra: str) -> dict:
    """This environment for a child Python that imports the checkout (`first_on_path` before it)."""
    path = [str(p) for p in first_on_path] + [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), **extra)


def harness(*args: str, cwd: Path | None = None, first_on_path: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` in a fresh interpreter, as a user runs it."""
    env = python_env(*([first_on_path] if first_on_path else []))
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """The command line in this process, as `harness()` returns it, without starting an interpreter and
    torch: seconds saved per test on CI's two busy cores."""
    from harness.cli import main

    try:
        code = main(list(args))
    except SystemExit as stop:  # argparse's errors
        code = stop.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["harness", *args], code, out, err)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """A failed run that says why in one `error:` line holding `words`, and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
