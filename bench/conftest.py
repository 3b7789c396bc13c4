"""Options, parametrization and metadata of the benchmark suites.

Every axis can be narrowed from the command line or the environment (the option wins):

    --bench-batches 1,8        HARNESS_BENCH_BATCHES      batch sizes
    --bench-model-sizes 224    HARNESS_BENCH_MODEL_SIZES  square model input sides
    --bench-sources 640x480    HARNESS_BENCH_SOURCES      source image sizes (real photographs, scaled)
    --bench-precisions fp16    HARNESS_BENCH_PRECISIONS   inference precisions
    --bench-models fcn_resnet101  HARNESS_BENCH_MODELS    models for inference and end-to-end cases
    --bench-engines cvcuda     HARNESS_BENCH_ENGINES      cvcuda, torch-cuda, torch-cpu, opencv
    --bench-l2 cold            HARNESS_BENCH_L2           hot (default) or cold L2 before each GPU round
    --bench-rounds 30          HARNESS_BENCH_ROUNDS       timed rounds per GPU case
    --bench-cpu-rounds 5       HARNESS_BENCH_CPU_ROUNDS   timed rounds per CPU case (long, steadier rounds)
    --bench-target-ci 0.01     HARNESS_BENCH_TARGET_CI    more rounds (the above are the minimum) until the
                                                          median's relative 95% half-width is under this...
    --bench-budget-s 2         HARNESS_BENCH_BUDGET_S     ...or this many seconds of rounds are spent
                                                          (per case; 0: exactly the rounds above)
    --bench-threads 1          HARNESS_BENCH_THREADS      torch's and OpenCV's CPU threads (default 1: a CPU
                                                          case measures one core, so that another process on
                                                          the machine does not swing it; name more to measure
                                                          more; this wins over OMP_NUM_THREADS)
    --bench-quick              HARNESS_BENCH_QUICK=1      the first value of each axis only (the first
                                                          engine this machine can run)

Two environment variables change the method, for checking it: HARNESS_BENCH_BLOCK=0 times the per-stage
cases as launched, without their blocking kernel (bench/test_stages.py); HARNESS_BENCH_SLOWDOWN=ENGINE:FRACTION
adds that fraction of GPU work to the engine's instrumented end-to-end case (bench/test_end_to_end.py).

The sample-workload cases (bench/test_sample_workload.py) keep the sample's own (batch, size) pairs, narrowed
by --bench-batches and --bench-model-sizes when those are named.

Defaults: on a GPU machine the full matrix of the benchmark issue; without a GPU, small CPU cases
(batch 1 and 4, 224, 640x480, fp32, the small model) that finish in minutes on 2 cores.  GPU cases
are still collected there and skip with the reason.  On a GPU machine the CPU engines run the per-stage
cases (the baselines of the speed-ups) but not inference or end to end, whose CPU ResNet-101 runs take
seconds per image: name a CPU engine in --bench-engines to get those too.
"""

from __future__ import annotations

import os

import cv2
import pytest
import torch

from harness.env import bad_throttles, fingerprint, gpu_state, load_average

GPU = torch.cuda.is_available()
AXES = {
    "batches": ("1,8,32,64", "1,4"),
    "model-sizes": ("224,520", "224"),
    "sources": ("640x480,1920x1080", "640x480"),
    "precisions": ("fp32,fp16", "fp32"),
    "models": ("deeplabv3_resnet101", "lraspp_mobilenet_v3_large"),  # the pytorch backend's model
    "engines": ("cvcuda,torch-cuda,opencv", "cvcuda,torch-cuda,torch-cpu,opencv"),  # torch-cpu: the tests' reference
    "l2": ("hot", "hot"),
    "rounds": ("20", "3"),
    "cpu-rounds": ("5", "3"),
    "target-ci": ("0.01", "0.01"),
    "budget-s": ("2", "1"),
    "threads": ("1", "1"),
}
ENGINE_DEVICES = {"cvcuda": ("cvcuda", "cuda"), "torch-cuda": ("torch", "cuda"), "torch-cpu": ("torch", "cpu"),
                  "opencv": ("opencv", "cpu")}


def pytest_addoption(parser):
    group = parser.getgroup("harness benchmarks")
    for axis in AXES:
        group.addoption(f"--bench-{axis}", default=None, help=f"comma-separated {axis} (see bench/conftest.py)")
    group.addoption("--bench-quick", action="store_true", default=None, help="only the first value of each axis")


def chosen(config, axis: str) -> str | None:
    """The value given on the command line or in the environment, or None."""
    return config.getoption(f"--bench-{axis}") or os.environ.get(f"HARNESS_BENCH_{axis.upper().replace('-', '_')}")


def setting(config, axis: str) -> list[str]:
    value = chosen(config, axis)
    values = (value or AXES[axis][0 if GPU else 1]).split(",")
    quick = config.getoption("--bench-quick") or os.environ.get("HARNESS_BENCH_QUICK") == "1"
    if quick and axis == "engines" and not GPU:
        values = [v for v in values if ENGINE_DEVICES[v][1] == "cpu"] or values  # the first one that can run
    return values[:1] if quick else values


