"""Why does nvImageCodec take 18-50 ms a batch of 32 in the pipeline against 7.6 ms alone (issue 27): the
cores, or the interpreter lock?  It decodes a batch of 1080p JPEGs, and encodes the decoded images back,
alone; beside the read lane's work (harness.reading's process checking the files in a loop: its cores, few
interpreter-lock handoffs); beside BUSY threads that only run Python (the lock, one core); and beside both
(as in the pipeline).  Each with every number of codec threads (HARNESS_CODEC_THREADS; 0 is nvImageCodec's
default, every core) and every interpreter switch interval given.  Median ms a batch of REPEATS (after 3
to warm), GPU work included; the JSON is written after each measurement (beside busy threads a batch can take
2 s: a time limit keeps what was measured).
Usage (GPU): python tools/decode_check.py [--images DIR] [--batch 32] [--busy 3] [--codec-threads 0,4]
             [--switch-ms 5,0.5] [--repeats 20] [--json FILE]"""

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", help="a folder of JPEGs (default: the shipped photographs at 1920x1080)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--busy", type=int, default=3)
    parser.add_argument("--codec-threads", default="0,4")
    parser.add_argument("--switch-ms", default="5,0.5", help="sys.setswitchinterval values, in ms")
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

        def encode():
            encoder.encode([nvimgcodec.as_image(image) for image in images], "jpeg")

        for switch_ms in [float(ms) for ms in args.switch_ms.split(",")]:
            sys.setswitchinterval(switch_ms / 1000)
            for load in ("alone", "reads", "busy", "reads+busy"):
                stop = threading.Event()
                reader = threading.Thread(target=reads, args=(stop, paths, args.batch))
                if "reads" in load:
                    reader.start()
                with busy_python(args.busy if "busy" in load else 0):
                    time.sleep(0.2)
                    decode_ms = median_cuda_ms(lambda: decoder._decode(datas), args.repeats)
                    encode_ms = median_cuda_ms(encode, args.repeats)
                stop.set()
                if reader.is_alive():
                    reader.join()
                run = {"codec_threads": threads, "switch_ms": switch_ms, "load": load,
                       "decode_ms": round(decode_ms, 2), "encode_ms": round(encode_ms, 2)}
                results["runs"].append(run)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
                print(f"codec threads {threads or 'default'}, switch {switch_ms} ms, {load}: "
                      f"decode {decode_ms:.1f} ms, encode {encode_ms:.1f} ms a batch of {len(datas)}", flush=True)
    sys.setswitchinterval(0.005)


if __name__ == "__main__":
    main()
