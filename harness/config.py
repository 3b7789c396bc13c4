"""The user's request (Config) and what it resolves to on this machine (Plan): two frozen types, so that
the parts are built from choices made once, never from a request with 'auto' engines or devices in it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from harness import HarnessError

if TYPE_CHECKING:
    import torch

MAX_SIDE = 8192  # the largest model input side we accept; larger is a typo, not a workload
MIN_SIDE = 16  # the models downsample by 8 and need a few pixels left over
MAX_BATCH_SIZE = 4096  # beyond any GPU's memory at the smallest model size; larger is a typo

DEVICES = ("auto", "cuda", "cpu")
PRECISIONS = ("fp32", "tf32", "fp16")  # tf32: fp32 tensors, TF32 tensor-core convolutions and matmuls
#: Options that change how the model is built or run, with their flags: a backend runs those it declares in
#: Backend.model_options (harness.resolve refuses the rest).
MODEL_OPTIONS = {"compile": "--compile", "cuda_graph": "--cuda_graph", "fuse_conv": "--fuse_conv",
                 "aux_head": "--aux_head"}
PREPROCESSING = ("staged", "fused", "folded")  # see harness.PREPROCESS_STAGES
#: torch.compile's modes, and "off" for eager PyTorch (the pytorch backend's --compile)
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

EXECUTORS = ("overlapped", "sequential")  # see harness.runner
DEFAULT_DEPTH = 2  # batches waiting between two lanes (measured: reports/h100-2026-11-25-overlap/README.md)

#: The sample's blur: a 27x27 Gaussian kernel with sigma 25.  The kernel is cut off at half a
#: sigma, so it acts close to a 27-pixel box filter (standard deviation about 7.6 px): clearly
#: visible at 1920x1080, and the same work as CV-CUDA's sample, which the benchmarks compare with.
DEFAULT_BLUR_KERNEL = 27
DEFAULT_BLUR_SIGMA = 25.0


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@dataclass(frozen=True)
class Config:
    """Everything one pipeline run needs.  Field names follow the sample's flags where it has one."""

    class_name: str = "person"
    target_img_height: int = 224
    target_img_width: int = 224
    batch_size: int = 1
    device_id: int = 0
    backend: str = "pytorch"
    model: Optional[str] = None  # None: the backend's default model
    weights: str = "auto"  # auto | pretrained | synthetic | path to a state dict
    seed: int = 0  # synthetic weights' seed
    precision: str = "fp32"
    channels_last: Optional[bool] = None  # None: channels_last_default() (on for GPU fp16/tf32)
    cudnn_benchmark: bool = True  # let cuDNN time its convolution algorithms per shape (pytorch backend)
    ops: str = "auto"  # auto | cvcuda | torch | opencv
    decoder: str = "auto"  # auto | nvimgcodec | torchvision | cpu
    device: str = "auto"  # auto | cuda | cpu: where decode, stages and inference run
    blur_kernel: int = DEFAULT_BLUR_KERNEL
    blur_sigma: float = DEFAULT_BLUR_SIGMA
    preprocess: str = "staged"  # staged | fused | folded: see harness.PREPROCESS_STAGES
    postprocess: str = "staged"  # staged | fused: see harness.POSTPROCESS_STAGES
    compile: str = "off"  # a COMPILE_MODES entry: torch.compile the model (pytorch backend)
    cuda_graph: bool = False  # capture the model call in one CUDA graph per shape, replayed per batch (pytorch)
    fuse_conv: bool = False  # BatchNorms folded into the convolutions, ReLU and shortcut inside cuDNN (pytorch)
    aux_head: bool = False  # compute the auxiliary FCN head as the sample's pretrained model does (pytorch)
    blur_mode: str = "exact"  # exact | downscaled (see harness/ops/__init__.py)
    blur_downscale: int = 4  # the downscaled blur's factor
    jpeg_quality: int = 90
    partial_batch: str = "dynamic"  # dynamic | pad: how a backend runs a batch smaller than it was built for
    ort_provider: str = "auto"  # auto | cpu | cuda | tensorrt: ONNX Runtime's execution provider
    cache_dir: Optional[str] = None  # ONNX files and TensorRT engines; None: $HARNESS_CACHE or ~/.cache/harness
    # Files through the pipeline (harness.runner: the command line, harness.distributed, the benchmarks)
    executor: str = "overlapped"  # an EXECUTORS entry
    depth: int = DEFAULT_DEPTH  # batches in flight between two lanes of the overlapped executor
    strict: bool = False  # stop at the first bad input file instead of skipping it
    lenient: bool = False  # let JPEGs that libjpeg calls corrupt through to the decoders

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    @property
    def model_size(self) -> tuple[int, int]:
        return (self.target_img_height, self.target_img_width)

    def validate(self) -> "Config":
        """Check the values that need neither hardware nor the registries of parts (harness.resolve checks the
        names of engines, decoders, backends, models and classes); raise HarnessError naming the problem and
        the fix."""
        for flag, value in (("-th/--target_img_height", self.target_img_height),
                            ("-tw/--target_img_width", self.target_img_width)):
            if not MIN_SIDE <= value <= MAX_SIDE:
                raise HarnessError(f"{flag} is {value}: give a size between {MIN_SIDE} and {MAX_SIDE} pixels")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise HarnessError(f"-b/--batch_size is {self.batch_size}: give 1 to {MAX_BATCH_SIZE}")
        if self.device_id < 0:
            raise HarnessError(f"-d/--device_id is {self.device_id}: give a GPU index, 0 or more")
        check_choice("device (--device)", self.device, DEVICES)
        check_choice("precision (--precision)", self.precision, PRECISIONS)
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0 or self.blur_kernel > 255:
            raise HarnessError(f"--blur_kernel is {self.blur_kernel}: give an odd size between 1 and 255")
        check_choice("preprocessing (--preprocess)", self.preprocess, PREPROCESSING)
        check_choice("post-processing (--postprocess)", self.postprocess, ("staged", "fused"))
        check_choice("compile mode (--compile)", self.compile, COMPILE_MODES)
        if self.cuda_graph and self.compile in ("reduce-overhead", "max-autotune"):
            raise HarnessError(f"--compile {self.compile} captures CUDA graphs itself: drop --cuda_graph, "
                               "or use --compile default or max-autotune-no-cudagraphs with it")
        check_choice("blur mode (--blur_mode)", self.blur_mode, ("exact", "downscaled"))
        if not 2 <= self.blur_downscale <= 16:
            raise HarnessError(f"--blur_downscale is {self.blur_downscale}: give 2 to 16")
        check_choice("partial batch mode (--partial_batch)", self.partial_batch, ("dynamic", "pad"))
        check_choice("ONNX Runtime provider (--ort_provider)", self.ort_provider, ("auto", "cpu", "cuda", "tensorrt"))
        if not 1 <= self.jpeg_quality <= 100:
            raise HarnessError(f"--jpeg_quality is {self.jpeg_quality}: give 1 to 100")
        check_executor(self.executor, self.depth)
        return self

