"""Reading and checking the input files (inputs.read_jpeg: the strict check is CPU work), and writing the
overlays, in processes of their own, for harness.runner's read lane and its writes.

In threads of the pipeline's process the check waits for the interpreter lock that the lanes' Python threads
hold, and the read lane was the busiest of all in every fast run on an H100 (issue 27).  So one reading
process, started on first use and kept for the process's life, reads each batch with its threads, where
they compete with no one.  The files' bytes come back through memory the two share: a pipe hands a batch's
6 MB back in 64 KB reads, each of which waits for that lock again.  Writing is the same story: five system
calls a file (files.write_atomic), each a wait for the lock, so a writing process takes each batch's
overlays through memory the two share and writes them, in order, in one request.

Each is `python -m harness.reading read|write` (multiprocessing would run the caller's main module in it
again), ignores Ctrl-C (the caller decides what stops), and exits when its pipe closes, when a wait for its
answer is cut short, or when the process that started it ends (a caller ended by os._exit or SIGKILL: a
thread of it watches for that).  Its SIGTERM stops it at the file in hand, which it removes (files.write_atomic).
"""

from __future__ import annotations

import atexit
import mmap
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from harness import HarnessError, threads_setting
from harness.errors import first_line
from harness.files import remove_partial_files, write_atomic
from harness.inputs import BadImage, JpegFile, read_jpeg


MAX_READ_WORKERS = 32


