"""The ONNX Runtime backend: runs the same exported graph as TensorRT, on every machine.

Execution providers: CPU everywhere; CUDA where onnxruntime-gpu is installed, with I/O binding to the
pipeline's torch tensors and ONNX Runtime's work on the pipeline's stream (no host copies); TensorRT's
provider where it is available and asked for.  On a GPU pipeline without a GPU provider it runs on the
CPU provider and copies through the host (said once on stderr).  It runs the fp32 graph only.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from harness import HarnessError
from harness.backends import BACKENDS, Backend
from harness.backends.onnx_export import INPUT, OUTPUT, cached_onnx
from harness.models import CLASS_NAMES

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


@BACKENDS.register("onnxruntime")
class OnnxruntimeBackend(Backend):
    name = "onnxruntime"
    default_model = "fcn_resnet101"
    needs = (("onnxruntime", "ONNX Runtime"), ("onnx", "onnx"))
    install = "pip install onnxruntime (or onnxruntime-gpu) and onnx, or use -bk pytorch"
    precisions = ("fp32",)
    precision_note = "runs the fp32 graph"

    def __init__(self, plan):
        import onnxruntime as ort

        config, device = plan.config, plan.device
        super().__init__(plan)
        self.ort = ort
        available = ort.get_available_providers()
        wanted = config.ort_provider
        if wanted == "auto":
            wanted = "cuda" if device.type == "cuda" and PROVIDERS["cuda"] in available else "cpu"
            if device.type == "cuda" and wanted == "cpu":
                print("note: onnxruntime has no CUDA provider here (install onnxruntime-gpu); running on the CPU "
                      "provider, through host copies", file=sys.stderr)
        if PROVIDERS[wanted] not in available:
            raise HarnessError(f"--ort_provider {wanted}: ONNX Runtime here offers only {', '.join(available)}: "
                               "install onnxruntime-gpu, or use --ort_provider cpu")
        if wanted != "cpu" and device.type != "cuda":
            raise HarnessError(f"--ort_provider {wanted} needs the pipeline on the GPU: use --device cuda")
        self.provider = wanted
        self.session = None

    def _build(self, batch_size: int, height: int, width: int) -> None:
        if self.session is not None and self.size == (height, width):
            return  # the batch axis is dynamic: one session serves every batch size
        path = cached_onnx(self.model, height, width, self.config.cache_dir)
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        if self.provider == "cpu":
            providers = [PROVIDERS["cpu"]]
        else:
            self.stream = torch.cuda.current_stream(self.device)  # the session runs on it from now on
            cuda = {"device_id": self.device.index or 0, "has_user_compute_stream": "1",
                    "user_compute_stream": str(self.stream.cuda_stream)}
            options = cuda if self.provider == "cuda" else {"device_id": self.device.index or 0}
            providers = [(PROVIDERS[self.provider], options)]
            if self.provider == "tensorrt":
                providers.append((PROVIDERS["cuda"], cuda))
        self.session = self.ort.InferenceSession(str(path), options, providers=providers)
        self.onnx_path = path

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.float().contiguous()
        if self.provider == "cpu":
            logits = self.session.run([OUTPUT], {INPUT: batch.cpu().numpy()})[0]
            return torch.from_numpy(logits).to(self.device)
        n, _, h, w = batch.shape
        out = torch.empty((n, len(CLASS_NAMES), h, w), dtype=torch.float32, device=self.device)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(INPUT, "cuda", index, np.float32, tuple(batch.shape), batch.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        # The session's stream is the one current when it was built; the overlapped executor calls from
        # its compute lane's stream: order the two both ways, and tell the allocator who uses what.
        current = torch.cuda.current_stream(self.device)
        if current != self.stream:
            self.stream.wait_stream(current)
            batch.record_stream(self.stream)
            out.record_stream(self.stream)
        self.session.run_with_iobinding(binding)
        if current != self.stream:
            current.wait_stream(self.stream)
        return out

    def identity(self) -> dict:
        return {**super().identity(), "onnxruntime": self.ort.__version__, "provider": PROVIDERS[self.provider]}
