"""One error contract for every entry point (harness, harness.distributed, harness.golden, harness.report):
one line on stderr naming the problem and the fix, an exit status, no traceback unless --debug.

A failure is either about one image (a size a library refuses, a file it cannot decode: the pipeline
skips that image and goes on) or about the run (out of memory, a broken GPU, a full disk: it stops with
one line).  `stops_the_run` is the one place that tells them apart; `fatal_message` words the second kind.

An entry point imports the libraries it needs through `imported` and runs through `guarded`: a module missing
at import time, a second signal during the clean-up and a C++ stack that native code prints before raising
each reach the terminal as that one line.
"""

from __future__ import annotations

import argparse
import atexit
import faulthandler
import importlib
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from types import ModuleType
from typing import Callable

from harness import HarnessError
from harness.files import remove_partial_files

INTERRUPTED, TERMINATED = 130, 143  # the shell's statuses for SIGINT and SIGTERM
_STATUS = {signal.SIGINT: INTERRUPTED, signal.SIGTERM: TERMINATED}
#: After a signal, how long the interpreter may take to exit once the run's clean-up is over.  A process
#: still alive then is stuck (a thread that never returns): it prints every thread's stack and ends.
EXIT_LIMIT_S = 30

#: Modules whose package has another name on PyPI.
PACKAGES = {"cv2": "opencv-python-headless", "PIL": "pillow", "pynvml": "nvidia-ml-py"}
#: The extra (pyproject.toml) that installs a module the pipeline itself does not need.
EXTRAS = {**dict.fromkeys(("pandas", "scipy", "matplotlib", "tabulate", "junitparser", "ruptures"), "report"),
          **dict.fromkeys(("onnx", "onnxruntime"), "onnx"), **dict.fromkeys(("pytest", "pytest_benchmark"), "bench")}

