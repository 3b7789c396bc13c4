"""What the benchmark suites share: inputs made from real photographs, GPU-honest timing, and the flat
metadata every JSON entry carries (so that reports need no parsing)."""

from __future__ import annotations

import contextlib
import functools
import io
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pytest_benchmark.stats import Stats

from harness.inputs import sample_dir
from harness.results import Record
from harness.timing import StageClock

SOURCE_SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920)}  # name: (height, width)
NOISE_THRESHOLD = 0.05  # relative IQR above which a result is flagged "noisy"
TIMER_NOTE = {"cuda": "CUDA events on the current stream around each round (torch.cuda.synchronize() in the untimed "
                      "setup before it and at the end of the timed call): the samples are the GPU's time for the "
                      "round; the host perf_counter median of the same rounds is host_median_s",
              "cuda-blocked": "CUDA events behind a blocking kernel: each round is queued behind a GPU sleep "
                              "longer than "
                              "the host takes to launch it, then timed by events on the current stream (nvbench's "
                              "blocking kernel): the samples are the GPU's own time, without the host's launch gaps; "
                              "the host perf_counter median of the same rounds is host_median_s",
              "cpu": "host perf_counter around each round"}
#: Whole runs (files through the executor, batches in a loop): at least this many, then as many as the noise
#: asks for within the budget.  Their batches were tried as samples and were too bursty under overlap (IQR
#: 20-60% of the median on the H100) for the gate to see a 10% slowdown.
WHOLE_RUN_ROUNDS = 5
WHOLE_RUN_BUDGET_S = 8.0


def photographs(source: str, count: int) -> list[bytes]:
    """`count` JPEGs (quality 90) of the shipped photographs scaled to the source size, cycling through them."""
    encoded = _scaled_photographs(source)
    return [encoded[i % len(encoded)] for i in range(count)]


@contextlib.contextmanager
def busy_python(threads: int):
    """`threads` threads that run only Python while the block runs, holding the interpreter lock in turn as
    the lanes' threads do: what the host-lane probes (tools/read_lane_check.py, decode_check.py) time
    beside."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i * i

    spinning = [threading.Thread(target=spin, name="harness-busy") for _ in range(threads)]
    for thread in spinning:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in spinning:
            thread.join()


@functools.lru_cache(maxsize=None)
def _scaled_photographs(source: str) -> tuple[bytes, ...]:
    """Made once per source size: every benchmark case's setup would otherwise re-encode them."""
    height, width = SOURCE_SIZES[source]
    photos = [p for p in sorted(sample_dir().glob("*.jpg")) if p.stem != "camera"]
    encoded = []
    for path in photos:
        image = Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        encoded.append(buffer.getvalue())
    return tuple(encoded)


def synchronizer(device: torch.device):
    """A no-op on the CPU, a device synchronize on a GPU."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class L2Flusher:
    """Writes a buffer twice the size of the GPU's L2 cache, so that the next round starts with a cold L2."""

    def __init__(self, device: torch.device):
        l2 = 0
        if device.type == "cuda":
            l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
        self.buffer = torch.empty(max(2 * l2, 1), dtype=torch.uint8, device=device)

    def __call__(self) -> None:
        self.buffer.fill_(0)


def stats_of(samples: list[float]) -> Stats:
    """pytest-benchmark's own statistics of `samples`, as its JSON files and compare compute them."""
    stats = Stats()
    for value in samples:
        stats.update(value)
    return stats


def relative_iqr(samples: list[float]) -> float:
    """IQR / median as pytest-benchmark's own Stats computes them from the same samples: the one noise figure,
    the same in `noise_rel_iqr` and in the stored statistics (np.percentile's quartiles differed from them)."""
    stats = stats_of(samples)
    return float(stats.iqr / stats.median) if stats.median > 0 else 0.0


