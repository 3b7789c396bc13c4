"""Stored golden outputs: masks and overlays of the reference pipeline, with a manifest.

    python -m harness.golden regenerate [--dir golden]   rewrite golden/ (an explicit, reviewed action)
    python -m harness.golden check [--device cuda --precision fp16 ...]   compare a fresh run with golden/

The reference is the CPU pipeline with the torch engine, the PyTorch backend in fp32 and the small model
with synthetic weights (seed 0), on the shipped images, at two model sizes.  The manifest records for
each case the model, weights, inputs, size, precision, engine, library versions, the SHA-256 of every
file, and the tolerances a fresh run must meet (copied from harness/tolerances.py).  Tests never write
here; only `regenerate` does.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from harness import HarnessError, tolerances
from harness.compare import MaskStats, compare_masks, psnr
from harness.errors import guarded
from harness.config import Config
from harness.inputs import sample_dir, sha256_hex, write_atomic
from harness.ops import per_image
from harness.pipeline import Pipeline

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "golden"
MODEL, CLASS_NAME, SEED = "lraspp_mobilenet_v3_large", "person", 0
SIZES = ((224, 224), (520, 520))


def reference_config(size: tuple[int, int], **changes) -> Config:
    base = Config(device="cpu", ops="torch", decoder="cpu", backend="pytorch", model=MODEL, weights="synthetic",
                  seed=SEED, class_name=CLASS_NAME, target_img_height=size[0], target_img_width=size[1],
                  batch_size=len(list(sample_dir().glob("*.jpg"))))
    return base.replace(**changes)


def case_name(size: tuple[int, int]) -> str:
    return f"{MODEL}-{size[0]}x{size[1]}"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def run_case(size: tuple[int, int], **changes):
    """Masks (list of h x w uint8) and overlays (list of H x W x 3 uint8) of the shipped images."""
    paths = sorted(sample_dir().glob("*.jpg"))
    pipeline = Pipeline(reference_config(size, **changes))
    result = pipeline.run([p.read_bytes() for p in paths])
    masks = [m[..., 0].cpu().numpy() for m in result.masks]
    overlays = [o.cpu().numpy() for o in per_image(result.overlays)]
    return paths, masks, overlays, pipeline


def regenerate(folder: Path = DEFAULT_DIR) -> Path:
    import cv2
    import torchvision

    cases = []
    for size in SIZES:
        paths, masks, overlays, pipeline = run_case(size)
        name = case_name(size)
        outputs = []
        for path, mask, overlay in zip(paths, masks, overlays):
            entry = {"input": path.name, "input_sha256": sha256_hex(path.read_bytes())}
            for kind, array in (("mask", mask), ("overlay", overlay)):
                data = _png(array)
                relative = f"{name}/{path.stem}.{kind}.png"
                (folder / name).mkdir(parents=True, exist_ok=True)
                write_atomic(folder / relative, data)
                entry[kind], entry[f"{kind}_sha256"] = relative, sha256_hex(data)
            outputs.append(entry)
        config = pipeline.config
        cases.append({
            "case": name, "class_name": CLASS_NAME, "size": list(size),
            "pipeline": {"device": config.device, "ops": config.ops, "decoder": config.decoder,
                         "blur_kernel": config.blur_kernel, "blur_sigma": config.blur_sigma},
            **pipeline.backend.identity(),
            "outputs": outputs,
        })
    manifest = {
        "generated_by": "python -m harness.golden regenerate",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "opencv": cv2.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0]},
        "tolerances": tolerances.GOLDEN_TOLERANCE,
        "cases": cases,
    }
    write_atomic(folder / "manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return folder / "manifest.json"


def load_manifest(folder: Path = DEFAULT_DIR) -> dict:
    path = folder / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise HarnessError(f"cannot read {path} ({error}): run 'python -m harness.golden regenerate'") from None


def read_png(folder: Path, relative: str, sha256: str) -> np.ndarray:
    data = (folder / relative).read_bytes()
    if sha256_hex(data) != sha256:
        raise HarnessError(f"{folder / relative} does not match its manifest hash: regenerate or restore it")
    return np.array(Image.open(io.BytesIO(data)))


@dataclass(frozen=True)
class GoldenResult:
    case: str
    input: str
    mask: MaskStats
    overlay_psnr_db: float
    passed: bool

    def line(self) -> str:
        return (f"{'PASSED' if self.passed else 'FAILED'} {self.case} {self.input}: {self.mask.agreement:.4%} of mask "
                f"pixels agree, IoU {self.mask.iou:.4f}, overlay PSNR {self.overlay_psnr_db:.1f} dB")


def check(folder: Path = DEFAULT_DIR, **changes) -> list[GoldenResult]:
    """Run the reference cases with `changes` (device, ops, precision, backend, ...) against the stored files."""
    manifest = load_manifest(folder)
    precision = changes.get("precision", "fp32")
    limits = manifest["tolerances"][precision]
    results = []
    for case in manifest["cases"]:
        size = tuple(case["size"])
        paths, masks, overlays, _ = run_case(size, **changes)
        for entry, mask, overlay in zip(case["outputs"], masks, overlays, strict=True):
            stored_mask = read_png(folder, entry["mask"], entry["mask_sha256"])
            stored_overlay = read_png(folder, entry["overlay"], entry["overlay_sha256"])
            stats = compare_masks(torch.from_numpy(mask), torch.from_numpy(stored_mask))
            quality = psnr(overlay, stored_overlay)
            passed = (stats.agreement >= limits["agreement"] and stats.iou >= limits["iou"]
                      and quality >= limits["overlay_psnr_db"])
            results.append(GoldenResult(case["case"], entry["input"], stats, quality, passed))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.golden", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["regenerate", "check"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the golden folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ops", default="torch")
    parser.add_argument("--decoder", default="cpu")
    parser.add_argument("--backend", default="pytorch")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    args = parser.parse_args(argv)
    return guarded("harness.golden", _run, args, debug=args.debug)


def _run(args) -> int:
    if args.action == "regenerate":
        print(f"wrote {regenerate(args.dir)}")
        return 0
    results = check(args.dir, device=args.device, ops=args.ops, decoder=args.decoder, backend=args.backend,
                    precision=args.precision)
    for result in results:
        print(result.line())
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
