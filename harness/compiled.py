"""torch.compile for the model (harness.backends.pytorch) and the fused post-processing (harness.ops), with
TorchInductor's caches under --cache_dir/inductor: a second process with the same shapes loads the compiled
code instead of compiling again."""

from __future__ import annotations

import importlib
import os
import warnings

import torch

from harness.cache import cache_folder

#: Compilations dynamo keeps per function (its default is 8).  A model class's forward is one function for
#: every instance, so a process that compiles several configurations of one model (the tests, the
#: benchmarks, tools/compile_bench.py) went past 8 and dynamo ran the rest eagerly, silently.
RECOMPILE_LIMIT = 64


def compiled(fn, cache_dir: str | None, **options):
    """torch.compile(fn, **options); inductor reads its cache folder from the environment at compile time.
    Past the recompile limit dynamo raises instead of running the function uncompiled."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_folder(cache_dir, "inductor"))
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    if hasattr(config, "fail_on_recompile_limit_hit"):
        config.fail_on_recompile_limit_hit = True
    with warnings.catch_warnings():  # torch 2.11's inductor imports torch.jit.script_method, deprecated by torch
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("torch._inductor.compile_fx")
    return torch.compile(fn, **options)
