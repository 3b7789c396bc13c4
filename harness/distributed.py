"""One pipeline process per GPU (or several per GPU), started by torchrun, with aggregate throughput.

    torchrun --nproc-per-node 8 -m harness.distributed -i DIR -o OUT -b 32 --json scaling.json
    torchrun --nproc-per-node 16 -m harness.distributed ... --procs_per_gpu 2      # two processes a GPU
    torchrun --nnodes 2 --node-rank R --rdzv-endpoint HOST:PORT --nproc-per-node 8 -m harness.distributed ...

Each process reads RANK, WORLD_SIZE and LOCAL_RANK from torchrun, takes GPU LOCAL_RANK // procs_per_gpu,
and runs the pipeline on its shard of the inputs (contiguous, sizes differing by at most one: every input
is processed exactly once).  Output names are made from the whole input list, so no two ranks write the
same file.  All ranks warm up, wait at a barrier, then run their shard; rank 0 gathers each rank's
timings over gloo (only small objects travel, and gloo allows several processes on one GPU, which NCCL
does not) and writes one JSON file in the benchmark suites' schema: one entry per rank and one for the
whole run (`rank` "all"), with `world_size`, aggregate and per-rank images/s and, given the JSON of a
one-process run (--baseline), the scaling efficiency.  Without torchrun it runs as a world of one.

Exit statuses and messages are the command line's (harness.errors): a bad input, a failed write, a rank out
of memory stop every rank with one line each, the other ranks naming the rank that failed and why.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import Callable

from harness import HarnessError
from harness.errors import first_line, user_message

def shard(items: list, rank: int, world_size: int) -> list:
    """Rank `rank`'s contiguous share of `items`: shares differ in size by at most one and together hold
    every item exactly once; with fewer items than ranks some shares are empty."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    count = len(items)
    return items[rank * count // world_size:(rank + 1) * count // world_size]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise HarnessError(f"{name}={value!r} is not a number: start the processes with torchrun") from None


def _world() -> tuple[int, int, int]:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (a world of one without it), checked: an
    environment torchrun would not make is one line naming the variable, not an error deep in gloo."""
    rank, size, local = _env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0)
    if size < 1:
        raise HarnessError(f"WORLD_SIZE={size}: a run needs 1 or more processes: start them with torchrun")
    if not 0 <= rank < size:
        raise HarnessError(f"RANK={rank} is outside a world of WORLD_SIZE={size} (ranks 0 to {size - 1}): start "
                           "the processes with torchrun")
    if local < 0:
        raise HarnessError(f"LOCAL_RANK={local} is negative: start the processes with torchrun")
    if size > 1:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise HarnessError(f"WORLD_SIZE={size} but {' and '.join(missing)} not set (where the processes meet): "
                               "start them with torchrun")
        _env_int("MASTER_PORT", 0)
    return rank, size, local


def _join(rank: int, size: int) -> None:
    """Meet the other ranks (the gloo process group); the group is left (_leave) before the interpreter exits,
    whatever the caller does."""
    import torch.distributed as dist

    atexit.register(_leave)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=size)
    except (RuntimeError, ValueError) as error:
        where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        raise HarnessError(f"cannot meet the other processes at {where} ({first_line(error)}): start every "
                           "process with torchrun, with the same rendezvous endpoint") from None


def _leave() -> None:
    """Destroy the process group, if there is one, joining gloo's worker threads and the TCPStore's.

    Left to the end of the interpreter, those threads outlive it: a worker still dropping a collective's
    tensors then takes the GIL after Python has started finalizing, Python ends the thread inside a noexcept
    destructor and the process dies of SIGABRT ('terminate called without an active exception') after its
    one-line message, at random under load.  Destroying the group needs no other rank, so it is as safe after
    a rank is lost; an atexit function still runs before the interpreter finalizes."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _together(size: int, work: Callable, share: bool = False):
    """work() on this rank, then a meeting of every rank (the barrier): work()'s result, or with `share`
    every rank's (picklable) result, in rank order.  A rank whose work fails still comes to the meeting,
    with its one-line message, so that every rank stops together: it raises its own error, the others a
    HarnessError naming it, rather than waiting for it or, when its connection closes, reporting an internal
    error.  A rank lost on the way (killed) is a named error too."""
    failure = None
    try:
        result = work()
    except Exception as error:
        failure, result = error, None
    mine = {"failed": user_message(failure)} if failure is not None else {"result": result if share else None}
    everyone = [mine]
    if size > 1:
        import torch.distributed as dist

        everyone = [None] * size
        try:
            dist.all_gather_object(everyone, mine)
        except RuntimeError as error:
            detail = first_line(error).split("] ", 1)[-1].split(". ")[0]  # gloo's: "[file:line] What. Advice."
            failure = failure or HarnessError(f"lost another process of the run ({detail}): see its own message, "
                                              "then rerun")
    if failure is not None:
        raise failure
    for rank, answer in enumerate(everyone):
        if "failed" in answer:
            raise HarnessError(f"rank {rank} stopped the run: {answer['failed']}")
    return [answer["result"] for answer in everyone] if share else result


def build_parser():
    from harness.cli import build_parser as sample_parser

    parser = sample_parser()
    parser.prog = "python -m harness.distributed"
    parser.description = __doc__.split("\n\n")[0]
    parser.set_defaults(json="distributed.json")  # the command line's --json, written by rank 0
    group = parser.add_argument_group("multi-process options (start with torchrun)")
    group.add_argument("--procs_per_gpu", type=int, default=1, help="processes sharing one GPU")
    group.add_argument("--warmup_batches", type=int, default=1,
                       help="untimed batches each rank runs first, through the same executor")
    group.add_argument("--baseline", default=None,
                       help="the --json of a one-process run on the same machine: gives the scaling efficiency")
    return parser


def baseline_images_per_s(path: str) -> float:
    """The aggregate images/s of a one-process run's JSON."""
    try:
        data = json.loads(Path(path).read_text())
        whole = [b for b in data["benchmarks"] if b["extra_info"].get("rank") == "all"]
        info = whole[0]["extra_info"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise HarnessError(f"--baseline {path} is not the --json of a harness.distributed run: run one "
                           "process first (torchrun --nproc-per-node 1 ...) and pass its file") from None
    if info.get("world_size") != 1:
        raise HarnessError(f"--baseline {path} comes from {info.get('world_size')} processes: give a one-process run")
    return float(info["images_per_s"])


def _first_readable(paths: list[Path], count: int, strict: bool = True) -> list[bytes]:
    """Up to `count` of the run's first good files, for the warm-up (bad ones are the shards' to report)."""
    from harness.inputs import BadImage, read_jpeg

    datas = []
    for path in paths:
        try:
            datas.append(read_jpeg(path, strict).data)
        except BadImage:
            continue
        if len(datas) == count:
            break
    return datas


def run(args) -> int:
    rank, size, local = _world()
    if size > 1:
        _join(rank, size)
    try:
        return _run(args, rank, size, local)
    finally:
        if size > 1:
            _leave()


def _run(args, rank: int, size: int, local: int) -> int:
    from harness.cli import config_from_args
    from harness.config import cuda_device_count
    from harness.inputs import find_jpegs, output_names, prepare_output_dir, read_jpeg
    from harness.files import check_writable, write_atomic
    from harness.pipeline import Pipeline
    from harness.resolve import resolve
    from harness.run_file import process_record, results_json
    from harness.runner import run_jobs, warm_up

    def set_up():
        """Everything before the timed run, on every rank; a failure on any rank stops them all."""
        if args.procs_per_gpu < 1 or args.warmup_batches < 0:
            raise HarnessError("--procs_per_gpu must be 1 or more and --warmup_batches 0 or more")
        baseline = baseline_images_per_s(args.baseline) if args.baseline else None
        if rank == 0:
            check_writable(Path(args.json), "--json")
            if args.trace:
                check_writable(Path(args.trace), "--trace")
        config = config_from_args(args)
        gpus = cuda_device_count()
        if config.device != "cpu" and gpus:
            device_id = local // args.procs_per_gpu
            if device_id >= gpus:
                raise HarnessError(f"local rank {local} needs GPU {device_id} and this node has {gpus}: start at "
                                   f"most {gpus * args.procs_per_gpu} processes per node (--nproc-per-node)")
            config = config.replace(device_id=device_id)
        plan = resolve(config)
        config = plan.config
        paths = find_jpegs(args.input_path, config.batch_size)
        if not Path(args.input_path).is_dir():
            read_jpeg(paths[0], strict=not config.lenient)  # a bad single file is fatal, as on the command line
        out_dir = prepare_output_dir(args.output_dir, args.input_path)
        jobs = list(zip(paths, output_names(paths, out_dir)))
        pipeline = Pipeline(plan)
        pipeline.prepare(config.batch_size)
        warmup = _first_readable([path for path, _ in jobs], config.batch_size, strict=not config.lenient)
        warm_up(pipeline, warmup, args.warmup_batches)
        return plan, baseline, out_dir, shard(jobs, rank, size), pipeline

    plan, baseline, out_dir, mine, pipeline = _together(size, set_up)
    config = plan.config

    def skip(path: Path, reason: str) -> None:
        if config.strict:
            raise HarnessError(reason if str(path) in reason else f"{path}: {reason}")
        print(f"Skipping {path}: {reason}", file=sys.stderr)

    def timed() -> dict:
        record = process_record(pipeline, lambda: run_jobs(pipeline, mine, out_dir, on_skip=skip),
                                len(mine), rank, local)
        if not args.trace:
            record["spans"] = None  # the timelines travel to rank 0 only where it writes them
        return record

    everyone = _together(size, timed, share=True)
    if sum(r["images"] for r in everyone) == 0:
        raise HarnessError("no input image could be processed: see the messages above")
    spans = {answer["rank"]: answer.pop("spans") for answer in everyone}
    if rank == 0:
        output = results_json(plan, everyone, args, baseline)
        write_atomic(Path(args.json), json.dumps(output, indent=1).encode())
        if args.trace:
            from harness.cli import trace_metadata
            from harness.trace import write_trace

            write_trace(Path(args.trace), spans, {**trace_metadata(plan, "harness.distributed"), "world_size": size})
        whole = output["benchmarks"][-1]["extra_info"]
        efficiency = whole["scaling_efficiency"]
        print(f"{size} process(es): {whole['images']} images in {whole['seconds']:.2f} s, "
              f"{whole['images_per_s']:.1f} images/s; per rank "
              + ", ".join(f"{r:.1f}" for r in whole["per_rank_images_per_s"])
              + (f"; scaling efficiency {efficiency:.1%}" if efficiency is not None else "")
              + f". Results: {args.json}" + (f"; timeline: {args.trace}" if args.trace else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    from harness.errors import guarded, imported

    argv = sys.argv[1:] if argv is None else argv
    imported("harness.distributed", "harness.cli", "--debug" in argv)  # torch and the rest, under the contract
    args = build_parser().parse_args(argv)
    return guarded("harness.distributed", run, args, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