def model_options(config: Config) -> list[str]:
    """The MODEL_OPTIONS this request uses: each backend declares the ones it runs (Backend.model_options)."""
    return [name for name in MODEL_OPTIONS if getattr(config, name) != getattr(Config, name)]


@dataclass(frozen=True)
class Plan:
    """A request resolved for this machine, the way timm's resolve_precision turns a string into dtypes.
    Decoders, engines and backends are built from a Plan only.  `config` has the device, ops engine,
    decoder, model, memory format and cache folder chosen.  Two 'auto's are left to the backend, because
    only loading tells: --weights (pretrained if obtainable) and --ort_provider (CUDA if installed)."""

    request: Config  # as the user gave it
    config: Config  # the request with every 'auto' and default replaced
    device: "torch.device"
    class_index: int  # the class's index among the model's classes (harness.models.CLASS_NAMES)

    @property
    def dtype(self) -> "torch.dtype":
        """The model's tensors: float16 for fp16, float32 for fp32 and tf32 (TF32 is float32 with TF32 math)."""
        import torch

        return torch.float16 if self.config.precision == "fp16" else torch.float32

    @property
    def tf32(self) -> bool:
        """Whether convolutions and matmuls may use TF32 tensor cores (tf32 only: fp32 means IEEE)."""
        return self.config.precision == "tf32"

    def defaults(self) -> Config:
        """The option defaults on this plan's device and precision (what a run's variant is compared with);
        engine, decoder and model are left as a plain request has them."""
        return Config().replace(device=self.config.device, precision=self.config.precision,
                                channels_last=channels_last_default(self.config.device, self.config.precision))


def torch_device(kind: str, index: int):
    import torch

    return torch.device("cuda", index) if kind == "cuda" else torch.device("cpu")


def channels_last_default(device: str, precision: str) -> bool:
    """Channels-last where tensor cores run the convolutions: GPU fp16 and tf32.  On the H100 it made
    DeepLabV3 inference at batch 32/520 1.46x faster in fp16 and 1.22x in tf32 (reports/h100-2026-11-24,
    followup/inference-options.json); IEEE fp32 and the CPU were not measured with it and keep NCHW."""
    return device == "cuda" and precision in ("fp16", "tf32")


def check_executor(executor: str, depth: int) -> None:
    """Refuse an unknown executor or a depth under 1 (the command line before any model work, run_jobs for a
    library caller)."""
    check_choice("executor (--executor)", executor, EXECUTORS)
    if depth < 1:
        raise HarnessError(f"--depth is {depth}: give 1 or more")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise HarnessError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")
