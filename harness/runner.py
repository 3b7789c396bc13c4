"""Running a list of (input file, output name) jobs through a pipeline: read a batch of files, decode,
compute, encode, write each overlay atomically.  The command line, the sample-workload benchmark and the
multi-process runner all use `run_jobs`.

Two executors:

- "overlapped" (the default): each phase is a lane with its own thread (and, on a GPU, its own CUDA
  stream), and up to `depth` batches wait between two lanes.  While batch k is in inference, batch k+1 is
  being decoded and batch k-1 encoded and written, so the hardware JPEG decoder, the SMs and the encoder
  work at the same time (with nvImageCodec, decode and encode take turns on the host: codecs_take_turns).
  Lanes hand tensors over with CUDA events; nothing waits for the host but encode.
- "sequential": one batch at a time through every stage on the calling thread: the easiest to read
  per-stage times from, and the reference the overlapped executor is tested against.

Either way every job is written or skipped with its reason, in input order; a batch that fails in a lane
is run again by `Pipeline.run`, which retries it image by image, so one bad image costs only itself.  A
batch over inputs.MAX_BATCH_PIXELS goes to `Pipeline.run` too, which runs it in parts within that budget.
Errors that stop a run (out of memory, a broken GPU, a HarnessError, a failed write) stop every lane.
The lanes' busy time in the steady window gives the pipelining bound: the rate the slowest lane allows;
`JobsResult.spans` is the run's timeline (harness.trace writes it for Perfetto).  The read lane hands each
batch to harness.reading's reading process, and the write lane each batch's overlays to its writing process.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from harness import LANES, HarnessError
from harness.config import check_executor
from harness.errors import stops_the_run
from harness.inputs import MAX_BATCH_PIXELS, JpegFile, batches
from harness.pipeline import Pipeline
from harness.reading import read_files, write_files
from harness.timing import NullClock, StageClock



@dataclass
class JobsResult:
    written: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # bad files, with the reason
    batch_seconds: list[float] = field(default_factory=list)  # wall time between two finished batches
    lanes: list[dict[str, float]] = field(default_factory=list)  # per batch: seconds each lane was busy
    timings_ms: list[dict[str, float]] = field(default_factory=list)  # per batch: per-stage milliseconds
    #: The timeline: [lane, batch, stage or None for the lane's whole span, clock ("host": perf_counter, or
    #: "cuda": CUDA events), start_s, end_s], seconds since the run's start (the CUDA origin is an event the
    #: GPU reached at the start: the two clocks agree to within the time that event waited).
    spans: list[list] = field(default_factory=list)
    batch_written: list[int] = field(default_factory=list)  # overlays written per batch
    seconds: float = 0.0  # the whole run, first read to last write
    #: per batch: the CPU seconds each lane's thread used while it worked on the batch (time.thread_time): the
    #: host work that needs a core, and in Python the interpreter lock, which one thread holds at a time
    lane_cpu: list[dict[str, float]] = field(default_factory=list)
    process_cpu_seconds: float = 0.0  # every thread of the pipeline's process over the run (time.process_time)
    images: int = 0  # images that reached the pipeline
    executor: str = ""
    depth: int = 0

    def lane_seconds(self) -> dict[str, float]:
        """Each lane's busy time over the whole run."""
        return {lane: sum(batch.get(lane, 0.0) for batch in self.lanes) for lane in LANES}

    def lane_cpu_seconds(self) -> dict[str, float]:
        """Each lane thread's CPU time over the whole run.  Their sum near the run's seconds says the lanes
        take turns on one core: the interpreter lock binds, whatever the lanes' busy times say."""
        return {lane: sum(batch.get(lane, 0.0) for batch in self.lane_cpu) for lane in LANES}

    def info(self) -> dict:
        """The executor's results-record fields: lanes, the pipelining bound and the lane that sets it, the
        steady rate and the lanes' timeline (the spans of whole lanes, to the microsecond: the report draws
        it)."""
        (bound, bound_lane), steady = self._bound(), self.steady_images_per_s()
        return {"executor": self.executor, "depth": self.depth, "lane_seconds": self.lane_seconds(),
                "bound_images_per_s": bound, "bound_fraction": steady / bound if bound and steady else None,
                "bound_lane": bound_lane,
                "lane_cpu_seconds": self.lane_cpu_seconds(), "process_cpu_seconds": self.process_cpu_seconds,
                "steady_images_per_s": steady,
                "lane_spans": [row[:4] + [round(row[4], 6), round(row[5], 6)] for row in self.spans if row[2] is None]}

    def steady_images_per_s(self) -> float | None:
        """Overlays written per second from the first batch's end to the last's: the run without its
        pipeline fill (the yardstick's steady state, measured the same way)."""
        seconds = sum(self.batch_seconds[1:])
        return sum(self.batch_written[1:]) / seconds if seconds > 0 else None

    def _steady_window(self) -> tuple[int, float, float]:
        """The first batch of the steady state and its window on the run's host clock: from the first
        batch's end to the last's, or the whole run where it has one batch."""
        ends = list(itertools.accumulate(self.batch_seconds))
        first = 1 if len(ends) > 1 else 0
        return first, ends[0] if first else 0.0, ends[-1] if ends else 0.0

    def window_lane_seconds(self) -> dict[str, float]:
        """Each lane's busy time inside the steady window: per batch the larger of its host span and, for a
        GPU lane, its span on the GPU (as lane_seconds)."""
        _, start, end = self._steady_window()
        inside: dict[tuple[str, int], float] = {}
        for lane, number, stage, _, began, ended in self.spans:
            if stage is None:
                seconds = max(0.0, min(ended, end) - max(began, start))
                inside[lane, number] = max(inside.get((lane, number), 0.0), seconds)
        busy = dict.fromkeys(LANES, 0.0)
        for (lane, _), seconds in inside.items():
            busy[lane] = busy.get(lane, 0.0) + seconds
        return busy

    def bound_images_per_s(self) -> float | None:
        """The pipelining bound: overlays per second if the busiest lane never waited, over the steady window
        (as steady_images_per_s; the first batch pays for warming each lane's thread and stream).  Only the
        lanes' work inside the window counts, so steady / bound is the busiest lane's share of the window:
        at most 1, unless a GPU lane's stream runs behind its host (the batches' whole lane times, part of
        batch 2's done before the window opens, gave up to 129% on short runs)."""
        return self._bound()[0]

    def _bound(self) -> tuple[float | None, str | None]:
        """The pipelining bound and the lane that sets it (None, None where no lane worked in the window)."""
        first, _, _ = self._steady_window()
        busy = self.window_lane_seconds()
        lane = max(busy, key=busy.get)
        return (sum(self.batch_written[first:]) / busy[lane], lane) if busy[lane] > 0 else (None, None)


