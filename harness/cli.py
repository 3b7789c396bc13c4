"""The command line: CV-CUDA's segmentation sample's flags and messages, plus the harness's own options."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from harness import HarnessError, __version__
from harness.errors import OneLineParser, guarded
from harness.config import EXECUTORS, Config

DEFAULTS = Config()


def build_parser() -> argparse.ArgumentParser:
    from harness.inputs import sample_dir

    p = OneLineParser(prog="harness", description="Semantic segmentation of JPEG images: decode, preprocess, infer, "
                      "postprocess and save overlays, on the GPU with CV-CUDA or on the CPU.")
    sample = p.add_argument_group("the segmentation sample's options")
    sample.add_argument("-i", "--input_path", default=str(sample_dir()),
                        help="a JPEG file (replicated -b times) or a directory of .jpg/.jpeg files")
    sample.add_argument("-o", "--output_dir", default="/tmp", help="where the out_<name>.jpg overlays are written")
    sample.add_argument("-c", "--class_name", default=DEFAULTS.class_name, help="the VOC class to keep sharp")
    sample.add_argument("-th", "--target_img_height", type=int, default=DEFAULTS.target_img_height,
                        help="model input height")
    sample.add_argument("-tw", "--target_img_width", type=int, default=DEFAULTS.target_img_width,
                        help="model input width")
    sample.add_argument("-b", "--batch_size", type=int, default=DEFAULTS.batch_size, help="images per batch")
    sample.add_argument("-d", "--device_id", type=int, default=DEFAULTS.device_id, help="CUDA device index")
    sample.add_argument("-bk", "--backend", default=DEFAULTS.backend,
                        help="inference backend: pytorch, tensorrt or onnxruntime")

    p.add_argument("--version", action="version", version=f"harness {__version__}")
    own = p.add_argument_group("harness options")
    own.add_argument("--model", default=None, help="deeplabv3_resnet101 (pytorch's default), fcn_resnet101 "
                     "(tensorrt's default) or lraspp_mobilenet_v3_large (small, for quick runs)")
    own.add_argument("--weights", default=DEFAULTS.weights,
                     help="auto (pretrained if obtainable, else synthetic), pretrained, synthetic, "
                          "or a state-dict path")
    own.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the synthetic weights")
    own.add_argument("--precision", default=DEFAULTS.precision,
                     help="fp32 (IEEE), tf32 (TF32 convolutions, GPU) or fp16 (GPU)")
    own.add_argument("--channels_last", action="store_true", default=None,
                     help="run the model in channels-last memory format (the default for GPU fp16 and tf32)")
    own.add_argument("--no_channels_last", dest="channels_last", action="store_false",
                     help="run the model in NCHW (the default for IEEE fp32 and the CPU)")
    own.add_argument("--no_cudnn_benchmark", dest="cudnn_benchmark", action="store_false",
                     help="use cuDNN's heuristic convolution algorithms instead of timing them per shape")
    own.add_argument("--aux_head", action="store_true",
                     help="also compute the auxiliary FCN head, as the sample's pretrained models do (pytorch backend)")
    own.add_argument("--preprocess", default=DEFAULTS.preprocess,
                     help="staged (resize, convert, normalize, reformat), fused (CV-CUDA's fused "
                          "resize_crop_convert_reformat plus one normalization pass; --ops cvcuda) or folded "
                          "(resize, then a cast: the normalization is folded into the model's first convolution)")
    own.add_argument("--postprocess", default=DEFAULTS.postprocess,
                     help="staged (softmax, mask, upscale, blur, overlay) or fused (the mask from the logits' "
                          "argmax, without the softmax; then upscale, blur and overlay timed as one stage)")
    own.add_argument("--compile", default=DEFAULTS.compile,
                     help="torch.compile the model with this mode: off (eager), default, reduce-overhead, "
                          "max-autotune or max-autotune-no-cudagraphs (pytorch backend; compiled once per "
                          "batch size and model size, cached under --cache_dir)")
    own.add_argument("--cuda_graph", action="store_true",
                     help="capture the model call in a CUDA graph and replay it per batch (pytorch backend, GPU); "
                          "a last batch smaller than -b is padded")
    own.add_argument("--fuse_conv", action="store_true",
                     help="fold each BatchNorm into its convolution and, on a GPU, apply the ReLU and a ResNet "
                          "block's shortcut addition inside cuDNN's convolution (pytorch backend)")
    own.add_argument("--ops", default=DEFAULTS.ops, help="ops engine: auto, cvcuda, torch or opencv")
    own.add_argument("--decoder", default=DEFAULTS.decoder, help="JPEG decoder: auto, nvimgcodec, torchvision or cpu")
    own.add_argument("--device", default=DEFAULTS.device, help="auto, cuda or cpu (cpu runs everything on the CPU)")
    own.add_argument("--blur_kernel", type=int, default=DEFAULTS.blur_kernel, help="Gaussian kernel size (odd)")
    own.add_argument("--blur_sigma", type=float, default=DEFAULTS.blur_sigma, help="Gaussian sigma")
    own.add_argument("--blur_mode", default=DEFAULTS.blur_mode,
                     help="exact (the Gaussian at full size) or downscaled (the same look at 1/N the size: faster)")
    own.add_argument("--blur_downscale", type=int, default=DEFAULTS.blur_downscale, help="N for --blur_mode downscaled")
    own.add_argument("--jpeg_quality", type=int, default=DEFAULTS.jpeg_quality, help="quality of the overlays")
    own.add_argument("--partial_batch", default=DEFAULTS.partial_batch,
                     help="a last batch smaller than -b: 'dynamic' runs it as it is, 'pad' pads it with zeros")
    own.add_argument("--ort_provider", default=DEFAULTS.ort_provider,
                     help="ONNX Runtime execution provider: auto, cpu, cuda or tensorrt")
    own.add_argument("--cache_dir", default=None,
                     help="where ONNX exports, TensorRT engines and torch.compile's caches are kept "
                          "(default $HARNESS_CACHE or ~/.cache/harness)")
    own.add_argument("--executor", default=DEFAULTS.executor, choices=EXECUTORS,
                     help="overlapped: decode, compute and encode of different batches at once, each on its own "
                          "thread and CUDA stream; sequential: one batch at a time through every stage")
    own.add_argument("--depth", type=int, default=DEFAULTS.depth,
                     help="batches in flight between two lanes of the overlapped executor (GPU memory grows with it)")
    own.add_argument("--strict", action="store_true",
                     help="stop at the first bad input file instead of reporting and skipping it")
    own.add_argument("--lenient", action="store_true",
                     help="let JPEGs that libjpeg reports as corrupt or truncated through, decoded as far as they go")
    own.add_argument("--json", default=None, metavar="FILE",
                     help="write the run's results (images/s, per-stage medians, lanes, the GPU's state) as a "
                          "benchmark JSON file that harness.report reads")
    own.add_argument("--trace", default=None, metavar="FILE",
                     help="write the run's timeline (each lane and stage per batch, host and CUDA-event times) as "
                          "a Chrome trace / Perfetto JSON file: open it in https://ui.perfetto.dev")
    own.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The request: every Config field is read from the parser entry of the same name (its dest)."""
    return Config(**{field.name: getattr(args, field.name) for field in dataclasses.fields(Config)})


