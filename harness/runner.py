"""Running a list of (input file, output name) jobs through a pipeline: read a batch of files, run it,
write each overlay atomically.  The sample-workload benchmark and the multi-process runner share it
(the command line keeps its own loop, which also prints the sample's progress messages).

With overlap_io (the default) one thread reads and checks the next batch's files and another writes the
last batch's overlays while the pipeline runs: the GPU no longer waits for file I/O between batches.
Those threads touch files only, never CUDA.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.inputs import BadImage, JpegFile, batches, read_jpeg, write_atomic
from harness.pipeline import Pipeline


@dataclass
class JobsResult:
    written: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # bad files, with the reason
    batch_seconds: list[float] = field(default_factory=list)  # the pipeline thread's time per batch


def _read(batch: list[tuple[Path, str]]) -> tuple[list[tuple[JpegFile, str]], list[tuple[Path, str]]]:
    readable, skipped = [], []
    for path, name in batch:
        try:
            readable.append((read_jpeg(path), name))
        except BadImage as error:
            skipped.append((path, str(error)))
    return readable, skipped


def _write(items: list[tuple[Path, bytes]]) -> int:
    for target, data in items:
        write_atomic(target, data)
    return len(items)


def _later(pool: ThreadPoolExecutor | None, fn, *args) -> Future:
    """fn(*args) on the pool's thread, or now when there is no pool."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future = Future()
    done.set_result(fn(*args))
    return done


def run_jobs(pipeline: Pipeline, jobs: list[tuple[Path, str]], out_dir: Path, batch_size: int,
             report_skips: bool = True, overlap_io: bool = True) -> JobsResult:
    """Bad files are skipped (and reported on stderr), as in a directory run of the command line."""
    result = JobsResult()
    groups = list(batches(jobs, batch_size))
    reader = ThreadPoolExecutor(1, thread_name_prefix="harness-read") if overlap_io else None
    writer = ThreadPoolExecutor(1, thread_name_prefix="harness-write") if overlap_io else None
    try:
        writes = []
        upcoming = _later(reader, _read, groups[0]) if groups else None
        for number in range(len(groups)):
            started = time.perf_counter()
            readable, skipped = upcoming.result()
            if number + 1 < len(groups):
                upcoming = _later(reader, _read, groups[number + 1])
            result.skipped += skipped
            if readable:
                out = pipeline.run([jpeg.data for jpeg, _ in readable])
                result.skipped += [(readable[index][0].path, reason) for index, reason in out.failed]
                items = [(out_dir / readable[index][1], data) for index, data in zip(out.done, out.jpegs)]
                writes.append(_later(writer, _write, items))
            result.batch_seconds.append(time.perf_counter() - started)
        result.written = sum(write.result() for write in writes)  # a failed write raises here
    finally:
        for pool in (reader, writer):
            if pool is not None:
                pool.shutdown(wait=True)
    if report_skips:
        for path, reason in result.skipped:
            print(f"Skipping {path}: {reason}", file=sys.stderr)
    return result