def codecs_take_turns(pipeline: Pipeline) -> bool:
    """Whether the decode and encode lanes share one lock.  nvImageCodec's binding releases and retakes the
    interpreter lock for every image, and two such calls on two threads wait for each other at every turn:
    on an H100, 32 1080p files decode in 6.65 ms alone and 27.8 ms beside an encode; in turns the two need
    their times alone, 13.9 ms (reports/h100-2026-12-07-turns)."""
    return pipeline.config.decoder == "nvimgcodec"


def _started() -> tuple[float, float]:
    """The host clock and this thread's CPU clock, at the start of a lane's work on a batch."""
    return time.perf_counter(), time.thread_time()


def _print_skip(path: Path, reason: str) -> None:
    print(f"Skipping {path}: {reason}", file=sys.stderr)


@dataclass
class _Batch:
    """One batch on its way through the lanes."""

    number: int
    jobs: list[tuple[Path, str]]
    files: list = field(default_factory=list)  # JpegFile or the reason it is bad, per job
    readable: list[tuple[JpegFile, str]] = field(default_factory=list)
    decoded: object = None  # pipeline.Decoded
    masks_overlays: tuple | None = None
    jpegs: list[bytes] | None = None
    done: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    redo: bool = False  # a lane failed for it, or it is over MAX_BATCH_PIXELS: Pipeline.run takes it (write lane)
    ready: object = None  # a CUDA event the next lane waits for
    lanes: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each lane's thread on this batch
    clocks: list = field(default_factory=list)  # (lane, StageClock or its result) per phase
    spans: list = field(default_factory=list)  # JobsResult.spans rows