def pytest_generate_tests(metafunc):
    config = metafunc.config
    gpu = pytest.mark.gpu
    if "batch_size" in metafunc.fixturenames:
        metafunc.parametrize("batch_size", [int(b) for b in setting(config, "batches")], ids=lambda b: f"b{b}")
    if "model_size" in metafunc.fixturenames:
        metafunc.parametrize("model_size", [(int(s), int(s)) for s in setting(config, "model-sizes")],
                             ids=lambda s: f"m{s[0]}")
    if "source" in metafunc.fixturenames:
        metafunc.parametrize("source", setting(config, "sources"))
    engines = setting(config, "engines")
    if "model" in metafunc.fixturenames and GPU and not chosen(config, "engines"):
        engines = [e for e in engines if ENGINE_DEVICES[e][1] == "cuda"]  # no CPU ResNet-101 by default here
    if "gpu_engine" in metafunc.fixturenames:  # cases about GPU memory bandwidth
        engines = [e for e in engines if ENGINE_DEVICES[e][1] == "cuda"]
    for fixture in ("engine", "gpu_engine"):
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, [pytest.param(ENGINE_DEVICES[e], id=e,
                                                        marks=gpu if ENGINE_DEVICES[e][1] == "cuda" else ())
                                           for e in engines])
    if "device_kind" in metafunc.fixturenames:  # inference alone: where the chosen engines run, else by machine
        if chosen(config, "engines"):
            kinds = {ENGINE_DEVICES[e][1] for e in engines}
        else:
            kinds = {"cuda"} if GPU else {"cuda", "cpu"}  # no CPU ResNet-101 by default on a GPU machine
        metafunc.parametrize("device_kind", [pytest.param(k, id=k, marks=gpu if k == "cuda" else ())
                                             for k in ("cpu", "cuda") if k in kinds])
    if "model" in metafunc.fixturenames:
        metafunc.parametrize("model", setting(config, "models"))
    if "precision" in metafunc.fixturenames:
        metafunc.parametrize("precision", setting(config, "precisions"))
    if "sample_case" in metafunc.fixturenames:  # the sample's own (batch, size) pairs, narrowed by the axes named
        batches, sizes = chosen(config, "batches"), chosen(config, "model-sizes")
        cases = [(b, s) for b, s in metafunc.module.SAMPLE_CASES
                 if (not batches or str(b) in batches.split(",")) and (not sizes or str(s) in sizes.split(","))]
        metafunc.parametrize("sample_case", [pytest.param(c, id=f"b{c[0]}-m{c[1]}") for c in cases])


@pytest.fixture(scope="session")
def bench_settings(pytestconfig) -> dict:
    return {"l2": setting(pytestconfig, "l2")[0], "rounds": int(setting(pytestconfig, "rounds")[0]),
            "cpu_rounds": int(setting(pytestconfig, "cpu-rounds")[0]),
            "target_ci": float(setting(pytestconfig, "target-ci")[0]),
            "budget_s": float(setting(pytestconfig, "budget-s")[0])}


_STATE = {}


def pytest_configure(config):
    """Set the CPU threads once, before any case: left to torch, they follow the core count and whatever else
    runs on the machine swings a CPU case by up to 80x."""
    value = setting(config, "threads")[0]
    if not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"--bench-threads takes a whole number of threads, at least 1; got {value!r}")
    torch.set_num_threads(int(value))
    cv2.setNumThreads(int(value))


@pytest.hookimpl(tryfirst=True)
def pytest_benchmark_group_stats(config, benchmarks, group_by):
    """pytest-benchmark's --benchmark-group-by, except that `param:NAME` also takes NAME from a case's
    extra_info (the results record: engine, precision, batch_size, source, stage, ...) where its test has no
    parameter of that name: the suites' tests name theirs differently (decoder, options, device_kind), and
    pytest-benchmark's own grouping stops with a KeyError on the first that lacks it.  Other groupings are
    left to pytest-benchmark."""
    groupings = group_by.split(",")
    if not any(g.startswith("param:") for g in groupings):
        return None
    own = {"group": lambda b: b["group"], "name": lambda b: b["name"], "func": lambda b: b["name"].split("[")[0],
           "fullname": lambda b: b["fullname"], "fullfunc": lambda b: b["fullname"].split("[")[0],
           "param": lambda b: b["param"]}
    groups: dict = {}
    for bench in benchmarks:
        key = []
        for grouping in groupings:
            if grouping.startswith("param:"):
                name = grouping[len("param:"):]
                params, info = bench["params"] or {}, bench["extra_info"] or {}
                key.append(f"{name}={params[name] if name in params else info.get(name, '-')}")
            elif grouping in own:
                key.append(own[grouping](bench))
            else:
                raise NotImplementedError(f"Unsupported grouping {group_by!r}.")
        groups.setdefault(" ".join(str(part) for part in key if part) or None, []).append(bench)
    for members in groups.values():
        members.sort(key=lambda b: b["fullname" if "full" in group_by else "name"])
    return sorted(groups.items(), key=lambda pair: pair[0] or "")


def pytest_sessionstart(session):
    _STATE["gpu_before"] = gpu_state() if GPU else None
    _STATE["load_before"] = load_average()


def pytest_benchmark_update_machine_info(config, machine_info):
    """The environment fingerprint, the GPU's state (NVML) and the machine's 1-minute load average before and
    after the run."""
    machine_info["harness"] = fingerprint()
    machine_info["harness"]["gpu_state_before"] = _STATE.get("gpu_before")
    machine_info["harness"]["gpu_state_after"] = gpu_state() if GPU else None
    machine_info["harness"]["load_before"] = _STATE.get("load_before")
    machine_info["harness"]["load_after"] = load_average()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Flag the run when the clocks were pulled down by heat or power, and each noisy case."""
    states = [output_json["machine_info"].get("harness", {}).get(k) for k in ("gpu_state_before", "gpu_state_after")]
    reasons = bad_throttles(*states)
    output_json["machine_info"].setdefault("harness", {})["throttled"] = reasons
    for bench in output_json["benchmarks"]:
        bench["extra_info"]["throttled"] = bool(reasons)
