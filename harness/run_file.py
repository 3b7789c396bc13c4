"""Results as a benchmark-JSON file, in pytest-benchmark's layout so that harness.report and its gate read it
unchanged: a directory run (harness.distributed's --json, an entry per rank and one for the whole run, and the
command line's --json, a world of one) and the tools' probes (tools/blur_bench.py, compile_bench.py speed,
fused_conv_probe.py: an entry per measurement, kind "probe")."""

from __future__ import annotations

import dataclasses
import datetime
import socket
import statistics
import time
from pathlib import Path
from typing import Callable

from harness.config import Config

STAGE = "distributed_throughput"


def process_record(pipeline, run: Callable, inputs: int, rank: int = 0, local: int = 0) -> dict:
    """Run `run` (a harness.runner.run_jobs call for this process's inputs) and return this process's part of
    the file: its counts, times, lanes, median per-stage milliseconds, and the GPU's state before and after
    (clocks, throttling); and `spans`, the timeline (--trace), which the caller takes out before writing."""
    import torch

    from harness.env import gpu_state

    config = pipeline.config
    uuid = str(torch.cuda.get_device_properties(config.device_id).uuid) if config.device == "cuda" else None
    before = gpu_state(uuid=uuid) if uuid else None
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    after = gpu_state(uuid=uuid) if uuid else None
    names = {stage for batch in result.timings_ms for stage in batch}
    stage_ms = {stage: statistics.median(b[stage] for b in result.timings_ms if stage in b) for stage in names}
    return {"rank": rank, "local_rank": local, "host": socket.gethostname(), "device": config.device,
            "device_id": config.device_id if config.device == "cuda" else None, "gpu_uuid": uuid,
            "inputs": inputs, "images": result.written, "skipped": len(result.skipped),
            "seconds": seconds, "batch_seconds": result.batch_seconds, **result.info(),
            "stage_ms": stage_ms or None, "stage_sum_ms": sum(stage_ms.values()) if stage_ms else None,
            "setup_seconds": pipeline.backend.setup_seconds, "spans": result.spans,
            "gpu_state_before": before, "gpu_state_after": after}


def stats(samples: list[float]) -> dict:
    """pytest-benchmark's own statistics of the samples, with the raw data, as its JSON files hold them."""
    from harness.benchkit import stats_of

    return {**stats_of(samples).as_dict(), "iterations": 1, "data": list(samples)}


#: Config fields that are not named in a variant: the case's other fields (size, batch, precision, engine,
#: device), what the plan resolves, inputs and outputs, and what does not change the work (weights' values,
#: seed, class, --strict); the executor, its depth and --lenient are named apart.
NOT_IN_VARIANT = ("input_path", "output_dir", "class_name", "target_img_height", "target_img_width", "batch_size",
                  "device_id", "backend", "model", "weights", "seed", "precision", "ops", "decoder", "device",
                  "cache_dir", "strict", "lenient", "executor", "depth")
#: Options that change the work or its speed, named in a case's variant when they differ from the default: these
#: first, in the order older files name them, then every other Config field not left out above, so that a new
#: option is a new case without a change here.
VARIANT_OPTIONS = ("preprocess", "postprocess", "compile", "cuda_graph", "fuse_conv", "blur_mode", "channels_last",
                   "aux_head", "cudnn_benchmark")
VARIANT_OPTIONS += tuple(field.name for field in dataclasses.fields(Config)
                         if field.name not in VARIANT_OPTIONS + NOT_IN_VARIANT)


def variant(plan, procs_per_gpu: int = 1) -> str:
    """The case's variant: options that differ from their defaults on the plan's device and precision, and
    processes per GPU, so that runs of different commands are different cases to the report and the gate
    (the same command's runs are the same case).  --lenient is named: it drops the read lane's libjpeg check;
    so are the environment's settings of the host lanes: readers=threads and writers=threads (the files read,
    the overlays written, by the pipeline's process), read_workers=N and codec_threads=N."""
    from harness import threads_setting
    from harness.decode import codec_threads
    from harness.reading import MAX_READ_WORKERS, in_threads, writes_here

    defaults = plan.defaults()
    parts = [f"{name}={getattr(plan.config, name)}" for name in VARIANT_OPTIONS
             if getattr(plan.config, name) != getattr(defaults, name)]
    config = plan.config
    if config.lenient:
        parts.append("lenient")
    if in_threads():
        parts.append("readers=threads")
    if writes_here():
        parts.append("writers=threads")
    if workers := threads_setting("HARNESS_READ_WORKERS", MAX_READ_WORKERS):
        parts.append(f"read_workers={workers}")
    if threads := codec_threads():
        parts.append(f"codec_threads={threads}")
    if config.executor != defaults.executor:
        parts.append(f"executor={config.executor}")
    elif config.depth != defaults.depth:
        parts.append(f"depth={config.depth}")
    return ",".join(parts + ([f"procs_per_gpu={procs_per_gpu}"] if procs_per_gpu != 1 else []))


