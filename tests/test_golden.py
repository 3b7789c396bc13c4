"""Fresh pipeline outputs against the stored golden files (golden/), within the manifest's tolerances."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from harness import golden
from harness.decode import DECODERS
from harness.ops import ENGINES


def test_manifest_describes_every_file():
    manifest = golden.load_manifest()
    assert manifest["generated_by"] == "python -m harness.golden regenerate"
    assert {"fp32", "fp16"} <= set(manifest["tolerances"])
    for case in manifest["cases"]:
        assert case["weights"] == "synthetic(seed=0)" and case["precision"] == "fp32"
        assert len(case["outputs"]) == 5
        for entry in case["outputs"]:
            golden.read_png(golden.DEFAULT_DIR, entry["mask"], entry["mask_sha256"])  # raises on a hash mismatch


@pytest.mark.parametrize("ops", ["torch", "opencv"])
def test_cpu_pipeline_matches_golden(ops):
    results = golden.check(device="cpu", ops=ops)
    assert len(results) == 10
    assert all(r.passed for r in results), "\n".join(r.line() for r in results)


def test_golden_check_catches_a_changed_mask(tmp_path):
    folder = tmp_path / "golden"
    shutil.copytree(golden.DEFAULT_DIR, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["cases"][0]["outputs"][0]
    mask = np.array(Image.open(folder / entry["mask"]))
    Image.fromarray(255 - mask).save(folder / entry["mask"])  # every pixel flipped
    entry["mask_sha256"] = golden.sha256_hex((folder / entry["mask"]).read_bytes())
    (folder / "manifest.json").write_text(json.dumps(manifest))
    results = golden.check(folder, device="cpu")
    assert [r.passed for r in results].count(False) == 1 and not results[0].passed


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("ops,decoder", [("cvcuda", "nvimgcodec"), ("torch", "torchvision")])
def test_gpu_pipeline_matches_golden(ops, decoder, precision):
    if reason := ENGINES.unavailable(ops) or DECODERS.unavailable(decoder):
        pytest.skip(reason)
    results = golden.check(device="cuda", ops=ops, decoder=decoder, precision=precision)
    for r in results:
        print(f"{ops}/{decoder}/{precision}: {r.line()}")
    assert all(r.passed for r in results), "\n".join(r.line() for r in results)