@dataclass(frozen=True)
class Case:
    """One benchmark case, in the suites' shorthand; `record` spells it out as a results record."""

    stage: str  # a stage name, or "end_to_end" / "throughput"
    engine: str  # ops engine, decoder or backend name
    device: str
    precision: str
    batch_size: int
    model_size: tuple[int, int]
    source: str  # a SOURCE_SIZES name, or "" where no image is involved (the copy-bandwidth case)
    variant: str = ""  # e.g. the blur mode, or "uninstrumented" for an end-to-end run without stage timing

    def record(self, seconds: float, **measured) -> Record:
        """The case with its throughput for one batch taking `seconds` (images/s, source megapixels/s)."""
        height, width = SOURCE_SIZES.get(self.source, (None, None))
        images = self.batch_size / seconds
        return Record(stage=self.stage, engine=self.engine, variant=self.variant, device=self.device,
                      precision=self.precision, batch_size=self.batch_size, model_height=self.model_size[0],
                      model_width=self.model_size[1], source=self.source, source_height=height,
                      source_width=width, images_per_s=images,
                      megapixels_per_s=images * (height or 0) * (width or 0) / 1e6, **measured)


PILOT_ROUNDS = 3  # timed after the warm-up, before pytest-benchmark's rounds: the noise that sets their number
NOTCH = 1.57  # McGill et al.: the median's ~95% confidence half-width is 1.57 IQR / sqrt(n)
MAX_ROUNDS = 1000  # whatever the budget allows: the raw samples go into the JSON and the gate's bootstrap


def choose_rounds(pilot: list[float], minimum: int, budget_s: float, target: float) -> tuple[int, str]:
    """nvbench-style stopping, decided from a pilot (pytest-benchmark's pedantic mode takes a number of
    rounds, not a stopping rule): enough rounds for the median's relative confidence half-width
    (NOTCH * IQR / sqrt(n) / median) to fall under `target`, at least `minimum`, at most what `budget_s`
    of rounds at the pilot's median allows, and at most MAX_ROUNDS.  Returns (rounds, why: minimum, target or
    budget)."""
    noise = relative_iqr(pilot) if len(pilot) > 1 else 0.0
    needed = math.ceil((NOTCH * noise / target) ** 2) if target > 0 else minimum
    median = float(np.median(pilot)) if pilot else 0.0
    affordable = max(minimum, int(budget_s / median)) if median > 0 else minimum
    affordable = min(affordable, max(minimum, MAX_ROUNDS))
    if needed <= minimum:
        return minimum, "minimum"
    return (needed, "target") if needed <= affordable else (affordable, "budget")


def median_confidence(samples: list[float]) -> float:
    """The median's relative ~95% confidence half-width: NOTCH * IQR / sqrt(n) / median."""
    return relative_iqr(samples) * NOTCH / math.sqrt(len(samples)) if samples else float("inf")


def whole_runs(settings: dict) -> dict:
    """The settings for a case whose round is a whole run: WHOLE_RUN_ROUNDS at least, WHOLE_RUN_BUDGET_S."""
    return {**settings, "rounds": WHOLE_RUN_ROUNDS, "cpu_rounds": 3, "budget_s": WHOLE_RUN_BUDGET_S}


def keep_samples(benchmark, samples: list[float]) -> None:
    """Make `samples` the entry's raw data, pytest-benchmark's statistics recomputed from them by its own
    Stats, so that its compare, its tables and the gate read the same numbers."""
    benchmark.stats.stats = stats_of(samples)


