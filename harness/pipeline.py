"""The pipeline: one decoder, one ops engine and one backend, composed from one resolved plan."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from harness.backends import BACKENDS
from harness.chain import postprocess, preprocess
from harness.config import Config, Plan
from harness.decode import DECODERS
from harness.errors import first_line, stops_the_run
from harness.inputs import MAX_BATCH_PIXELS, BadImage, check_jpeg
from harness.ops import ENGINES, Frames, per_image
from harness.resolve import resolve
from harness.timing import NullClock, StageClock


@dataclass
class BatchResult:
    """What one batch produced.  Indices refer to the batch as it was given to `Pipeline.run`."""

    done: list[int]  # images that went through every stage, in order
    failed: list[tuple[int, str]]  # images that could not be decoded, with the reason
    masks: torch.Tensor | None = None  # uint8 N x h x w x 1 at the model size, 0 or 255, for `done`
    overlays: Frames | None = None  # uint8 RGB at the original sizes, on the pipeline's device
    jpegs: list[bytes] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, plus 'total'
    clock: object = None  # the batch's StageClock, for its timeline (None where parts of it ran apart)


def merge_results(parts: list[tuple[list[int], BatchResult]], refused: list[tuple[int, str]] = ()) -> BatchResult:
    """One result from the results of parts of a batch, each given with the indices its images have in the
    batch (parts in batch order), and the images refused before any part ran."""
    done = [indices[i] for indices, part in parts for i in part.done]
    failed = sorted([*refused, *((indices[i], reason) for indices, part in parts for i, reason in part.failed)])
    kept = [part for _, part in parts if part.done]
    timings: dict[str, float] = {}
    for _, part in parts:
        for stage, ms in part.timings_ms.items():
            timings[stage] = timings.get(stage, 0.0) + ms
    return BatchResult(done, failed, torch.cat([p.masks for p in kept]) if kept else None,
                       [image for p in kept for image in per_image(p.overlays)] if kept else None,
                       [data for p in kept for data in p.jpegs], timings)


def checked_sizes(jpegs: list[bytes], strict: bool = True) -> list[tuple[int, int] | str]:
    """Per image, (height, width) from its header (inputs.check_jpeg: the pixel limit, and with `strict`
    libjpeg's check), or why it is refused."""
    sizes: list[tuple[int, int] | str] = []
    for data in jpegs:
        try:
            sizes.append(check_jpeg(data, "the image", strict))
        except BadImage as error:
            sizes.append(str(error))
    return sizes


def within_budget(sizes: list[tuple[int, tuple[int, int]]], budget: int) -> list[list[int]]:
    """(index, (height, width)) pairs cut into consecutive groups of at most `budget` pixels each (an image
    over it alone); the indices of each group."""
    groups: list[list[int]] = []
    pixels = 0
    for index, (height, width) in sizes:
        if not groups or pixels + height * width > budget:
            groups.append([])
            pixels = 0
        groups[-1].append(index)
        pixels += height * width
    return groups


def stack_if_uniform(images: list[torch.Tensor]) -> Frames:
    """One NHWC tensor when all images share a size (the fast path for every engine), else the list."""
    if len({tuple(image.shape) for image in images}) == 1:
        return torch.stack(images)
    return images


class Pipeline:
    def __init__(self, request: Config | Plan):
        """From a request (resolved here) or from a plan already resolved."""
        self.plan = plan = request if isinstance(request, Plan) else resolve(request)
        self.config, self.device = plan.config, plan.device
        with self._on_device():
            self.decoder = DECODERS[plan.config.decoder](self.device)
            self.engine = ENGINES[plan.config.ops](plan)
            self.backend = BACKENDS[plan.config.backend](plan)
        self.class_index = plan.class_index
        self._lane_streams: dict[str, torch.cuda.Stream] = {}
        self._lane_threads: dict[str, ThreadPoolExecutor] = {}

    def lane_thread(self, lane: str) -> ThreadPoolExecutor:
        """The thread of one lane of the overlapped executor, the same in every run: libraries that set up
        per thread (the codecs, cuDNN and cuBLAS handles) do it once, not per run."""
        if lane not in self._lane_threads:
            self._lane_threads[lane] = ThreadPoolExecutor(1, thread_name_prefix=f"harness-{lane}")
        return self._lane_threads[lane]

    def lane_stream(self, lane: str) -> "torch.cuda.Stream":
        """The CUDA stream of one lane of the overlapped executor, the same in every run (see lane_thread:
        on the H100 an overlapped run's first batch took about 1.6 s with new threads and streams, the
        later ones 0.05 s)."""
        if lane not in self._lane_streams:
            self._lane_streams[lane] = torch.cuda.Stream(self.device)
        return self._lane_streams[lane]

    def _on_device(self):
        return torch.cuda.device(self.device) if self.device.type == "cuda" else nullcontext()

    def prepare(self, batch_size: int) -> None:
        """Let the backend build and warm up for this batch size (cuDNN autotuning, engine builds)."""
        with self._on_device():
            self.backend.prepare(batch_size, *self.config.model_size)

    def run(self, jpegs: list[bytes], instrumented: bool = True, strict: bool = True) -> BatchResult:
        """Decode through encode for one batch.  On a GPU nothing waits for the host until encode.
        instrumented=False skips the stage events and NVTX ranges (timings_ms is then empty).

        Bytes from any caller are checked before anything is decoded: an image whose header is unreadable
        or over the pixel limit, or (with `strict`) that libjpeg reports as corrupt or truncated, is reported
        in `failed` and never decoded.  strict=False is --lenient, or bytes the caller has checked already
        (harness.runner's readers); the pixel limit holds either way.  A batch over MAX_BATCH_PIXELS runs in
        consecutive parts within it.

        A failure costs only the image it is about: when a stage fails for the batch, the batch runs again
        one image at a time, and an image that fails alone is reported in `failed` with the stage and the
        reason.  Failures of the whole run (errors.stops_the_run: out of memory, a broken GPU, a HarnessError)
        propagate."""
        sizes = checked_sizes(jpegs, strict)
        refused = [(i, size) for i, size in enumerate(sizes) if isinstance(size, str)]
        groups = within_budget([(i, size) for i, size in enumerate(sizes) if not isinstance(size, str)],
                               MAX_BATCH_PIXELS)
        if not refused and len(groups) == 1:
            return self._run_or_retry(jpegs, instrumented)
        return merge_results([(group, self._run_or_retry([jpegs[i] for i in group], instrumented))
                              for group in groups], refused)

    def _run_or_retry(self, jpegs: list[bytes], instrumented: bool) -> BatchResult:
        """The batch, or when a stage fails for it, each image alone."""
        clock = (StageClock if instrumented else NullClock)(self.device)
        try:
            return self._run(jpegs, clock)
        except Exception as error:
            if stops_the_run(error):
                raise
            if len(jpegs) == 1:
                return BatchResult([], [(0, f"failed at the {clock.current} stage ({first_line(error)})")])
        return merge_results([([i], self._run_or_retry([data], instrumented)) for i, data in enumerate(jpegs)])

    def _run(self, jpegs: list[bytes], clock) -> BatchResult:
        with self._on_device(), torch.inference_mode():
            decoded = self.decode(jpegs, clock)
            if decoded.frames is None:
                return BatchResult(decoded.done, decoded.failed, timings_ms=clock.result(), clock=clock)
            masks, overlays = self.compute(decoded.frames, clock)
            encoded = self.encode(overlays, clock)
        return BatchResult(decoded.done, decoded.failed, masks, overlays, encoded, clock.result(), clock)

    # The three phases of a batch: the overlapped executor (harness.runner) runs each on its own lane.

    def decode(self, jpegs: list[bytes], clock) -> "Decoded":
        """The bytes must have passed inputs.check_jpeg (run() checks them; harness.runner reads files
        through it) and fit MAX_BATCH_PIXELS: here every image is decoded."""
        with clock.stage("decode"):
            decoded = self.decoder(jpegs)
            done = [i for i, d in enumerate(decoded) if isinstance(d, torch.Tensor)]
            failed = [(i, d) for i, d in enumerate(decoded) if isinstance(d, str)]
            frames = stack_if_uniform([decoded[i] for i in done]) if done else None
        return Decoded(done, failed, frames)

    def compute(self, frames: Frames, clock) -> tuple[torch.Tensor, Frames]:
        """Preprocess, infer and post-process: (masks at the model size, overlays at the original sizes)."""
        x = preprocess(self.engine, frames, self.config.model_size, self.config.preprocess, clock)
        with clock.stage("inference"):
            logits = self.backend(x)
        return postprocess(self.engine, frames, logits, self.class_index, self.config.postprocess, clock)

    def encode(self, overlays: Frames, clock) -> list[bytes]:
        with clock.stage("encode"):
            return self.engine.encode(overlays)


@dataclass
class Decoded:
    """The decode phase's result: which images decoded (their frames) and which did not (with the reason)."""

    done: list[int]
    failed: list[tuple[int, str]]
    frames: Frames | None