def run_jobs(pipeline: Pipeline, jobs: list[tuple[Path, str]], out_dir: Path, batch_size: int | None = None,
             executor: str | None = None, depth: int | None = None, strict_jpeg: bool | None = None,
             instrumented: bool = True,
             on_batch: Callable[[int, int, JobsResult], None] | None = None,
             on_skip: Callable[[Path, str], None] = _print_skip,
             on_written: Callable[[Path], None] | None = None) -> JobsResult:
    """Every job is written or skipped (on_skip(path, reason): printed by default; raise there to stop the
    run).  on_batch(number, total, result so far) runs before each batch is written, on_written(path)
    after each write, both on the calling thread and in input order.  strict_jpeg=False lets files that
    libjpeg calls corrupt through to the decoders (--lenient).  instrumented=False records no stage events.
    batch_size, executor, depth and strict_jpeg not given are the pipeline's plan's (-b, --executor, --depth,
    not --lenient)."""
    config = pipeline.plan.config
    batch_size = config.batch_size if batch_size is None else batch_size
    executor = config.executor if executor is None else executor
    depth = config.depth if depth is None else depth
    strict_jpeg = not config.lenient if strict_jpeg is None else strict_jpeg
    check_executor(executor, depth)
    run = _Run(pipeline, out_dir, strict_jpeg, instrumented, on_batch, on_skip, on_written)
    run.result.executor, run.result.depth = executor, depth if executor == "overlapped" else 0
    groups = [_Batch(number, group) for number, group in enumerate(batches(jobs, batch_size), start=1)]
    run.start()
    if executor == "sequential":
        for batch in groups:
            run.announce(batch, len(groups))
            for lane in (run.read, run.sequential, run.write):
                lane(batch)
            run.finish(batch)
    else:
        run.overlapped(groups, depth)
    run.result.seconds = time.perf_counter() - run.origin
    run.result.process_cpu_seconds = time.process_time() - run.cpu_origin
    return run.result


def write_jobs(datas: list[bytes], folder: Path) -> list[tuple[Path, str]]:
    """JPEG bytes as numbered files in `folder`, with their overlays' names: jobs for run_jobs."""
    jobs = []
    for index, data in enumerate(datas):
        path = Path(folder) / f"image_{index:04d}.jpg"
        path.write_bytes(data)
        jobs.append((path, f"out_{path.stem}.jpg"))
    return jobs


def warm_up(pipeline: Pipeline, datas: list[bytes], batches: int) -> None:
    """Run `batches` batches of `datas` (JPEG bytes, repeated as needed) through the executor and drop the
    overlays: every lane's thread, stream, codec and cuDNN choice is set up before a timed run (the plan's
    batch size, executor and depth)."""
    import tempfile

    if not datas or batches < 1:
        return
    with tempfile.TemporaryDirectory(prefix="harness-warmup-") as folder:
        batch_size = pipeline.plan.config.batch_size
        jobs = write_jobs([datas[i % len(datas)] for i in range(batch_size * batches)], Path(folder))
        out = Path(folder) / "out"
        out.mkdir()
        run_jobs(pipeline, jobs, out, on_skip=lambda path, reason: None)