def read_workers() -> int:
    """How many files are read and checked at once: the cores beside the lanes' threads (two), shared by
    the ranks of harness.distributed on this machine; at most MAX_READ_WORKERS.  The libjpeg check takes
    4-7 ms of a core per 1080p file, so a lane that keeps up with a GPU's JPEG engines needs a core each.
    HARNESS_READ_WORKERS=N sets the number, to measure what the cores left to the decoders are worth."""
    chosen = threads_setting("HARNESS_READ_WORKERS", MAX_READ_WORKERS)
    if chosen:
        return chosen
    cores = len(os.sched_getaffinity(0))
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    return max(1, min(MAX_READ_WORKERS, (cores - 2) // ranks))


def read_or_reason(path: Path, strict: bool = True) -> JpegFile | str:
    """read_jpeg, or why the file cannot be used."""
    try:
        return read_jpeg(path, strict)
    except BadImage as error:
        return str(error)


_threads: dict[int, ThreadPoolExecutor] = {}


def read_batch(paths: list[Path], strict: bool, threads: int) -> list[JpegFile | str]:
    """read_or_reason for each path, `threads` at a time, in order."""
    if threads not in _threads:
        _threads[threads] = ThreadPoolExecutor(threads, thread_name_prefix="harness-read")
    return list(_threads[threads].map(read_or_reason, paths, [strict] * len(paths)))


class _Helper:
    """A process of this module and the memory it shares with this one: an anonymous file (memfd) that it
    inherits, so that nothing is left behind however the run ends.  One request at a time."""

    role = ""
    died = ""  # the message when the process is gone

    def __init__(self):
        path = os.pathsep.join(entry for entry in sys.path if entry)  # the harness this process imported
        self.memory_fd = os.memfd_create(f"harness-{self.role}")
        self.memory: mmap.mmap | None = None
        self.process = subprocess.Popen([sys.executable, "-m", "harness.reading", self.role, str(self.memory_fd),
                                         str(os.getpid())],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=[self.memory_fd],
                                        env={**os.environ, "PYTHONPATH": path})
        self.requests = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.answers = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.lock = threading.Lock()  # one batch at a time
        self.broken = False  # a request was cut short: its answer, or its work, is still to come
        self.closed = False

    def usable(self) -> bool:
        return not self.broken and self.process.poll() is None

    def _ask(self, request):
        """One request and one answer: each system call here would wait for the interpreter lock again.  A
        wait cut short (Ctrl-C) ends the process, which stops at the file in hand: the next request would
        read this one's answer, and the shared memory is still in use."""
        try:
            self.requests.send(request)
            return self.answers.recv()
        except (EOFError, OSError):
            raise HarnessError(self.died) from None
        except BaseException:
            self.broken = True
            self.process.terminate()
            raise

    def _mapped(self, size: int) -> None:
        """The memory mapped here at `size` bytes or more (the new map made before the old one closes)."""
        if size and (self.memory is None or len(self.memory) < size):
            grown = mmap.mmap(self.memory_fd, size)
            if self.memory is not None:
                self.memory.close()
            self.memory = grown

    def close(self) -> None:
        """Close the pipe (the process exits on it) and the memory; kill the process if it lingers.  Once:
        atexit calls it again."""
        if self.closed:
            return
        self.closed = True
        for end in (self.requests, self.answers, self.process.stdin, self.process.stdout):
            end.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with self.lock:
            if self.memory is not None:
                self.memory.close()
            os.close(self.memory_fd)


class Reader(_Helper):
    """The reading process: it checks each batch's files with its threads and sizes the memory itself (32
    stat calls of the files here cost 80-120 ms a batch beside three busy Python threads, against 0.1 ms
    alone)."""

    role = "read"
    died = ("the process reading the input files died (out of memory, or killed): rerun, with fewer or "
            "smaller files")

    def read(self, paths: list[Path], strict: bool, workers: int) -> list[JpegFile | str]:
        with self.lock:
            files, size = self._ask((paths, strict, workers))
            if isinstance(files, BaseException):
                raise files
            self._mapped(size)
            return [JpegFile(file[0], self.memory[file[1]:file[1] + file[2]], *file[3:])
                    if isinstance(file, tuple) else file for file in files]


class Writer(_Helper):
    """The writing process: a batch's overlays go to it through the memory in one request."""

    role = "write"
    died = "the process writing the overlays died (out of memory, or killed): rerun"

    def write(self, targets: list[Path], datas: list[bytes]) -> tuple[int, str | None] | None:
        """How many of `targets` were written, in order, and why the next one was not (None: all were);
        None where the memory cannot grow to the batch (a file-size limit, say)."""
        if not targets:
            return 0, None
        with self.lock:
            size = _grown(self.memory_fd, sum(len(data) for data in datas))
            if not size:
                return None
            self._mapped(size)
            spans, at = [], 0
            for target, data in zip(targets, datas):
                self.memory[at:at + len(data)] = data
                spans.append((str(Path(target).absolute()), at, len(data)))  # as given: '..' is the kernel's
                at += len(data)
            return self._ask((spans, size))


_helpers: dict[type, _Helper] = {}  # the running Reader and Writer


def _running(kind: type[_Helper]) -> _Helper:
    """The process of `kind`, started on first use, and again where the last one was cut short or ended."""
    helper = _helpers.get(kind)
    if helper is None or not helper.usable():
        helper = _helpers[kind] = kind()
        atexit.register(helper.close)
    return helper


def _mode(variable: str) -> str:
    value = os.environ.get(variable) or "process"
    if value not in ("process", "threads"):
        raise HarnessError(f"{variable}={value!r} is neither process nor threads: give one, or unset it")
    return value


def in_threads() -> bool:
    """HARNESS_READERS=threads: the files are read in threads of this process, to measure the difference."""
    return _mode("HARNESS_READERS") == "threads"


def writes_here() -> bool:
    """HARNESS_WRITERS=threads: the overlays are written by this process's writing thread, to measure the
    difference."""
    return _mode("HARNESS_WRITERS") == "threads"


def read_files(paths: list[Path], strict: bool, workers: int | None = None) -> list[JpegFile | str]:
    """Per path, its inputs.JpegFile or why it cannot be used, in order, `workers` (read_workers()) at a
    time.  HARNESS_READERS=threads reads them in threads of this process instead, to measure the
    difference."""
    workers = workers or read_workers()
    if in_threads():
        return read_batch(paths, strict, workers)
    return _running(Reader).read(paths, strict, workers)


def write_files(targets: list[Path], datas: list[bytes]) -> tuple[int, str | None]:
    """Write each of `datas` to its target whole (files.write_atomic), in order, until one fails: how many
    were written and why the next was not (None: all were).  In the writing process, unless
    HARNESS_WRITERS=threads or the shared memory cannot grow to the batch."""
    answer = None if writes_here() else _running(Writer).write(targets, datas)
    return answer if answer is not None else _write(zip(targets, datas))


def _write(pairs) -> tuple[int, str | None]:
    """write_atomic each (target, bytes) in order until one fails: how many were written, and why not."""
    written = 0
    for target, data in pairs:
        try:
            write_atomic(Path(target), data)
        except HarnessError as error:
            return written, str(error)
        written += 1
    return written, None


def _serve_writes(requests: Connection, answers: Connection, memory_fd: int) -> None:
    """The writing process: each request is a batch, (target, offset, length) per file and the memory's
    size; the answer is how many were written, in order, and why the next was not."""
    while True:
        try:
            spans, size = requests.recv()
        except EOFError:
            return
        try:
            with mmap.mmap(memory_fd, size) as memory:
                answer = _write((target, memory[at:at + length]) for target, at, length in spans)
        except Exception as error:  # not a file's (out of memory here, say): the run stops with it
            answer = 0, f"the process writing the overlays failed ({first_line(error)}): rerun"
        try:
            answers.send(answer)
        except OSError:  # the caller is gone (Ctrl-C): the files it asked for are whole
            return


def _serve(requests: Connection, answers: Connection, memory_fd: int) -> None:
    """The reading process: each request is a batch; the answer is, per file, why it cannot be used or
    (path, offset, length, height, width) with its bytes in the shared memory, one after another, and the
    memory's size.  The memory grows to fit a batch; where it cannot (under a file-size limit, say), the
    bytes come back through the pipe."""
    while True:
        try:
            paths, strict, threads = requests.recv()
        except EOFError:
            return
        size = 0
        try:
            out = read_batch(paths, strict, threads)
            size = _grown(memory_fd, sum(len(file.data) for file in out if isinstance(file, JpegFile)))
            if size:
                with mmap.mmap(memory_fd, size) as memory:
                    at = 0
                    for index, file in enumerate(out):
                        if isinstance(file, JpegFile) and at + len(file.data) <= size:
                            memory[at:at + len(file.data)] = file.data
                            out[index] = (file.path, at, len(file.data), file.height, file.width)
                            at += len(file.data)
        except Exception as error:  # the caller raises it
            out = error
        try:
            answers.send((out, size))
        except pickle.PicklingError as error:
            answers.send((RuntimeError(f"cannot hand back a batch: {error}"), 0))
        except OSError:  # the caller is gone
            return


def _grown(memory_fd: int, needed: int) -> int:
    """The shared memory's size, grown to `needed` (at least 16 MB) if it is smaller; 0 where it cannot
    grow or nothing is needed."""
    size = os.fstat(memory_fd).st_size
    if needed and size < needed:
        try:
            size = max(needed, 16 << 20)
            os.ftruncate(memory_fd, size)
        except OSError:
            return 0
    return size if needed else 0


def _terminated(number, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up short
    raise SystemExit(128 + number)  # through write_atomic, which removes its temporary file


def _ends_with(parent: int) -> None:
    """A SIGTERM to this process when the process that started it ends, however it ends (os._exit, SIGKILL):
    a thread looks for it every 0.1 s.  Linux's parent-death signal would come when the *thread* that started
    this process ends, and a caller may start a run from a thread that ends while the process serves others."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    incoming, outgoing = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # whatever prints, prints to the terminal, not into the pipe
    role, memory_fd, parent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    try:
        _ends_with(parent)
        (_serve_writes if role == "write" else _serve)(incoming, outgoing, memory_fd)
    finally:
        remove_partial_files()
