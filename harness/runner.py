"""Running a list of (input file, output name) jobs through a pipeline: read a batch of files, run it,
write each overlay atomically.  The sample-workload benchmark and the multi-process runner share it
(the command line keeps its own loop, which also prints the sample's progress messages)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.inputs import BadImage, batches, read_jpeg, write_atomic
from harness.pipeline import Pipeline


@dataclass
class JobsResult:
    written: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # bad files, with the reason
    batch_seconds: list[float] = field(default_factory=list)  # host time of each batch, read through write


def run_jobs(pipeline: Pipeline, jobs: list[tuple[Path, str]], out_dir: Path, batch_size: int,
             report_skips: bool = True) -> JobsResult:
    """Bad files are skipped (and reported on stderr), as in a directory run of the command line."""
    result = JobsResult()
    for batch in batches(jobs, batch_size):
        started = time.perf_counter()
        readable = []
        for path, name in batch:
            try:
                readable.append((read_jpeg(path), name))
            except BadImage as error:
                result.skipped.append((path, str(error)))
        if readable:
            out = pipeline.run([jpeg.data for jpeg, _ in readable])
            result.skipped += [(readable[index][0].path, reason) for index, reason in out.failed]
            for index, data in zip(out.done, out.jpegs):
                write_atomic(out_dir / readable[index][1], data)
                result.written += 1
        result.batch_seconds.append(time.perf_counter() - started)
    if report_skips:
        for path, reason in result.skipped:
            print(f"Skipping {path}: {reason}", file=sys.stderr)
    return result