def results_json(plan, ranks: list[dict], args, baseline: float | None, version: str = "harness.distributed") -> dict:
    """pytest-benchmark's file layout, so that harness.report and its gate read it unchanged: an entry per
    process and one for the whole run.  `args` are the command's (procs_per_gpu 1 where it has none)."""
    from harness.benchkit import NOISE_THRESHOLD, relative_iqr, sample_power
    from harness.env import bad_throttles, fingerprint
    from harness.results import Record

    world = len(ranks)
    config = plan.config
    procs_per_gpu = getattr(args, "procs_per_gpu", 1)
    case = dict(stage=STAGE, engine=f"{config.ops}+{config.decoder}+{config.backend}:{config.model}",
                variant=variant(plan, procs_per_gpu), device=config.device,
                precision=config.precision,
                batch_size=config.batch_size, model_height=config.target_img_height,
                model_width=config.target_img_width, source="", world_size=world, procs_per_gpu=procs_per_gpu)
    entries = []
    for r in ranks:
        rate = r["images"] / r["seconds"] if r["seconds"] > 0 else 0.0
        noise = relative_iqr(r["batch_seconds"]) if r["batch_seconds"] else 0.0
        mine = {k: v for k, v in r.items() if k != "batch_seconds"}
        power = sample_power(r["batch_seconds"], "batch") if r["batch_seconds"] else {}
        record = Record(**{**case, **mine}, images_per_s=rate, noise_rel_iqr=noise, noisy=noise > NOISE_THRESHOLD,
                        throttled=bool(bad_throttles(r["gpu_state_before"], r["gpu_state_after"])), **power)
        entries.append({"group": STAGE, "name": f"{STAGE}[rank{r['rank']}]",
                        "fullname": f"harness.distributed::rank{r['rank']}", "params": None,
                        # a rank with an empty shard ran no batch: its one sample is its whole (short) run, since
                        # a time of 0 is a broken file to harness.report
                        "stats": stats(r["batch_seconds"] or [r["seconds"]]), "extra_info": record.info()})
    throttled = bad_throttles(*(r[k] for r in ranks for k in ("gpu_state_before", "gpu_state_after")))
    images = sum(r["images"] for r in ranks)
    wall = max(r["seconds"] for r in ranks)  # every rank started at the same barrier
    rate = images / wall if wall > 0 else 0.0
    gpus_used = max(1, world // procs_per_gpu) if config.device == "cuda" else world
    efficiency = rate / (gpus_used * baseline) if baseline else (1.0 if world == 1 else None)
    entries.append({"group": STAGE, "name": f"{STAGE}[all]", "fullname": "harness.distributed::all", "params": None,
                    "stats": stats([wall]),
                    "extra_info": Record(
                        **case, rank="all", inputs=sum(r["inputs"] for r in ranks), images=images,
                        skipped=sum(r["skipped"] for r in ranks), seconds=wall, images_per_s=rate,
                        per_rank_images_per_s=[e["extra_info"]["images_per_s"] for e in entries],
                        single_process_images_per_s=baseline, scaling_efficiency=efficiency,
                        executor=ranks[0]["executor"], depth=ranks[0]["depth"],
                        steady_images_per_s=sum(r["steady_images_per_s"] or 0.0 for r in ranks) or None,
                        throttled=bool(throttled), noisy=any(e["extra_info"]["noisy"] for e in entries),
                        hosts=sorted({r["host"] for r in ranks})).info()})
    harness_info = fingerprint(config.device_id if config.device == "cuda" else 0)
    harness_info.update(world_size=world, procs_per_gpu=procs_per_gpu, throttled=throttled)
    return benchmark_file(entries, harness_info, version)


def benchmark_file(entries: list[dict], harness_info: dict, version: str) -> dict:
    """The file around `entries`: the machine (the harness's fingerprint), the time, the writer."""
    return {"machine_info": {"node": socket.gethostname(), "harness": harness_info},
            "commit_info": {}, "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "version": version, "benchmarks": entries}


def probe_entry(name: str, case, samples_ms: list[float], **results) -> dict:
    """One probe's measurement as an entry: `case` (a harness.benchkit.Case), the GPU times of its calls
    (harness.timing.cuda_times_ms, milliseconds) as the samples, and its other results (Record fields; the
    TFLOPS from `flops`, the work of one call, where given)."""
    from harness.benchkit import NOISE_THRESHOLD, relative_iqr

    samples = [ms / 1e3 for ms in samples_ms]
    median = statistics.median(samples)
    noise = relative_iqr(samples)
    if results.get("flops") and "tflops_per_s" not in results:
        results["tflops_per_s"] = results["flops"] / median / 1e12
    record = case.record(median, kind="probe", timer="cuda", median_s=median, cuda_event_ms=list(samples_ms),
                         cuda_event_median_ms=median * 1e3, noise_rel_iqr=noise, noisy=noise > NOISE_THRESHOLD,
                         rounds=len(samples), sample_count=len(samples), sample_unit="round", **results)
    return {"group": "probe", "name": name, "fullname": f"probe::{name}", "params": None, "stats": stats(samples),
            "extra_info": record.info()}


def write_probe_file(path, entries: list[dict], version: str) -> None:
    """A probe's entries so far, written whole (a probe writes after each measurement: a time limit keeps the
    rest)."""
    import json

    from harness.env import fingerprint
    from harness.files import write_atomic

    write_atomic(Path(path), json.dumps(benchmark_file(entries, fingerprint(0), version), indent=1).encode())
