"""Does Python work on other threads slow the read lane (files read and checked by libjpeg), in threads of
this process (HARNESS_READERS=threads) and in harness.reading's process, and how many files a second does
each number of reader threads check?  FILES real 1920x1080 JPEGs in batches of 32, read alone and beside
BUSY threads that only run Python (as the lanes' threads do), the best of 3 each.  With --writes, the same
for writing them back (harness.reading.write_files; HARNESS_WRITERS=threads: by this process).  With
--ceiling, the same files read and checked in as many processes of their own, nothing handed back: what
the host's cores allow, against which the reading process's threads and its hand-over are seen.
Usage: python tools/read_lane_check.py [BUSY=3] [--files 64 | --images DIR] [--workers 8,14]
       [--modes threads,process] [--writes] [--ceiling]  (one line per mode and number of workers,
       default harness.reading.read_workers(); JSON with --json FILE)"""

import argparse
import json
import multiprocessing
import tempfile
import time
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harness.inputs import read_jpeg

if __name__ == "__main__":  # not in --ceiling's processes, which import this file: they need read_jpeg only
    from harness.benchkit import busy_python, photographs
    from harness.reading import read_files, read_workers, write_files
    from harness.runner import write_jobs


def warm_best_of_3(work) -> float:
    """Seconds of the best of 3 runs of `work`, after one that warms up (processes started, files in the page
    cache)."""
    work()
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def best_of_3(paths: list[Path], workers: int, batch: int = 32, out: Path | None = None) -> float:
    """Reading the files in batches, or with `out` writing their bytes there (workers unused)."""
    datas = [path.read_bytes() for path in paths] if out else []

    def read_all() -> None:
        for at in range(0, len(paths), batch):
            if out:
                write_files([out / path.name for path in paths[at:at + batch]], datas[at:at + batch])
            else:
                read_files(paths[at:at + batch], True, workers)

    return warm_best_of_3(read_all)


def _check_share(paths: list[Path]) -> int:
    return len([read_jpeg(path, True) for path in paths])


def ceiling(paths: list[Path], workers: int) -> float:
    """Best of 3: the files read and checked in `workers` processes, a share each, nothing handed back."""
    shares = [paths[at::workers] for at in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        def check_all() -> None:
            assert sum(pool.map(_check_share, shares)) == len(paths)

        return warm_best_of_3(check_all)


def alone_and_beside_busy(busy_count: int, measure) -> tuple[float, float]:
    alone = measure()
    with busy_python(busy_count):
        return alone, measure()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("busy", nargs="?", type=int, default=3)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--images", help="a folder of JPEGs to read instead (its first --files)")
    parser.add_argument("--workers", help="comma-separated numbers of reader threads to measure")
    parser.add_argument("--modes", default="threads,process", help="where the files are read (HARNESS_READERS)")
    parser.add_argument("--writes", action="store_true", help="measure writing the files back too")
    parser.add_argument("--ceiling", action="store_true",
                        help="also read and check the files in as many processes, nothing handed back")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.images:
        paths = sorted(Path(args.images).glob("*.jpg"))[:args.files]
    else:
        paths = [path for path, _ in write_jobs(photographs("1920x1080", args.files), Path(tempfile.mkdtemp()))]
    counts = [int(n) for n in args.workers.split(",")] if args.workers else [read_workers()]
    results = {"files": len(paths), "workers": read_workers(), "busy_threads": args.busy, "runs": []}
    for workers in counts:
        for mode in args.modes.split(","):
            os.environ["HARNESS_READERS"] = mode  # read_files reads it on each call
            alone, loaded = alone_and_beside_busy(args.busy, lambda: best_of_3(paths, workers))
            results["runs"].append({"mode": mode, "workers": workers, "alone_s": alone, "beside_busy_s": loaded})
            print(f"{mode}: {len(paths)} files in batches of 32 on {workers} threads alone {alone:.3f} s "
                  f"({len(paths) / alone:.0f} files/s), beside {args.busy} busy Python threads {loaded:.3f} s "
                  f"({len(paths) / loaded:.0f} files/s)")
        if args.ceiling:
            alone = ceiling(paths, workers)
            results["runs"].append({"mode": "processes", "workers": workers, "alone_s": alone})
            print(f"ceiling: {len(paths)} files read and checked by {workers} processes, nothing handed back, "
                  f"{alone:.3f} s ({len(paths) / alone:.0f} files/s)")
    if args.writes:
        for mode in args.modes.split(","):
            os.environ["HARNESS_WRITERS"] = mode  # write_files reads it on each call
            out = Path(tempfile.mkdtemp())
            alone, loaded = alone_and_beside_busy(args.busy, lambda: best_of_3(paths, 0, out=out))
            results["runs"].append({"mode": mode, "writes": True, "alone_s": alone, "beside_busy_s": loaded})
            print(f"{mode}: {len(paths)} files written in batches of 32 alone {alone:.3f} s, beside {args.busy} "
                  f"busy Python threads {loaded:.3f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
