"""The TensorRT backend (FCN-ResNet101 through ONNX by default), written against the TensorRT 10 Python API.

TensorRT cannot be installed on this project's machines, so `tensorrt` is imported lazily and a machine
without it gets a one-line error; where it imports, the backend contract tests run against it.

Build: parse the cached ONNX graph, one optimization profile (batch min 1, opt = max = the batch size),
FP16 for --precision fp16, TF32 only for tf32 (fp32 means IEEE), and a timing cache.  The serialized
engine is cached under a key of GPU name and compute capability, TensorRT version, ONNX file hash, shape
and precision.  Two processes building the same engine serialize on a file lock and write through a
temporary file and a rename, so the cache is never half written.  Run: tensor addresses and
execute_async_v3 on the pipeline's stream, the output preallocated for the largest batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from filelock import FileLock

from harness import HarnessError
from harness.backends import BACKENDS, Backend
from harness.backends.onnx_export import INPUT, OUTPUT, cached_onnx
from harness.cache import cache_folder
from harness.files import sha256_hex, write_atomic
from harness.models import CLASS_NAMES

WORKSPACE_BYTES = 4 << 30


def import_tensorrt():
    BACKENDS.require("tensorrt")  # one line naming the package and the fix where it is missing
    import tensorrt

    return tensorrt


@BACKENDS.register("tensorrt")
class TensorrtBackend(Backend):
    name = "tensorrt"
    default_model = "fcn_resnet101"
    devices = ("cuda",)
    needs = (("tensorrt", "NVIDIA TensorRT 10"),)
    install = ("pip install 'cvcuda-seg-harness[trt]' on a machine where it is available, or use -bk pytorch or "
               "onnxruntime")

    def __init__(self, plan):
        self.trt = import_tensorrt()
        if plan.device.type != "cuda":
            raise HarnessError("-bk tensorrt needs a CUDA GPU: use -bk pytorch or onnxruntime on the CPU")
        super().__init__(plan)
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.context = None

    def engine_key(self, onnx_path: Path, batch_size: int, height: int, width: int) -> dict:
        props = torch.cuda.get_device_properties(self.device)
        return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
                "tensorrt": self.trt.__version__, "onnx_sha256": sha256_hex(onnx_path.read_bytes()),
                "batch_size": batch_size, "height": height, "width": width, "precision": self.config.precision}

    def _build(self, batch_size: int, height: int, width: int) -> None:
        onnx_path = cached_onnx(self.model, height, width, self.config.cache_dir)
        key = self.engine_key(onnx_path, batch_size, height, width)
        digest = sha256_hex(json.dumps(key, sort_keys=True).encode())[:16]
        folder = cache_folder(self.config.cache_dir, "tensorrt")
        path = folder / f"{self.model.name}-b{batch_size}-{height}x{width}-{self.config.precision}-{digest}.engine"
        with FileLock(str(path) + ".lock"):
            engine = self._load(path) if path.exists() else None
            if engine is None:
                data = self._build_serialized(onnx_path, folder / "timing.cache", batch_size, height, width)
                write_atomic(path, data)
                write_atomic(path.with_suffix(".json"), json.dumps(key, indent=1, sort_keys=True).encode())
                engine = self._load(path)
        self.engine, self.engine_path = engine, path
        self.context = engine.create_execution_context()
        self.output = torch.empty((batch_size, len(CLASS_NAMES), height, width), dtype=torch.float32,
                                  device=self.device)

    def _load(self, path: Path):
        """The deserialized engine, or None when the file is not a usable engine (it is then rebuilt)."""
        runtime = self.trt.Runtime(self.logger)
        return runtime.deserialize_cuda_engine(path.read_bytes())

    def _build_serialized(self, onnx_path: Path, timing_path: Path, batch_size: int, height: int, width: int) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise HarnessError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.dtype == torch.float16:
            config.set_flag(trt.BuilderFlag.FP16)
        if not self.tf32:
            config.clear_flag(trt.BuilderFlag.TF32)
        profile = builder.create_optimization_profile()
        full = (batch_size, 3, height, width)
        profile.set_shape(INPUT, (1, 3, height, width), full, full)
        config.add_optimization_profile(profile)
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise HarnessError(f"TensorRT could not build an engine from {onnx_path}: see its log above")
        write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.float().contiguous()
        n = batch.shape[0]
        out = self.output[:n]  # a prefix along the batch axis is contiguous
        self.context.set_input_shape(INPUT, tuple(batch.shape))
        self.context.set_tensor_address(INPUT, batch.data_ptr())
        self.context.set_tensor_address(OUTPUT, out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise HarnessError("TensorRT failed to run the engine: see its log above")
        return out

    def identity(self) -> dict:
        return {**super().identity(), "tensorrt": self.trt.__version__, "engine": str(self.engine_path.name)}