#: How libtorch's stable ABI starts the C++ stack it writes to std::cerr for an error crossing it (running
#: out of memory inside a torchvision decode, say); the Python exception then holds the one line.
LIBTORCH_STACK = b"Exception across libtorch C API boundary"


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the same clean-up runs as for Ctrl-C."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each option's default, except where it says nothing: a flag (off unless given; argparse
    would print a --no_x flag's stored default, True, as if the flag were on) and an option with no default."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """argparse with the contract's one line for a bad option (exit 2): its usage block would be several; its
    --help gives the defaults (HelpFormatter)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def first_line(error: BaseException) -> str:
    """Library errors can carry a C++ stack trace; one line is what a user needs."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def fatal_message(error: BaseException) -> str | None:
    """The one-line message of a failure that concerns the whole run, or None for one that may concern
    only the image being processed."""
    if isinstance(error, ImportError) and error.name and error.name.split(".")[0] != "harness":
        # first: torch itself may be the module that is missing
        package = f" (package {PACKAGES[error.name]})" if error.name in PACKAGES else ""
        problem = ("is missing" if isinstance(error, ModuleNotFoundError)
                   else f"cannot be imported ({first_line(error)})")
        extra = EXTRAS.get(error.name.split(".")[0])
        if extra:
            return (f"the Python module '{error.name}'{package} {problem}: install harness's {extra} extra "
                    f"(pip install -e '.[{extra}]' in its checkout)")
        return (f"the Python module '{error.name}'{package} {problem}: install harness with its dependencies "
                "(pip install -e . in its checkout)")
    torch = sys.modules.get("torch")
    text = str(error)
    if (torch is not None and isinstance(error, torch.cuda.OutOfMemoryError)) or "OUT_OF_MEMORY" in text:
        return "out of GPU memory: lower -b/--batch_size or -th/-tw"
    if isinstance(error, MemoryError) or "can't allocate memory" in text or "DefaultCPUAllocator" in text:
        return "out of host memory: lower -b/--batch_size or -th/-tw"
    if any(sign in text for sign in ("CUDA error", "CUDA driver error", "illegal memory access",
                                     "device-side assert", "cudaError")):
        return f"the GPU failed ({first_line(error)}): rerun; if it persists, the device needs a reset"
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return f"cannot use{where} ({error.strerror or first_line(error)}): check the path's space and permissions"
    return None


def stops_the_run(error: BaseException) -> bool:
    """Whether a failure stops the run (a HarnessError: the set-up is the user's to fix; or a fatal_message
    one) rather than costing only the image being processed."""
    return isinstance(error, HarnessError) or fatal_message(error) is not None


def user_message(error: Exception) -> str:
    """What the user reads after 'PROG: error: ' for a failure that stopped the run."""
    if isinstance(error, HarnessError):
        return str(error)
    return fatal_message(error) or (f"internal error ({type(error).__name__}: {first_line(error)}): rerun with "
                                    "--debug for the traceback and report it")


def _report(prog: str, error: BaseException, error_status: int) -> int:
    """Print the one line for `error` and give its exit status."""
    if isinstance(error, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    if isinstance(error, Terminated):
        print(f"{prog}: terminated", file=sys.stderr)
        return TERMINATED
    print(f"{prog}: error: {user_message(error)}", file=sys.stderr)
    return error_status


def imported(prog: str, module: str, debug: bool = False) -> ModuleType:
    """`module`, imported under the contract.  An entry point imports torch, torchvision, OpenCV and the
    rest before `guarded` can run: a missing one, or a Ctrl-C in the seconds that takes, is one line and an
    exit (SystemExit, as argparse's errors) here too."""
    try:
        return importlib.import_module(module)
    except (Exception, KeyboardInterrupt) as error:
        if debug and not isinstance(error, KeyboardInterrupt):
            raise
        raise SystemExit(_report(prog, error, 1)) from None


class _Signals:
    """SIGINT and SIGTERM while `guarded` runs.  The first stops the run (KeyboardInterrupt or Terminated in
    the main thread) and decides the exit status; later ones are ignored until the clean-up is over, so that
    a second Ctrl-C can neither cut it short (lanes being joined, temporary files being removed) nor print a
    traceback.  After it, while the interpreter still joins threads on its way out, a further signal ends the
    process at once, with the first signal's status: a stuck exit can still be stopped.  Late in the exit,
    where Python would put the default handlers back (and a signal would kill the process with its own
    status), they are ignored.  A process whose exit takes over EXIT_LIMIT_S, with no further signal, prints
    its threads' stacks and ends with the first signal's status: nothing is left running."""

    def __init__(self, prog: str):
        self.prog = prog
        self.first: int | None = None
        self.running = True  # once the run is over, a signal is only recorded
        self.lost = False  # the first signal's exception was dropped (see unraisable)
        self.released = False
        self.arrivals = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # (read, write), before any handler can run
        self.previous_wakeup = signal.set_wakeup_fd(self.arrivals[1], warn_on_full_buffer=False)
        self.previous = {number: signal.signal(number, self.handle) for number in _STATUS}
        self.previous_hook = sys.unraisablehook
        sys.unraisablehook = self.unraisable

    def _first_to_arrive(self, number: int) -> int:
        """Python runs the handlers of signals that arrive together (while the main thread is in one long C
        call) in numeric order, SIGINT before SIGTERM; its C handler writes each number to the wakeup
        descriptor as it arrives."""
        if self.released:  # the descriptor is closed
            return number
        try:
            arrived = os.read(self.arrivals[0], 256)
        except OSError:  # nothing there
            arrived = b""
        return next((signal.Signals(byte) for byte in arrived if byte in _STATUS), number)

    def handle(self, number: int, frame) -> None:
        if self.first is None or self.lost:
            self.first, self.lost = self.first or self._first_to_arrive(number), False
            if self.running:
                raise KeyboardInterrupt() if self.first == signal.SIGINT else Terminated()
        elif self.released:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(_STATUS[self.first])

    def unraisable(self, info) -> None:
        """Python prints and drops an exception raised in a weakref callback or __del__: if that was the
        signal's, deliver the signal again once this hook has returned (raised in the hook, it would be
        dropped too), so that the run stops for it."""
        if isinstance(info.exc_value, (KeyboardInterrupt, Terminated)) and self.running:
            self.lost = True
            threading.Timer(0.01, self._again).start()
        else:
            self.previous_hook(info)

    def _again(self) -> None:
        if self.lost and self.running:
            signal.pthread_kill(threading.main_thread().ident, self.first or signal.SIGINT)

    def release(self) -> None:
        sys.unraisablehook = self.previous_hook
        self.released = True
        signal.set_wakeup_fd(self.previous_wakeup)
        for end in self.arrivals:
            os.close(end)
        if self.first is None:
            for number, handler in self.previous.items():
                signal.signal(number, handler)
        else:
            atexit.register(lambda: [signal.signal(number, signal.SIG_IGN) for number in _STATUS])
            exiting = threading.Event()
            threading.Thread(target=self._watch_exit, args=(exiting,), name="harness-exit-watch", daemon=True).start()
            threading._register_atexit(exiting.set)  # the exit's start, before threads are joined (not in tests)

    def _watch_exit(self, exiting: threading.Event) -> None:
        """A process still running EXIT_LIMIT_S after its interpreter began to exit (joining a thread that
        never returns, say) prints every thread's stack and ends with the first signal's status."""
        exiting.wait()
        time.sleep(EXIT_LIMIT_S)
        try:
            print(f"{self.prog}: still exiting {EXIT_LIMIT_S} s after the signal (a bug): its threads' stacks follow",
                  file=sys.__stderr__, flush=True)
            faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        except Exception:  # no stderr
            pass
        os._exit(_STATUS[self.first])


def _forward(read: int, terminal: int) -> None:
    """Copy what native code writes to the terminal, less libtorch's C++ stacks.  A write that fails is
    dropped: the pipe must still be drained, or native code writing to it would block."""
    skipping = False
    with open(read, "rb") as source:
        for line in source:
            if LIBTORCH_STACK in line:
                skipping = True
            elif not (skipping and line.startswith((b"frame #", b"<omitting"))):
                skipping = False
                try:
                    while line:
                        line = line[os.write(terminal, line):]
                except OSError:
                    pass


@contextmanager
def _without_native_stacks():
    """Route file descriptor 2 through a thread that drops libtorch's C++ stacks, which native code prints
    before the Python exception that holds the one line.  Python's own stderr writes to the terminal
    directly, so that the one line is never held back.  Only where sys.stderr is descriptor 2 (not under
    a capturing test runner)."""
    try:
        direct = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        direct = False
    if not direct:
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    python_stderr = sys.stderr
    sys.stderr = ours = open(terminal, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace",
                             closefd=False)
    copier = threading.Thread(target=_forward, args=(read, terminal), name="harness-stderr", daemon=True)
    copier.start()
    dumping = faulthandler.is_enabled()  # PYTHONFAULTHANDLER: its stacks go straight to the terminal too
    if dumping:
        faulthandler.enable(file=ours)
    try:
        yield
    finally:
        if dumping:
            faulthandler.enable(file=python_stderr)
        sys.stderr = python_stderr
        ours.close()
        os.dup2(terminal, 2)  # closes the pipe's last write end, unless a child process still holds it
        copier.join(timeout=0.5)
        if not copier.is_alive():
            os.close(terminal)


def guarded(prog: str, run: Callable, args, error_status: int = 1, debug: bool = False) -> int:
    """run(args) under the contract: a HarnessError or any other failure gives `error_status` (1; the reports
    use 2, 'unusable input', since their 1 means 'regression'), Ctrl-C 130 and SIGTERM 143, each with one
    line; the temporary files of writes cut short are removed.  An unexpected exception is a bug: one line
    that says so, or its traceback with --debug."""
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must not stop a run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    signals = _Signals(prog)
    try:
        with nullcontext() if debug else _without_native_stacks():
            try:
                return run(args)
            finally:
                signals.running = False  # from here on a signal is recorded, not raised
    except (Exception, KeyboardInterrupt, Terminated) as error:
        if debug and isinstance(error, Exception) and not isinstance(error, HarnessError):
            raise
        return _report(prog, error, error_status)
    finally:
        remove_partial_files()
        signals.release()