@functools.lru_cache(maxsize=None)
def sleep_cycles_per_ms(device: torch.device) -> float:
    """torch.cuda._sleep's spin cycles per millisecond on this GPU, timed once with events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.device(device):
        torch.cuda._sleep(1_000_000)  # the first launch loads the kernel
        start.record()
        torch.cuda._sleep(20_000_000)
        end.record()
        end.synchronize()
    return 20_000_000 / start.elapsed_time(end)


def block_ms(launch_s: list[float]) -> float:
    """The blocking kernel's sleep: twice the typical launch past the first call (whose lazy set-up can take
    seconds) plus 50 us, at most 10 ms; a round whose launch takes longer shows as an outlier, not a hang."""
    return min(10.0, 2e3 * float(np.median(launch_s[1:])) + 0.05)


def blocking_kernel(device: torch.device, milliseconds: float):
    """A callable that queues a GPU sleep of `milliseconds`: the work launched after it waits on the GPU until
    the host has queued all of it."""
    cycles = int(sleep_cycles_per_ms(device) * milliseconds)
    return lambda: torch.cuda._sleep(cycles)


def measure(benchmark, fn, device: torch.device, settings: dict, case: Case, warmup: int = 2,
            unit: str = "round", block: bool = False, between=None) -> dict:
    """Time `fn` with pytest-benchmark in pedantic mode and record the case, the throughput at the median,
    the noise, the L2 state and, on a GPU, the CUDA-event duration of each timed round.  Returns that
    record, or {} under --benchmark-disable.

    Rounds adapt to the noise where settings["budget_s"] > 0: after `warmup` untimed calls, PILOT_ROUNDS
    timed ones estimate it, and choose_rounds picks the number of rounds that brings the median's confidence
    half-width under settings["target_ci"] within that budget (at least the configured rounds).  Without a
    budget (--bench-budget-s 0) the configured rounds run after `warmup`.  `unit` names what one sample is
    ("round", or "run" for whole runs).

    `block` (GPU cases whose round does not wait for the GPU itself: a stage's kernels) queues each round
    behind a blocking kernel, so that its events time the GPU's work and not the host's launches: without it
    a small kernel's event time is the Python launch time whenever the GPU runs ahead of the host, bimodal
    and different from one process to the next.  `between`, where given, runs before each round's setup and
    is not timed (a paired measurement of the same round's twin)."""
    sync = synchronizer(device)
    cold = settings["l2"] == "cold" and device.type == "cuda"
    flush = L2Flusher(device) if cold else None
    clocks: list[StageClock] = []  # one per round on a GPU: its CUDA events, read after the rounds
    block = block and device.type == "cuda"
    launch_s: list[float] = []  # host time to launch one round (its work queued, not waited for)
    sleeper, sleep_ms = None, None

    def setup():
        if between is not None:
            between()
        if flush is not None:
            flush()
        sync()

    def target():
        if device.type == "cuda":
            if sleeper is not None:
                sleeper()
            clocks.append(StageClock(device))
            with clocks[-1].stage("round"):
                fn()
        else:
            fn()
        sync()

    if block:  # the warm-up here, timing the launches that the blocking kernel must outlast
        for _ in range(max(warmup, 3)):
            setup()
            started = time.perf_counter()
            fn()
            launch_s.append(time.perf_counter() - started)
            sync()
        sleep_ms = block_ms(launch_s)
        sleeper, warmup = blocking_kernel(device, sleep_ms), 0

    minimum = settings["rounds"] if device.type == "cuda" else settings.get("cpu_rounds", settings["rounds"])
    rounds, why, pilot, budget = minimum, "fixed", [], settings.get("budget_s", 0.0)
    if budget > 0 and not getattr(benchmark, "disabled", False):  # adaptive: warm-up and pilot here
        for index in range(warmup + PILOT_ROUNDS):
            setup()
            started = time.perf_counter()
            fn()
            sync()
            if index >= warmup:
                pilot.append(time.perf_counter() - started)
        rounds, why = choose_rounds(pilot, minimum, budget, settings.get("target_ci", 0.0))
    benchmark.group = case.stage  # pytest-benchmark's tables and ratios compare cases of one stage only
    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0 if pilot else warmup, iterations=1)
    if benchmark.stats is None:  # --benchmark-disable: the case ran once, as a smoke test; nothing was timed
        return {}
    host_median = benchmark.stats.stats.median
    skipped = 0 if pilot else warmup  # pedantic's warm-up rounds come first; --benchmark-cprofile adds one after
    gpu_ms = [clock.result()["round"] for clock in clocks[skipped:skipped + rounds]]  # the timed rounds' only
    if gpu_ms:  # a GPU round's launch and synchronize jitter on the host; its events time the GPU's work
        keep_samples(benchmark, [ms / 1e3 for ms in gpu_ms])
    stats = benchmark.stats.stats
    noise = relative_iqr(stats.data)
    power = sample_power(stats.data, unit)
    timer = TIMER_NOTE["cuda-blocked" if block else device.type]
    record = case.record(stats.median, timer=timer, median_s=stats.median, host_median_s=host_median,
                         l2=("cold" if cold else "hot") if device.type == "cuda" else None,
                         noise_rel_iqr=noise, noisy=noise > NOISE_THRESHOLD, rounds=rounds, warmup_rounds=warmup,
                         pilot_rounds=len(pilot), rounds_stop=why, ci_target=settings.get("target_ci"),
                         ci_budget_s=settings.get("budget_s"), ci_rel=median_confidence(stats.data), **power,
                         block_ms=sleep_ms,
                         cuda_event_ms=gpu_ms or None,
                         cuda_event_median_ms=float(np.median(gpu_ms)) if gpu_ms else None)
    info = record.info()
    benchmark.extra_info.update(info)
    return info


def sample_power(samples: list[float], unit: str = "round", process=None) -> dict:
    """How many samples a case has and the smallest slowdown the regression gate (its defaults) would flag
    with them: a slowdown s is flagged when (1 + s) times the low end of the case's ratio interval against
    itself exceeds 1 + threshold (harness.report.gate; `process`: each sample's process, as it resamples)."""
    from harness.report.gate import DEFAULT_THRESHOLD, ratio_interval

    low, _ = ratio_interval(list(samples), list(samples), alpha=0.01, base_process=process, cand_process=process)
    detectable = (1 + DEFAULT_THRESHOLD) / low - 1 if low > 0 else None
    return dict(sample_count=len(samples), sample_unit=unit, detectable_slowdown=detectable)


def median_interval(values, confidence: float = 0.95) -> list[float]:
    """The median's percentile-bootstrap interval (fewer than 3 values: none)."""
    from scipy.stats import bootstrap

    values = np.asarray(values, float)
    if len(values) < 3 or np.ptp(values) == 0:
        return [float(np.median(values))] * 2 if len(values) else [float("nan")] * 2
    result = bootstrap((values,), np.median, confidence_level=confidence, n_resamples=2000, method="percentile",
                       rng=np.random.default_rng(0))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


def paired_breakdown(samples_s: list[float], round_stage_ms: dict | None, round_paired_ms: list | None) -> dict:
    """Breakdowns from the same rounds, never from medians taken apart: what a round's stage events leave
    unattributed (its time less the sum of its stages, `round_stage_ms`), and what instrumentation costs
    (`round_paired_ms`, an instrumented twin run right before each uninstrumented round: twin / round - 1);
    each the median of the per-round values with its 95% interval."""
    total = np.asarray(samples_s, float) * 1e3
    out = {}
    if round_stage_ms:
        stage_sum = np.sum([np.asarray(v, float) for v in round_stage_ms.values()], axis=0)
        unattributed = total - stage_sum
        out.update(stage_ms={s: float(np.median(v)) for s, v in round_stage_ms.items()},
                   stage_sum_ms=float(np.median(stage_sum)), end_to_end_ms=float(np.median(total)),
                   unattributed_ms=float(np.median(unattributed)),
                   unattributed_ms_interval=median_interval(unattributed),
                   unattributed_fraction=float(np.median(unattributed / total)),
                   unattributed_fraction_interval=median_interval(unattributed / total))
        out["stage_fraction"] = {s: v / out["end_to_end_ms"] for s, v in out["stage_ms"].items()}
    if round_paired_ms:
        cost = np.asarray(round_paired_ms, float) / total - 1
        out.update(instrumentation_cost=float(np.median(cost)), instrumentation_cost_interval=median_interval(cost))
    return out


@functools.lru_cache(maxsize=None)
def flops_per_image(model: str, height: int, width: int, aux_head: bool = False) -> int:
    """Floating-point operations (2 per multiply-add) of one forward pass at this size, counted by
    PyTorch's FlopCounterMode on the meta device: no memory, no time, exact for the convolutions."""
    from torch.utils.flop_counter import FlopCounterMode

    from harness.models import architecture

    with torch.device("meta"):
        module = architecture(model, aux_head).eval()
        x = torch.empty(1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return int(counter.get_total_flops())
