"""One results record: the `extra_info` of every benchmark entry.  The suites (through harness.benchkit) and
harness.distributed write it, harness.report reads it; a new result is one new field here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from harness import STAGES

#: Whole-pipeline kinds of case: each is also the case's `stage`, so that older files' cases keep their keys.
WHOLE_PIPELINES = ("end_to_end", "throughput", "throughput_from_files", "sample_workload", "distributed_throughput")
#: Kinds of the per-stage cases that are not one pipeline stage.
OTHER_KINDS = {"preprocess": "chain", "postprocess": "chain", "d2d_copy": "copy"}


def kind_of(stage: str, variant: str = "") -> str:
    """The kind of a case from its stage and variant, for records that do not say it (files written before the
    field): "stage", "chain", "copy", a whole pipeline's kind (the in-memory throughput cases run from files,
    variant files-*, are "throughput_from_files"), else "probe"."""
    if stage in OTHER_KINDS:  # "preprocess" is also the fused operator's stage, timed only inside the chain
        return OTHER_KINDS[stage]
    if stage in STAGES:
        return "stage"
    if stage == "throughput" and str(variant or "").startswith("files-"):
        return "throughput_from_files"
    return stage if stage in WHOLE_PIPELINES else "probe"


@dataclass
class Record:
    # The case: entries with equal values measured the same work (harness.report.CASE_KEY: these fields
    # through `rank`; the source's size follows from `source`).
    stage: str  # the stage timed (a harness.STAGES name; "preprocess"/"postprocess" for a chain, "d2d_copy");
                # a whole pipeline's kind (WHOLE_PIPELINES) for whole pipelines
    engine: str  # ops engine, decoder or backend name; ops+decoder+backend:model for whole pipelines
    variant: str = ""  # e.g. the blur mode, "uninstrumented", non-default options
    device: str = ""
    precision: str = ""
    batch_size: Optional[int] = None
    model_height: Optional[int] = None
    model_width: Optional[int] = None
    source: str = ""  # a benchkit.SOURCE_SIZES name, "" where no image is involved
    world_size: Optional[int] = None  # harness.distributed's runs only
    rank: Any = None  # harness.distributed's runs only: a rank, or "all"
    source_height: Optional[int] = None
    source_width: Optional[int] = None
    kind: str = ""  # what kind of case: "stage", "chain", "copy", "probe" (tools/), or a whole pipeline's
                    # kind (WHOLE_PIPELINES); filled from stage and variant by kind_of where not given

    # The measurement (harness.benchkit.measure).
    images_per_s: Optional[float] = None
    megapixels_per_s: Optional[float] = None
    timer: Optional[str] = None
    median_s: Optional[float] = None
    host_median_s: Optional[float] = None  # GPU cases: the host clock's median of the rounds the events timed
    l2: Optional[str] = None  # "cold" or "hot" on a GPU, None on the CPU
    noise_rel_iqr: Optional[float] = None
    noisy: Optional[bool] = None
    throttled: Optional[bool] = None
    rounds: Optional[int] = None
    warmup_rounds: Optional[int] = None
    pilot_rounds: Optional[int] = None  # timed before the rounds to estimate the noise (benchkit.choose_rounds)
    rounds_stop: Optional[str] = None  # why this many rounds: "minimum", "target" (ci_target reached) or "budget"
    ci_target: Optional[float] = None  # the median's relative confidence half-width aimed for
    ci_budget_s: Optional[float] = None  # seconds of rounds a case may take to get there
    ci_rel: Optional[float] = None  # the half-width reached: 1.57 IQR / sqrt(n) / median
    cuda_event_ms: Optional[list] = None
    cuda_event_median_ms: Optional[float] = None
    sample_count: Optional[int] = None  # raw samples in stats.data: timed rounds (whole runs: one a run)
    sample_unit: Optional[str] = None  # "round" (one call of the case), "run" (a whole run) or "batch" (distributed)
    detectable_slowdown: Optional[float] = None  # the smallest slowdown the gate (defaults) flags with these samples
    block_ms: Optional[float] = None  # GPU stage cases: the blocking kernel's sleep before each round
                                      # (benchkit.measure)
    sample_process: Optional[list] = None  # each sample's process, where harness.repeats ran the case in several
    process_medians_s: Optional[list] = None  # each of those processes' own median

    # Whole pipelines (bench/test_end_to_end.py, bench/test_sample_workload.py).
    stage_ms: Optional[dict] = None
    stage_sum_ms: Optional[float] = None
    clock_total_ms: Optional[float] = None
    end_to_end_ms: Optional[float] = None
    unattributed_ms: Optional[float] = None
    unattributed_fraction: Optional[float] = None
    unattributed_ms_interval: Optional[list] = None  # 95% interval of the per-round median (benchkit.paired_breakdown)
    unattributed_fraction_interval: Optional[list] = None
    round_stage_ms: Optional[dict] = None  # each timed round's stage times, in the order of the samples
    round_paired_ms: Optional[list] = None  # the uninstrumented case: each round's instrumented twin, run just before
    instrumentation_cost: Optional[float] = None  # median of twin / round - 1 over the rounds
    instrumentation_cost_interval: Optional[list] = None
    stage_fraction: Optional[dict] = None
    batches: Optional[int] = None
    images: Optional[int] = None
    sample_images_per_s: Optional[float] = None
    speedup_over_sample: Optional[float] = None
    options: Optional[dict] = None
    setup_seconds: Optional[float] = None  # the backend's prepare(): compiling, graph capture, cuDNN autotuning

    # Files through the executor (harness.runner: harness.distributed, the sample-workload benchmark).
    executor: Optional[str] = None  # "overlapped" or "sequential"
    depth: Optional[int] = None  # batches in flight between two lanes (overlapped)
    lane_seconds: Optional[dict] = None  # each lane's busy time over the run: read, decode, compute, encode, write
    bound_images_per_s: Optional[float] = None  # the pipelining bound: images / the busiest lane's time (steady window)
    bound_fraction: Optional[float] = None  # steady images/s over that bound
    bound_lane: Optional[str] = None  # the lane that sets it: the busiest in the steady window
    steady_images_per_s: Optional[float] = None  # from the first batch's end to the last's (no pipeline fill)
    lane_cpu_seconds: Optional[dict] = None  # each lane thread's CPU time over the run (their sum near `seconds`:
    #                                          the lanes take turns on the interpreter lock)
    process_cpu_seconds: Optional[float] = None  # the pipeline's process, all its threads, over the run
    lane_spans: Optional[list] = None  # the last run's lanes per batch: [lane, batch, None, clock, start_s, end_s]

    # What the hardware allows (bench/test_stages.py).
    flops: Optional[int] = None
    tflops_per_s: Optional[float] = None
    floor_bytes: Optional[int] = None
    floor_gb_per_s: Optional[float] = None
    bytes_moved: Optional[int] = None
    copy_gb_per_s: Optional[float] = None

    # The tools' probes (harness.run_file.probe_entry): agreement with the probe's reference output.
    max_abs_diff: Optional[float] = None
    logits_abs_max: Optional[float] = None  # the reference's largest |logit|: what max_abs_diff is relative to
    class_agreement: Optional[float] = None  # share of pixels whose argmax class matches the reference's
    inductor: Optional[dict] = None  # torch._inductor.config settings patched in while compiling
    total_setup_seconds: Optional[float] = None  # the backend's set-up with dynamo's reset and the input's

    # harness.distributed: one entry per rank and one for the whole run.
    procs_per_gpu: Optional[int] = None
    local_rank: Optional[int] = None
    host: Optional[str] = None
    hosts: Optional[list] = None
    device_id: Optional[int] = None
    gpu_uuid: Optional[str] = None
    inputs: Optional[int] = None
    skipped: Optional[int] = None
    seconds: Optional[float] = None
    gpu_state_before: Optional[dict] = None
    gpu_state_after: Optional[dict] = None
    per_rank_images_per_s: Optional[list] = None
    single_process_images_per_s: Optional[float] = None
    scaling_efficiency: Optional[float] = None

    def __post_init__(self):
        self.kind = self.kind or kind_of(self.stage, self.variant)

    def info(self) -> dict:
        """The JSON `extra_info`: every field, null where it does not apply, so every entry has every column."""
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(Record))
CASE_FIELDS = FIELDS[:FIELDS.index("rank") + 1]
MEASURED_FIELDS = tuple(name for name in FIELDS if name not in CASE_FIELDS)


def gpu_seconds(cuda_event_median_ms, median_s):
    """The median CUDA-event time of a case in seconds, the host-clock median where there is none (the CPU).
    Takes numbers or pandas columns, so that the suites and harness.report use the one rule."""
    if hasattr(cuda_event_median_ms, "fillna"):
        return (cuda_event_median_ms / 1e3).fillna(median_s)
    return median_s if cuda_event_median_ms is None else cuda_event_median_ms / 1e3


def checked(fields: dict) -> dict:
    """`fields` if every name is a Record field; a misspelt result would otherwise never reach a report."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise KeyError(f"not fields of harness.results.Record: {', '.join(sorted(unknown))}")
    return fields


def add(benchmark, **fields) -> None:
    """Add results to a pytest-benchmark entry's extra_info."""
    benchmark.extra_info.update(checked(fields))