def run(args: argparse.Namespace) -> int:
    from harness.inputs import find_jpegs, output_names, prepare_output_dir, read_jpeg
    from harness.files import check_writable, write_atomic
    from harness.run_file import process_record, results_json
    from harness.pipeline import Pipeline
    from harness.resolve import resolve
    from harness.runner import run_jobs

    for option, path in (("--json", args.json), ("--trace", args.trace)):
        if path:
            check_writable(Path(path), option)
    plan = resolve(config_from_args(args))
    config = plan.config
    paths = find_jpegs(args.input_path, config.batch_size)
    directory_run = Path(args.input_path).is_dir()
    print(f"Read a total of {len(paths)} JPEG images.")
    if not directory_run:
        read_jpeg(paths[0], strict=not config.lenient)  # a bad single file is fatal: say so before loading a model
    out_dir = prepare_output_dir(args.output_dir, args.input_path)
    pipeline = Pipeline(plan)
    print(f"Using {config.device} (ops {config.ops}, decoder {config.decoder}, backend {config.backend}, "
          f"model {config.model}, weights {pipeline.backend.model.weights}, {config.precision}).")
    pipeline.prepare(config.batch_size)
    print(f"Prepared the model for batches of {config.batch_size} in {pipeline.backend.setup_seconds:.2f} s"
          f"{' (compiling)' if config.compile != 'off' else ''}.", flush=True)
    started = time.perf_counter()

    def progress(number: int, total: int, done) -> None:
        rate = ""
        if number > 1:
            elapsed = time.perf_counter() - started
            speed = done.written / elapsed
            left = (len(paths) - done.written - len(done.skipped)) / speed if speed else 0
            rate = f" ({speed:.1f} images/s, about {left:.0f} s left)"
        print(f"Processing batch {number} of {total}{rate}", flush=True)

    def skip(path: Path, reason: str) -> None:
        if config.strict or not directory_run:
            raise HarnessError(reason if str(path) in reason else f"{path}: {reason}")
        print(f"Skipping {path}: {reason}", file=sys.stderr)

    def saved(target: Path) -> None:
        print(f"\tSaving the overlay result for {config.class_name} class to: {target}")

    jobs = list(zip(paths, output_names(paths, out_dir)))
    record = process_record(pipeline, lambda: run_jobs(pipeline, jobs, out_dir, on_batch=progress, on_skip=skip,
                                                       on_written=saved), len(jobs))
    written, seconds, spans = record["images"], record["seconds"], record.pop("spans")
    if written == 0:
        raise HarnessError("no input image could be processed: see the messages above")
    note = f"; skipped {record['skipped']} bad file(s)" if record["skipped"] else ""
    lanes = record["lane_seconds"]
    busiest = max(lanes, key=lanes.get)
    print(f"Wrote {written} overlay(s) to {out_dir} in {seconds:.2f} s ({written / seconds:.1f} images/s){note}; "
          f"the busiest lane: {busiest}, {lanes[busiest]:.2f} s of the {seconds:.2f} s.")
    if args.json:
        output = results_json(plan, [record], args, None, "harness")
        write_atomic(Path(args.json), json.dumps(output, indent=1).encode())
        print(f"Wrote the results to {args.json}: python -m harness.report report {args.json}")
    if args.trace:
        from harness.trace import write_trace

        write_trace(Path(args.trace), spans, trace_metadata(plan, "harness"))
        print(f"Wrote the run's timeline to {args.trace}: open it in https://ui.perfetto.dev")
    return 0


def trace_metadata(plan, command: str) -> dict:
    """What a --trace file says about its run: the command, the harness and the resolved configuration."""
    return {"command": command, "harness": __version__, **dataclasses.asdict(plan.config)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("harness", run, args, debug=args.debug)
