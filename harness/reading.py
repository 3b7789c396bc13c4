"""Reading and checking the input files (inputs.read_jpeg: the strict check is CPU work) in a process of
their own, for harness.runner's read lane.

In threads of the pipeline's process the check waits for the interpreter lock that the lanes' Python threads
hold, and the read lane was the busiest of all in every fast run on an H100 (issue 27).  So one reading
process, started on first use and kept for the process's life, reads each batch with its threads, where
they compete with no one.  The files' bytes come back through memory the two share: a pipe hands a batch's
6 MB back in 64 KB reads, each of which waits for that lock again.

The process is `python -m harness.reading` (multiprocessing would run the caller's main module in it
again), ignores Ctrl-C (the caller decides what stops), and exits when its pipe closes: with the caller.
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
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from harness import HarnessError
from harness.inputs import BadImage, JpegFile, read_jpeg


MAX_READ_WORKERS = 32


def read_workers() -> int:
    """How many files are read and checked at once: the cores beside the lanes' threads (two), shared by
    the ranks of harness.distributed on this machine; at most MAX_READ_WORKERS.  The libjpeg check takes
    4-7 ms of a core per 1080p file, so a lane that keeps up with a GPU's JPEG engines needs a core each.
    HARNESS_READ_WORKERS=N sets the number, to measure what the cores left to the decoders are worth."""
    chosen = os.environ.get("HARNESS_READ_WORKERS")
    if chosen:
        if not (chosen.isascii() and chosen.isdigit()) or not 1 <= int(chosen) <= MAX_READ_WORKERS:
            raise HarnessError(f"HARNESS_READ_WORKERS={chosen!r} is not a number of threads: give 1 to "
                               f"{MAX_READ_WORKERS}, or unset it")
        return int(chosen)
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


class Reader:
    """The reading process and the memory its batches come back in: an anonymous file (memfd) that it
    inherits, so that nothing is left behind however the run ends."""

    def __init__(self):
        path = os.pathsep.join(entry for entry in sys.path if entry)  # the harness this process imported
        self.memory_fd = os.memfd_create("harness-read")
        self.memory: mmap.mmap | None = None
        self.process = subprocess.Popen([sys.executable, "-m", "harness.reading", str(self.memory_fd)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=[self.memory_fd],
                                        env={**os.environ, "PYTHONPATH": path})
        self.requests = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.answers = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.lock = threading.Lock()  # one batch at a time

    def read(self, paths: list[Path], strict: bool, workers: int) -> list[JpegFile | str]:
        """One request and one answer: each system call here would wait for the interpreter lock again,
        which the lanes' threads hold in turn (32 stat calls of the files cost 80-120 ms a batch beside
        three busy Python threads, against 0.1 ms alone), so the reading process sizes the memory itself."""
        with self.lock:
            try:
                self.requests.send((paths, strict, workers))
                files, size = self.answers.recv()
            except (EOFError, OSError):
                raise HarnessError("the process reading the input files died (out of memory, or killed): "
                                   "rerun, with fewer or smaller files") from None
            if isinstance(files, BaseException):
                raise files
            if size and (self.memory is None or len(self.memory) < size):  # it grew the memory
                grown = mmap.mmap(self.memory_fd, size)
                if self.memory is not None:
                    self.memory.close()
                self.memory = grown
            return [JpegFile(file[0], self.memory[file[1]:file[1] + file[2]], *file[3:])
                    if isinstance(file, tuple) else file for file in files]

    def close(self) -> None:
        """Close the pipe (the process exits on it) and the memory; kill the process if it lingers."""
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


_reader: Reader | None = None


def in_threads() -> bool:
    """HARNESS_READERS=threads: the files are read in threads of this process, to measure the difference."""
    return os.environ.get("HARNESS_READERS") == "threads"


def read_files(paths: list[Path], strict: bool, workers: int | None = None) -> list[JpegFile | str]:
    """Per path, its inputs.JpegFile or why it cannot be used, in order, `workers` (read_workers()) at a
    time.  HARNESS_READERS=threads reads them in threads of this process instead, to measure the
    difference."""
    global _reader
    workers = workers or read_workers()
    if in_threads():
        return read_batch(paths, strict, workers)
    if _reader is None or _reader.process.poll() is not None:
        _reader = Reader()
        atexit.register(_reader.close)
    return _reader.read(paths, strict, workers)


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


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    incoming, outgoing = Connection(os.dup(0), writable=False), Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # whatever prints, prints to the terminal, not into the pipe
    _serve(incoming, outgoing, int(sys.argv[1]))
