"""Does a busy Python thread slow the executor's reading threads (the read lane: files read and checked by
libjpeg on 8 threads), and does a shorter interpreter switch interval help?  64 real 1920x1080 JPEGs, read
alone and beside a thread that only runs Python, at Python's 5 ms switch interval and at 0.5 ms; the best of 3.
Usage: python tools/read_lane_check.py"""

import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.benchkit import photographs
from harness.inputs import read_jpeg
from harness.runner import READERS, write_jobs


def busy(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i * i


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    paths = [path for path, _ in write_jobs(photographs("1920x1080", 64), folder)]
    for interval in (0.005, 0.0005):
        sys.setswitchinterval(interval)
        with ThreadPoolExecutor(READERS) as pool:
            def read_all() -> float:
                started = time.perf_counter()
                list(pool.map(lambda path: read_jpeg(path, True), paths))
                return time.perf_counter() - started

            read_all()
            alone = min(read_all() for _ in range(3))
            stop = threading.Event()
            thread = threading.Thread(target=busy, args=(stop,))
            thread.start()
            loaded = min(read_all() for _ in range(3))
            stop.set()
            thread.join()
        print(f"switch interval {interval * 1e3:.1f} ms: 64 files alone {alone:.3f} s, "
              f"beside a busy Python thread {loaded:.3f} s")


if __name__ == "__main__":
    main()
