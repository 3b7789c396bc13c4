"""Stage timing and NVTX ranges: one helper for the pipeline, the benchmarks and the tests.

On a GPU each stage records a CUDA event pair on the stream the work runs on and nothing waits: the
durations are read after the batch's single synchronization (`StageClock.result`).  On the CPU the
host clock is read around each stage.  Every stage is also an NVTX range named after it, so Nsight
Systems timelines use the same vocabulary.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import nvtx
import torch


class StageClock:
    def __init__(self, device: torch.device):
        self.device = device
        self.gpu = device.type == "cuda"
        self._marks: list[tuple[str, object, object]] = []
        self.current = ""  # the stage running now, to name it when it fails

    def _now(self):
        if self.gpu:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            return event
        return time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.current = name
        with nvtx.annotate(name, domain="harness"):
            start = self._now()
            yield
            self._marks.append((name, start, self._now()))

    def result(self) -> dict[str, float]:
        """Milliseconds per stage (summed if a stage ran twice), plus 'total' from the first start to the last
        end.  On a GPU this waits for the last event: call it once, after the batch."""
        if not self._marks:
            return {"total": 0.0}
        if self.gpu:
            self._marks[-1][2].synchronize()
            elapsed = lambda a, b: a.elapsed_time(b)  # noqa: E731
        else:
            elapsed = lambda a, b: (b - a) * 1e3  # noqa: E731
        out: dict[str, float] = {}
        for name, start, end in self._marks:
            out[name] = out.get(name, 0.0) + elapsed(start, end)
        out["total"] = elapsed(self._marks[0][1], self._marks[-1][2])
        return out

    def spans(self, origin) -> list[tuple[str, float, float]]:
        """(stage, start_s, end_s) per stage, in seconds since `origin`: a CUDA event recorded before the
        batch on a GPU, a perf_counter reading on the CPU.  After result()."""
        if self.gpu:
            since = lambda mark: origin.elapsed_time(mark) / 1e3  # noqa: E731
        else:
            since = lambda mark: mark - origin  # noqa: E731
        return [(name, since(start), since(end)) for name, start, end in self._marks]


class NullClock:
    """The same interface, recording nothing: for measuring what StageClock itself costs."""

    def __init__(self, device: torch.device | None = None):
        self.current = ""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.current = name
        yield

    def result(self) -> dict[str, float]:
        return {}


def median_cuda_ms(fn, runs: int = 20, warmup: int = 3) -> float:
    """The median of cuda_times_ms."""
    import statistics

    return float(statistics.median(cuda_times_ms(fn, runs, warmup)))


def cuda_times_ms(fn, runs: int = 20, warmup: int = 3) -> list[float]:
    """`fn`'s GPU time in milliseconds for each of `runs` calls after `warmup` untimed ones, each between two
    CUDA events on the current stream: the tools' probes (tools/compile_bench.py, blur_bench.py,
    fused_conv_probe.py, decode_check.py) time with this one function; the benchmark suites use
    harness.benchkit.measure."""
    times = []
    for index in range(warmup + runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        if index >= warmup:
            times.append(start.elapsed_time(end))
    return times