class _Run:
    def __init__(self, pipeline, out_dir, strict_jpeg, instrumented, on_batch, on_skip, on_written):
        self.pipeline, self.out_dir, self.strict = pipeline, out_dir, strict_jpeg
        self.on_batch, self.on_skip, self.on_written = on_batch, on_skip, on_written
        self.result = JobsResult()
        self.gpu = pipeline.device.type == "cuda"
        self.Clock = StageClock if instrumented else NullClock
        self.origin = self.last_finish = time.perf_counter()
        self.cpu_origin = time.process_time()
        self.cuda_origin = None
        # A lane holds its phase's lock while it works; a batch run again (redo) holds all three, so that
        # the decoder, engine and backend (TensorRT's one context, the codecs) never serve two at once.
        # Reentrant, so that a redo takes a lock that two lanes share twice.
        self.locks = {lane: threading.RLock() for lane in ("decode", "compute", "encode")}
        if codecs_take_turns(pipeline):
            self.locks["encode"] = self.locks["decode"]

    def start(self) -> None:
        """The origin of the run's timeline, on the host and on the GPU."""
        read_files([], self.strict)  # the reading and writing processes start before the clock, as the lane
        write_files([], [])  # threads do
        if self.gpu:
            self.cuda_origin = torch.cuda.Event(enable_timing=True)
            self.cuda_origin.record(torch.cuda.current_stream(self.pipeline.device))
        self.origin = self.last_finish = time.perf_counter()
        self.cpu_origin = time.process_time()

    def busy(self, batch: _Batch, lane: str, started: tuple[float, float]) -> None:
        """Record that `lane` worked on `batch` from `started` (_started()) until now: its host span, and its
        thread's CPU time."""
        now, cpu = time.perf_counter(), time.thread_time()
        batch.lanes[lane] = now - started[0]
        batch.cpu[lane] = cpu - started[1]
        batch.spans.append([lane, batch.number, None, "host", started[0] - self.origin, now - self.origin])

    # --- lanes: each takes a batch and fills in its part; the times go to batch.lanes ---

    def read(self, batch: _Batch) -> None:
        started = _started()
        batch.files = read_files([path for path, _ in batch.jobs], self.strict)
        batch.readable = [(f, name) for f, (_, name) in zip(batch.files, batch.jobs) if not isinstance(f, str)]
        # over the pixel budget: Pipeline.run takes the batch, in parts within it
        batch.redo = sum(f.height * f.width for f, _ in batch.readable) > MAX_BATCH_PIXELS
        self.busy(batch, "read", started)

    def _phase(self, batch: _Batch, lane: str, work: Callable, host_synchronous: bool = False) -> None:
        """Run one phase of a batch on this thread's stream, after the previous lane's event; time it.
        A host-synchronous phase (encode answers bytes) first waits for that event, so that its busy time
        does not count the wait for the previous lane."""
        if batch.redo or not batch.readable:
            return
        clock = self.Clock(self.pipeline.device)
        stream = torch.cuda.current_stream(self.pipeline.device) if self.gpu else None
        if stream is not None and batch.ready is not None:
            if host_synchronous:
                batch.ready.synchronize()
            stream.wait_event(batch.ready)
        started = _started()
        try:
            with self.locks[lane], self.pipeline._on_device(), torch.inference_mode():
                work(clock)
        except Exception as error:
            if stops_the_run(error):
                raise
            batch.redo = True  # Pipeline.run finds the image at fault
            return
        if stream is not None:
            batch.ready = torch.cuda.Event()
            batch.ready.record(stream)
        batch.clocks.append((lane, clock))
        self.busy(batch, lane, started)  # the host's part; finish() adds the GPU's

    def _used_here(self, frames) -> None:
        """Tell the caching allocator that this lane's stream reads `frames` (made on another lane's), so that
        their memory is not handed out again before this stream is done with them."""
        if self.gpu:
            stream = torch.cuda.current_stream(self.pipeline.device)
            for image in ([frames] if isinstance(frames, torch.Tensor) else frames):
                image.record_stream(stream)

    def decode(self, batch: _Batch) -> None:
        def work(clock):
            batch.decoded = self.pipeline.decode([f.data for f, _ in batch.readable], clock)
            batch.done, batch.failed = [], batch.decoded.failed  # `done` once encoded

        self._phase(batch, "decode", work)

    def compute(self, batch: _Batch) -> None:
        if batch.decoded is None or batch.decoded.frames is None:
            return

        def work(clock):
            frames = batch.decoded.frames
            self._used_here(frames)  # made on the decode lane's stream
            batch.masks_overlays = self.pipeline.compute(frames, clock)

        self._phase(batch, "compute", work)

    def encode(self, batch: _Batch) -> None:
        if batch.masks_overlays is None:
            return

        def work(clock):
            overlays = batch.masks_overlays[1]
            self._used_here(overlays)  # made on the compute lane's stream
            batch.jpegs = self.pipeline.encode(overlays, clock)

        self._phase(batch, "encode", work, host_synchronous=True)
        if not batch.redo:
            batch.done = batch.decoded.done
        batch.decoded = batch.masks_overlays = None  # the frames and overlays can go

    def sequential(self, batch: _Batch) -> None:
        """Decode through encode in one call (Pipeline.run, which retries a failed batch image by image)."""
        if not batch.readable:
            return
        started = _started()
        with self.locks["decode"], self.locks["compute"], self.locks["encode"]:  # the lanes share the parts
            # strict=False: the readers ran the check this run asked for; Pipeline.run reads the headers again
            out = self.pipeline.run([f.data for f, _ in batch.readable], instrumented=self.Clock is StageClock,
                                    strict=False)
        batch.done, batch.failed, batch.jpegs = out.done, out.failed, out.jpegs
        self.busy(batch, "compute", started)  # every phase: this lane waits for encode
        # the clock where the batch ran whole, so that its stages are on the timeline; else the merged times
        batch.clocks = [("compute", out.clock if isinstance(out.clock, StageClock) else out.timings_ms)]
        batch.redo = False

    def write(self, batch: _Batch) -> None:
        """Lost images are reported here, on the calling thread, in input order; a failed write stops the run."""
        if batch.redo:
            self.sequential(batch)
        started = _started()
        for (path, _), file in zip(batch.jobs, batch.files):
            if isinstance(file, str):
                self._skip(path, file)
        for index, reason in batch.failed:
            self._skip(batch.readable[index][0].path, reason)
        pairs = list(zip(batch.done, batch.jpegs or []))
        targets = [self.out_dir / batch.readable[index][1] for index, _ in pairs]
        written, error = write_files(targets, [data for _, data in pairs])
        for target in targets[:written]:
            self.result.written += 1
            if self.on_written:
                self.on_written(target)
        if error:
            raise HarnessError(error)
        self.busy(batch, "write", started)

    def _skip(self, path: Path, reason: str) -> None:
        self.result.skipped.append((path, reason))
        self.on_skip(path, reason)

    def announce(self, batch: _Batch, total: int) -> None:
        if self.on_batch:
            self.on_batch(batch.number, total, self.result)

    def finish(self, batch: _Batch) -> None:
        self.result.batch_written.append(len(batch.done))
        now = time.perf_counter()
        self.result.batch_seconds.append(now - self.last_finish)
        self.last_finish = now
        self.result.images += len(batch.readable)
        self.result.lanes.append(batch.lanes)
        self.result.lane_cpu.append(batch.cpu)
        timings: dict[str, float] = {}
        for lane, clock in batch.clocks:  # the events are complete: the batch is written
            stage_ms = clock if isinstance(clock, dict) else clock.result()
            if isinstance(clock, StageClock):
                batch.spans += self._stage_spans(lane, batch.number, clock)
            # a GPU lane is busy while its stream works, which can outlast the host's launching it
            batch.lanes[lane] = max(batch.lanes.get(lane, 0.0), stage_ms.get("total", 0.0) / 1e3)
            for stage, ms in stage_ms.items():
                if stage != "total":
                    timings[stage] = timings.get(stage, 0.0) + ms
        self.result.timings_ms.append(timings)
        self.result.spans += batch.spans
        batch.clocks, batch.spans, batch.files, batch.readable, batch.jpegs, batch.decoded = [], [], [], [], None, None

    def _stage_spans(self, lane: str, number: int, clock: StageClock) -> list[list]:
        """A lane's stages on the timeline, and on a GPU the lane's span as the GPU ran it."""
        spans = clock.spans(self.cuda_origin if clock.gpu else self.origin)
        kind = "cuda" if clock.gpu else "host"
        rows = [[lane, number, stage, kind, start, end] for stage, start, end in spans]
        if spans and clock.gpu:
            rows.insert(0, [lane, number, None, kind, spans[0][1], spans[-1][2]])
        return rows

    # --- the overlapped executor: one thread per lane (the pipeline's, kept between runs), bounded queues ---

    def overlapped(self, groups: list[_Batch], depth: int) -> None:
        stop = threading.Event()
        lanes = [self.read, self.decode, self.compute, self.encode]
        queues = [queue.Queue(maxsize=depth) for _ in lanes]
        errors: list[BaseException] = []

        def put(q: queue.Queue, item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def get(q: queue.Queue):
            while not stop.is_set():
                try:
                    return q.get(timeout=0.1)
                except queue.Empty:
                    continue
            return None

        def worker(index: int) -> None:
            lane, source, sink = lanes[index], (queues[index - 1] if index else None), queues[index]
            stream = self.pipeline.lane_stream(LANES[index]) if self.gpu and index else None
            try:
                with torch.cuda.stream(stream) if stream is not None else nullcontext():
                    for number in range(len(groups)):
                        batch = groups[number] if source is None else get(source)
                        if batch is None:
                            return
                        lane(batch)
                        if not put(sink, batch):
                            return
            except BaseException as error:  # the calling thread raises it
                errors.append(error)
                stop.set()

        workers = [self.pipeline.lane_thread(LANES[i]).submit(worker, i) for i in range(len(lanes))]
        try:
            for _ in groups:
                batch = get(queues[-1])
                if batch is None:
                    break
                self.announce(batch, len(groups))
                self.write(batch)
                self.finish(batch)
        except BaseException:
            stop.set()
            raise
        finally:
            if errors:
                stop.set()
            for running in workers:
                running.result()  # worker() catches everything: this only waits
        if errors:
            raise errors[0]
