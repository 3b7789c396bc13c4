"""Where a lane's host CPU goes: one batch's decode, compute and encode of a preset, each run REPEATS times on
this thread with nothing beside it, under cProfile.  Prints each phase's wall and thread-CPU milliseconds a
batch (median) and the functions with the most own time.  The runs' `lane_cpu_seconds` say which lane uses
the interpreter lock most; this says on what.
Usage: python tools/lane_cpu_profile.py [--preset fastest-fused] [--batch 32] [--size 224]
             [--images DIR] [--repeats 20] [--top 15]"""

import argparse
import cProfile
import io
import pstats
import statistics
import time
from pathlib import Path

import torch

from harness.benchkit import photographs
from harness.cli import build_parser, config_from_args
from harness.pipeline import Pipeline
from harness.presets import flags
from harness.timing import NullClock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="fastest-fused")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", help="a folder of JPEGs (default: the shipped photographs at 1920x1080)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    options = build_parser().parse_args(["-b", str(args.batch), "-th", str(args.size), "-tw", str(args.size),
                                         "--model", "fcn_resnet101", "--weights", "synthetic", *flags(args.preset)])
    pipeline = Pipeline(config_from_args(options))
    pipeline.prepare(args.batch)
    if args.images:
        datas = [path.read_bytes() for path in sorted(Path(args.images).glob("*.jpg"))[:args.batch]]
    else:
        datas = photographs("1920x1080", args.batch)
    clock = NullClock()
    synchronize = torch.cuda.synchronize if pipeline.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        frames = pipeline.decode(datas, clock).frames
        overlays = pipeline.compute(frames, clock)[1]
        work = {"decode": lambda: pipeline.decode(datas, clock), "compute": lambda: pipeline.compute(frames, clock),
                "encode": lambda: pipeline.encode(overlays, clock)}
        for name in work:
            for _ in range(3):
                work[name]()
            synchronize()
            walls, cpus, profile = [], [], cProfile.Profile()
            for _ in range(args.repeats):
                wall, cpu = time.perf_counter(), time.thread_time()
                profile.enable()
                work[name]()
                profile.disable()
                cpus.append(time.thread_time() - cpu)
                synchronize()
                walls.append(time.perf_counter() - wall)
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
            print(f"== {name}: wall {1e3 * statistics.median(walls):.2f} ms, thread CPU "
                  f"{1e3 * statistics.median(cpus):.2f} ms a batch of {len(datas)} (median of {args.repeats}, "
                  f"cProfile on)")
            print("\n".join(line for line in text.getvalue().splitlines()[6:] if line.strip()), flush=True)


if __name__ == "__main__":
    main()
