"""ONNX export: graph shape, checker, and a cache that rebuilds what it cannot trust."""

from __future__ import annotations

import json

import onnx
import pytest

from harness.backends.onnx_export import INPUT, OPSET, OUTPUT, cached_onnx, export_key
from harness.models import build_model

SMALL = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def model():
    return build_model(SMALL, "synthetic", seed=0)


def test_export_has_one_dynamic_batch_input_and_only_the_logits(model, tmp_path):
    path = cached_onnx(model, 224, 256, tmp_path)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == [INPUT] and [o.name for o in graph.graph.output] == [OUTPUT]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 224, 256]
    assert graph.opset_import[0].version == OPSET
    assert not model.module.training, "export must leave the model in eval mode"


def test_cache_hits_and_rebuilds_corrupt_or_stale_files(model, tmp_path):
    path = cached_onnx(model, 224, 224, tmp_path)
    stamp = path.stat().st_mtime_ns
    assert cached_onnx(model, 224, 224, tmp_path) == path and path.stat().st_mtime_ns == stamp  # a hit
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated
    assert cached_onnx(model, 224, 224, tmp_path).read_bytes() == good
    meta = path.with_suffix(".json")
    recorded = json.loads(meta.read_text())
    recorded["key"]["exporter"] = "something older"
    meta.write_text(json.dumps(recorded))  # stale metadata
    cached_onnx(model, 224, 224, tmp_path)
    assert json.loads(meta.read_text())["key"] == export_key(model, 224, 224)
    assert sorted(p.suffix for p in path.parent.iterdir()) == [".json", ".onnx"]  # no temporaries left


def test_cache_key_covers_weights_and_size(model, tmp_path):
    other = build_model(SMALL, "synthetic", seed=1)
    paths = {cached_onnx(model, 224, 224, tmp_path), cached_onnx(other, 224, 224, tmp_path),
             cached_onnx(model, 256, 224, tmp_path)}
    assert len(paths) == 3


def test_a_fifo_in_the_cache_is_rebuilt_without_blocking(model, tmp_path):
    """Opening a FIFO waits for a writer for ever: the cache checks that it holds regular files first."""
    import os
    import threading

    path = cached_onnx(model, 64, 64, tmp_path)
    for fifo in (path, path.with_suffix(".json")):
        fifo.unlink()
        os.mkfifo(fifo)
        done = []
        worker = threading.Thread(target=lambda: done.append(cached_onnx(model, 64, 64, tmp_path)), daemon=True)
        worker.start()
        worker.join(timeout=120)
        if worker.is_alive():  # let the blocked open go, then fail
            with open(fifo, "wb"):
                pass
            pytest.fail(f"cached_onnx blocked on the FIFO {fifo.name}")
        assert done == [path] and path.is_file() and path.with_suffix(".json").is_file()
        onnx.checker.check_model(onnx.load(str(path)))


def test_onnx_missing_is_one_line(model, tmp_path, monkeypatch, capsys):
    """onnx is imported only to export or check a graph: where it is missing, that run stops with one line."""
    import sys

    from harness.errors import guarded

    monkeypatch.setitem(sys.modules, "onnx", None)
    assert guarded("harness", lambda _: cached_onnx(model, 64, 64, tmp_path), None) == 1
    assert capsys.readouterr().err.splitlines() == [
        "harness: error: the Python module 'onnx' is missing: install harness's onnx extra "
        "(pip install -e '.[onnx]' in its checkout)"]
