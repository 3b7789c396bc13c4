"""Running a list of (input file, output name) jobs through a pipeline: read a batch of files, run it,
write each overlay atomically.  The command line, the sample-workload benchmark and the multi-process
runner all use it.

With overlap_io (the default) reader threads read and check the next batch's files and a writer thread
writes the last batch's overlays while the pipeline runs: the GPU no longer waits for file I/O between
batches.  Those threads touch files only, never CUDA.  A bad file is skipped with its reason and the rest
go on; a failed write (a full disk) stops the run at the next batch.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.inputs import BadImage, JpegFile, batches, read_jpeg, write_atomic
from harness.pipeline import Pipeline

READERS = min(8, os.cpu_count() or 1)  # the strict JPEG check is CPU work: a few files at once


@dataclass
class JobsResult:
    written: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # bad files, with the reason
    batch_seconds: list[float] = field(default_factory=list)  # the pipeline thread's time per batch


def _print_skip(path: Path, reason: str) -> None:
    print(f"Skipping {path}: {reason}", file=sys.stderr)


def _read(path: Path, strict: bool) -> JpegFile | str:
    try:
        return read_jpeg(path, strict)
    except BadImage as error:
        return str(error)


def _write(items: list[tuple[Path, bytes]]) -> list[Path]:
    for target, data in items:
        write_atomic(target, data)
    return [target for target, _ in items]


def _later(pool: ThreadPoolExecutor | None, fn, *args) -> Future:
    """fn(*args) on the pool's thread, or now when there is no pool."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except Exception as error:  # raised where the result is read, as from a pool
        done.set_exception(error)
    return done


def run_jobs(pipeline: Pipeline, jobs: list[tuple[Path, str]], out_dir: Path, batch_size: int,
             overlap_io: bool = True, strict_jpeg: bool = True,
             on_batch: Callable[[int, int, JobsResult], None] | None = None,
             on_skip: Callable[[Path, str], None] = _print_skip,
             on_written: Callable[[Path], None] | None = None) -> JobsResult:
    """Every job is written or skipped (on_skip(path, reason): printed by default; raise there to stop the
    run).  on_batch(number, total, result so far) runs before each batch, on_written(path) after each write,
    both on the calling thread and in input order.  strict_jpeg=False lets files that libjpeg calls corrupt
    through to the decoders (--lenient)."""
    result = JobsResult()
    groups = list(batches(jobs, batch_size))
    reader = ThreadPoolExecutor(READERS, thread_name_prefix="harness-read") if overlap_io else None
    writer = ThreadPoolExecutor(1, thread_name_prefix="harness-write") if overlap_io else None

    def read(group):
        return [_later(reader, _read, path, strict_jpeg) for path, _ in group]

    def collect(writes: list[Future], wait: bool) -> None:
        while writes and (wait or writes[0].done()):
            for target in writes.pop(0).result():  # a failed write raises here and stops the run
                result.written += 1
                if on_written:
                    on_written(target)

    try:
        writes: list[Future] = []
        upcoming = read(groups[0]) if groups else []
        for number, group in enumerate(groups, start=1):
            if on_batch:
                on_batch(number, len(groups), result)
            started = time.perf_counter()
            files = [future.result() for future in upcoming]
            if number < len(groups):
                upcoming = read(groups[number])
            readable = []
            for (path, name), file in zip(group, files):
                if isinstance(file, str):
                    result.skipped.append((path, file))
                    on_skip(path, file)
                else:
                    readable.append((file, name))
            if readable:
                out = pipeline.run([file.data for file, _ in readable])
                for index, reason in out.failed:
                    result.skipped.append((readable[index][0].path, reason))
                    on_skip(readable[index][0].path, reason)
                items = [(out_dir / readable[index][1], data) for index, data in zip(out.done, out.jpegs)]
                writes.append(_later(writer, _write, items))
            result.batch_seconds.append(time.perf_counter() - started)
            collect(writes, wait=False)
        collect(writes, wait=True)
    finally:
        for pool in (reader, writer):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    return result
