"""One error contract for every entry point (harness, harness.distributed, harness.golden, harness.report):
one line on stderr naming the problem and the fix, an exit status, no traceback unless --debug.

A failure is either about one image (a size a library refuses, a file it cannot decode: the pipeline
skips that image and goes on) or about the run (out of memory, a broken GPU, a full disk: it stops with
one line).  `stops_the_run` is the one place that tells them apart; `fatal_message` words the second kind.
"""

from __future__ import annotations

import signal
import sys
from typing import Callable

from harness import HarnessError

INTERRUPTED, TERMINATED = 130, 143  # the shell's statuses for SIGINT and SIGTERM


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the same clean-up runs as for Ctrl-C."""


def first_line(error: BaseException) -> str:
    """Library errors can carry a C++ stack trace; one line is what a user needs."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def fatal_message(error: BaseException) -> str | None:
    """The one-line message of a failure that concerns the whole run, or None for one that may concern
    only the image being processed."""
    import torch

    text = str(error)
    if isinstance(error, torch.cuda.OutOfMemoryError) or "OUT_OF_MEMORY" in text:
        return "out of GPU memory: lower -b/--batch_size or -th/-tw"
    if isinstance(error, MemoryError) or "can't allocate memory" in text or "DefaultCPUAllocator" in text:
        return "out of host memory: lower -b/--batch_size or -th/-tw"
    if any(sign in text for sign in ("CUDA error", "CUDA driver error", "illegal memory access",
                                     "device-side assert", "cudaError")):
        return f"the GPU failed ({first_line(error)}): rerun; if it persists, the device needs a reset"
    if isinstance(error, ModuleNotFoundError) and error.name:
        return (f"the Python module '{error.name}' is missing: install harness with its dependencies "
                "(pip install -e . in its checkout)")
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return f"cannot use{where} ({error.strerror or first_line(error)}): check the path's space and permissions"
    return None


def stops_the_run(error: BaseException) -> bool:
    """Whether a failure stops the run (a HarnessError: the set-up is the user's to fix; or a fatal_message
    one) rather than costing only the image being processed."""
    return isinstance(error, HarnessError) or fatal_message(error) is not None


def _on_sigterm(signum, frame):
    raise Terminated()


def guarded(prog: str, run: Callable, args, error_status: int = 1, debug: bool = False) -> int:
    """run(args) under the contract: a HarnessError or any other failure gives `error_status` (1; the reports
    use 2, 'unusable input', since their 1 means 'regression'), Ctrl-C 130 and SIGTERM 143, each with one
    line; the temporary files of writes cut short are removed.  An unexpected exception is a bug: one line
    that says so, or its traceback with --debug."""
    from harness.inputs import remove_partial_files

    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must not stop a run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(args)
    except HarnessError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error_status
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return TERMINATED
    except Exception as error:
        if debug:
            raise
        message = fatal_message(error)
        if message is None:
            message = (f"internal error ({type(error).__name__}: {first_line(error)}): rerun with --debug for "
                       "the traceback and report it")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return error_status
    finally:
        remove_partial_files()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
