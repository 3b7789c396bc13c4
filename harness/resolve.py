"""A request (harness.config.Config) resolved against the registries of parts and this machine into a Plan:
the names checked against what is registered, every 'auto' replaced by what can run here, and what cannot
refused in one line naming the fix."""

from __future__ import annotations

from harness import HarnessError
from harness.backends import BACKENDS
from harness.cache import default_cache_dir
from harness.config import (MODEL_OPTIONS, Config, Plan, channels_last_default, check_choice, cuda_device_count,
                            model_options, torch_device)
from harness.decode import DECODERS
from harness.models import CLASS_NAMES, MODELS
from harness.ops import ENGINES, check_blur


def validate(request: Config) -> Config:
    """Config.validate, then the names the registries know: class, backend, ops engine, decoder, model, and a
    blur every engine can run."""
    request.validate()
    if request.class_name not in CLASS_NAMES:
        raise HarnessError(f"unknown class {request.class_name!r}: choose one of {', '.join(CLASS_NAMES)}")
    check_choice("backend (-bk)", request.backend, tuple(BACKENDS.names()))
    for option in model_options(request):
        if option not in BACKENDS[request.backend].model_options:
            runs = [name for name in BACKENDS.names() if option in BACKENDS[name].model_options]
            raise HarnessError(f"{MODEL_OPTIONS[option]} is for -bk {' or '.join(runs)}: "
                               f"drop it for -bk {request.backend}")
    check_choice("ops engine (--ops)", request.ops, ("auto", *ENGINES.names()))
    check_choice("decoder (--decoder)", request.decoder, ("auto", *DECODERS.names()))
    if request.model is not None:
        MODELS[request.model]  # raises with the list of models
    check_blur(request.blur_kernel, request.blur_sigma, request.blur_downscale)  # a finite kernel on every engine
    return request


def resolve(request: Config) -> Plan:
    """Validate, then replace every 'auto' and default with what this machine can run; refuse what it
    cannot.  The parts' own declarations (harness.registry.Part) say where each runs and what it needs."""
    validate(request)
    BACKENDS.require(request.backend)  # a missing TensorRT is the first thing to say
    gpus = cuda_device_count()
    chosen = ((ENGINES, request.ops), (DECODERS, request.decoder))
    wants_gpu = [f"--device {request.device}"] if request.device == "cuda" else []
    wants_gpu += [f"{table.flag} {name}" for table, name in chosen if name != "auto" and table[name].gpu_only()]
    if wants_gpu and gpus == 0:
        raise HarnessError(
            f"{' and '.join(wants_gpu)}: this needs a CUDA GPU and this machine has none: "
            "drop the option, or run on the CPU with --device cpu"
        )
    device = request.device
    if device == "auto":
        device = "cuda" if gpus else "cpu"
    if device == "cuda" and request.device_id >= gpus:
        raise HarnessError(
            f"-d/--device_id {request.device_id} does not exist: this machine has {gpus} GPU(s), "
            f"give 0 to {gpus - 1}"
        )
    if device == "cpu" and request.device_id != 0 and gpus <= request.device_id:
        raise HarnessError(
            f"-d/--device_id {request.device_id} does not exist: this machine has {gpus} GPU(s); "
            "leave -d out to run on the CPU"
        )
    ops, decoder = (table.require(table.auto(device) if name == "auto" else name, device)
                    for table, name in chosen)
    BACKENDS.require(request.backend, device)
    if request.preprocess == "fused" and not hasattr(ENGINES[ops], "fused_preprocess"):
        raise HarnessError(f"--preprocess fused is CV-CUDA's fused operator: use it with --ops cvcuda, not {ops}")
    if request.cuda_graph and device != "cuda":
        raise HarnessError("--cuda_graph needs a CUDA GPU: drop it on the CPU")
    if device == "cpu" and request.precision != "fp32":
        raise HarnessError(f"--precision {request.precision} needs a GPU: use fp32 on the CPU")
    backend = BACKENDS[request.backend]
    if request.precision not in backend.precisions:
        why = backend.precision_note or f"runs {', '.join(backend.precisions)}"
        raise HarnessError(f"-bk {request.backend} {why}: use --precision {backend.precisions[0]}, or -bk pytorch for "
                           f"{request.precision}")
    model = request.model or BACKENDS[request.backend].default_model
    channels_last = request.channels_last
    if channels_last is None:
        channels_last = channels_last_default(device, request.precision)
    concrete = request.replace(device=device, ops=ops, decoder=decoder, model=model, channels_last=channels_last,
                               cache_dir=request.cache_dir or str(default_cache_dir()))
    return Plan(request, concrete, torch_device(device, request.device_id), CLASS_NAMES.index(request.class_name))
