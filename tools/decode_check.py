"""Why does nvImageCodec take 18-50 ms a batch of 32 in the pipeline against 7.6 ms alone (issue 27): the
cores, or the interpreter lock?  It decodes a batch of 1080p JPEGs, and encodes the decoded images back,
alone; beside the read lane's work (harness.reading's process checking the files in a loop: its cores, few
interpreter-lock handoffs); beside BUSY threads that only run Python (the lock, one core); beside both (as in
the pipeline); and beside the other codec call in a loop on another thread ("codec": decode beside encode and
encode beside decode, as the pipeline's decode and encode lanes run).  Each with every number of codec
threads (HARNESS_CODEC_THREADS; 0 is nvImageCodec's default, every core) and every interpreter switch
interval given.  It also times the hand-over of the decoded images to PyTorch both ways: torch.as_tensor
(reads __cuda_array_interface__) and torch.from_dlpack (harness.decode's).  Median ms a batch of REPEATS
(after 3 to warm), GPU work included; the JSON is written after each measurement (beside busy threads a batch
can take 2 s: a time limit keeps what was measured).
Usage (GPU): python tools/decode_check.py [--images DIR] [--batch 32] [--busy 3] [--codec-threads 0,4]
             [--switch-ms 5,0.5] [--loads alone,reads,busy,reads+busy,codec] [--repeats 20] [--json FILE]"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from harness.benchkit import busy_python, photographs
from harness.decode import NvImageCodecDecoder, codec_threads
from harness.reading import read_files, read_workers
from harness.runner import write_jobs
from harness.timing import median_cuda_ms


def reads(stop: threading.Event, paths: list[Path], batch: int) -> None:
    while not stop.is_set():
        for at in range(0, len(paths), batch):
            read_files(paths[at:at + batch], True)


def looping(stop: threading.Event, work) -> None:
    while not stop.is_set():
        work()
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", help="a folder of JPEGs (default: the shipped photographs at 1920x1080)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--busy", type=int, default=3)
    parser.add_argument("--codec-threads", default="0,4")
    parser.add_argument("--switch-ms", default="5,0.5", help="sys.setswitchinterval values, in ms")
    parser.add_argument("--loads", default="alone,reads,busy,reads+busy,codec")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    from nvidia import nvimgcodec

    if args.images:
        paths = sorted(Path(args.images).glob("*.jpg"))
    else:
        paths = [path for path, _ in write_jobs(photographs("1920x1080", 4 * args.batch), Path(tempfile.mkdtemp()))]
    datas = [path.read_bytes() for path in paths[:args.batch]]
    device = torch.device("cuda", 0)
    results = {"gpu": torch.cuda.get_device_name(0), "cores": len(os.sched_getaffinity(0)), "batch": len(datas),
               "read_workers": read_workers(), "busy_threads": args.busy, "runs": []}
    for threads in [int(n) for n in args.codec_threads.split(",")]:
        os.environ["HARNESS_CODEC_THREADS"] = str(threads) if threads else ""
        decoder = NvImageCodecDecoder(device)
        encoder = nvimgcodec.Encoder(device_id=0, max_num_cpu_threads=codec_threads())
        images = decoder._decode(datas)
        stream = torch.cuda.current_stream(device).cuda_stream
        raw = decoder._decoder.decode(datas, params=decoder._params, cuda_stream=stream)

        def encode():
            encoder.encode([nvimgcodec.as_image(image) for image in images], "jpeg")

        def decode():
            decoder._decode(datas)

        handovers = {"as_tensor": lambda: [torch.as_tensor(image, device=device) for image in raw],
                     "from_dlpack": lambda: [torch.from_dlpack(image) for image in raw]}
        for switch_ms in [float(ms) for ms in args.switch_ms.split(",")]:
            sys.setswitchinterval(switch_ms / 1000)
            for load in args.loads.split(","):
                run = {"codec_threads": threads, "switch_ms": switch_ms, "load": load}
                for name, work, other in (("decode", decode, encode), ("encode", encode, decode),
                                          *((f"handover_{n}", w, encode) for n, w in handovers.items())):
                    stop = threading.Event()
                    beside = [threading.Thread(target=reads, args=(stop, paths, args.batch))] if "reads" in load else []
                    beside += [threading.Thread(target=looping, args=(stop, other))] if load == "codec" else []
                    for thread in beside:
                        thread.start()
                    with busy_python(args.busy if "busy" in load else 0):
                        time.sleep(0.2)
                        run[f"{name}_ms"] = round(median_cuda_ms(work, args.repeats), 3)
                    stop.set()
                    for thread in beside:
                        thread.join()
                results["runs"].append(run)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
                times = {key[:-3]: value for key, value in run.items() if key.endswith("_ms") and key != "switch_ms"}
                print(f"codec threads {threads or 'default'}, switch {switch_ms} ms, {load}: "
                      + ", ".join(f"{name} {value:.2f}" for name, value in times.items())
                      + f" ms a batch of {len(datas)}", flush=True)
    sys.setswitchinterval(0.005)


if __name__ == "__main__":
    main()
