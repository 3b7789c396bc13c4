"""Stored golden outputs: masks and overlays of the reference pipeline, with a manifest.

    python -m harness.golden regenerate [--dir golden]   rewrite golden/ (an explicit, reviewed action)
    python -m harness.golden check [--device cuda --precision fp16 ...]   compare a fresh run with golden/

The reference is the CPU pipeline with the torch engine, the PyTorch backend in fp32 and the small model
with synthetic weights (seed 0), on the shipped images, at two model sizes.  The manifest records for
each case the model, weights, inputs, size, precision, engine, library versions, the SHA-256 of every
file, and the tolerances a fresh run must meet (copied from harness/tolerances.py).  Tests never write
here; only `regenerate` does.

`check` believes the manifest only where this code agrees with it: one case per size of SIZES, the shipped
images by name and hash, the reference's model, weights, engine and blur, tolerances no looser than
harness/tolerances.py's, and PNGs inside the folder that match their hashes and their images' sizes; any
other manifest is refused in one line before the pipeline runs.  Library versions are provenance, not checked.
"""

from __future__ import annotations

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
from harness.errors import OneLineParser, guarded
from harness.config import Config
from harness.inputs import MAX_FILE_BYTES, sample_dir
from harness.files import read_regular_file, sha256_hex, write_atomic
from harness.ops import per_image
from harness.pipeline import Pipeline

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "golden"
MODEL, CLASS_NAME, SEED = "lraspp_mobilenet_v3_large", "person", 0
SIZES = ((224, 224), (520, 520))
MAX_MANIFEST_BYTES = 1 << 20  # the manifest is about 10 KB
MAX_PNG_BYTES = 64 << 20  # the stored PNGs are under 1 MB
IDENTITY = ("backend", "model", "weights", "weights_sha256", "precision")  # every manifest records these
PROVENANCE = ("torch",)  # recorded per case, not checked: a GPU machine has another torch


def shipped_images() -> list[Path]:
    return sorted(sample_dir().glob("*.jpg"))


def reference_config(size: tuple[int, int], **changes) -> Config:
    base = Config(device="cpu", ops="torch", decoder="cpu", backend="pytorch", model=MODEL, weights="synthetic",
                  seed=SEED, class_name=CLASS_NAME, target_img_height=size[0], target_img_width=size[1],
                  batch_size=len(shipped_images()))
    return base.replace(**changes)


def pipeline_record(config: Config) -> dict:
    """The post-processing and engine settings a case records."""
    return {"device": config.device, "ops": config.ops, "decoder": config.decoder,
            "blur_kernel": config.blur_kernel, "blur_sigma": config.blur_sigma}


def case_name(size: tuple[int, int]) -> str:
    return f"{MODEL}-{size[0]}x{size[1]}"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def run_case(pipeline: Pipeline):
    """Masks (list of h x w uint8) and overlays (list of H x W x 3 uint8) of the shipped images."""
    paths = shipped_images()
    result = pipeline.run([p.read_bytes() for p in paths])
    masks = [m[..., 0].cpu().numpy() for m in result.masks]
    overlays = [o.cpu().numpy() for o in per_image(result.overlays)]
    return paths, masks, overlays


def regenerate(folder: Path = DEFAULT_DIR) -> Path:
    import cv2
    import torchvision

    cases = []
    for size in SIZES:
        pipeline = Pipeline(reference_config(size))
        paths, masks, overlays = run_case(pipeline)
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
        cases.append({
            "case": name, "class_name": CLASS_NAME, "size": list(size), "pipeline": pipeline_record(pipeline.config),
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
    """The manifest's JSON, not yet checked (see checked_cases); a FIFO or oversized file is refused unread."""
    path = folder / "manifest.json"
    try:
        return json.loads(read_regular_file(path, MAX_MANIFEST_BYTES, "the manifest that 'python -m harness.golden "
                                            "regenerate' writes"))
    except HarnessError as error:
        raise HarnessError(f"cannot read the golden manifest: {error}") from None
    except (ValueError, RecursionError) as error:
        raise HarnessError(f"cannot read {path}: it is not valid JSON ({error}): restore it, or run 'python -m "
                           "harness.golden regenerate'") from None


def _sizes(sizes) -> str:
    return ", ".join(f"{h}x{w}" for h, w in sizes)


def _refused(folder: Path, problem: str) -> HarnessError:
    return HarnessError(f"{folder / 'manifest.json'}: {problem}: restore the folder from version control, or "
                        "regenerate it (python -m harness.golden regenerate) and review the diff")


def read_png(folder: Path, relative: str, sha256: str, expected: tuple[int, int, str] | None = None) -> np.ndarray:
    """A stored image, from inside `folder` only, matching its manifest hash and, when given, the `expected`
    (height, width, mode), checked on the PNG header before any pixel is decoded."""
    path = folder / relative
    if not path.resolve().is_relative_to(folder.resolve()):
        raise _refused(folder, f"{relative!r} is outside {folder}")
    data = read_regular_file(path, MAX_PNG_BYTES, "the PNG the manifest names")
    if sha256_hex(data) != sha256:
        raise HarnessError(f"{path} does not match its manifest hash: regenerate or restore it")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        if expected is not None and (image.height, image.width, image.mode) != expected:
            raise _refused(folder, f"{relative} is {image.width}x{image.height} {image.mode}, not "
                           f"{expected[1]}x{expected[0]} {expected[2]}")
        return np.array(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise HarnessError(f"{path} is not a readable PNG ({error}): regenerate or restore it") from None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def checked_limits(manifest, folder: Path, precision: str) -> dict:
    """The manifest's tolerances for `precision`, once every tolerance it records for harness/tolerances.py's
    precisions is a number no looser than the code's (each is a least value: agreement, IoU, PSNR)."""
    recorded = manifest.get("tolerances") if isinstance(manifest, dict) else None
    if not isinstance(recorded, dict):
        raise _refused(folder, "it is not an object with 'tolerances'")
    for name, least in tolerances.GOLDEN_TOLERANCE.items():
        for key, bound in least.items():
            value = recorded[name].get(key) if isinstance(recorded.get(name), dict) else None
            if not _number(value):
                raise _refused(folder, f"tolerances.{name}.{key} is {value!r}, not a number")
            if value < bound:
                raise _refused(folder, f"tolerances.{name}.{key} is {value}, looser than harness/tolerances.py's "
                               f"{bound}")
    if not isinstance(recorded.get(precision), dict):
        raise _refused(folder, f"it has no tolerances for precision {precision!r} (it has {', '.join(recorded)})")
    return recorded[precision]


def checked_cases(manifest: dict, folder: Path) -> dict:
    """{size: (case, [(entry, stored mask, stored overlay), ...])}, once the manifest holds one case per size of
    SIZES, recording the shipped images by name and hash and this code's class and blur; the PNGs are read."""
    cases = manifest.get("cases")
    if not isinstance(cases, list):
        raise _refused(folder, "it has no 'cases' list")
    paths = shipped_images()
    found = {}
    for index, case in enumerate(cases):
        size = case.get("size") if isinstance(case, dict) else None
        if not isinstance(size, list) or tuple(size) not in SIZES or tuple(size) in found:
            raise _refused(folder, f"case #{index} has size {size!r}: give one case for each of {_sizes(SIZES)}")
        size = tuple(size)
        recorded = case.get("pipeline") if isinstance(case.get("pipeline"), dict) else {}
        fields = [("case", case.get("case"), case_name(size)), ("class_name", case.get("class_name"), CLASS_NAME)]
        fields += [(f"pipeline.{key}", recorded.get(key), value)
                   for key, value in pipeline_record(reference_config(size)).items()]
        for key, got, value in fields:
            if got != value:
                raise _refused(folder, f"case #{index} records {key} {got!r}, this code's reference uses {value!r}")
        outputs = case.get("outputs")
        if not isinstance(outputs, list) or len(outputs) != len(paths):
            raise _refused(folder, f"case {case_name(size)} does not list one output per shipped image "
                           f"({len(paths)})")
        stored = []
        for entry, path in zip(outputs, paths):
            data = read_regular_file(path, MAX_FILE_BYTES, "the JPEG shipped in harness/data")
            entry, shipped = (entry if isinstance(entry, dict) else {}), sha256_hex(data)
            if entry.get("input") != path.name or entry.get("input_sha256") != shipped:
                raise _refused(folder, f"case {case_name(size)} records input {entry.get('input')!r} (SHA-256 "
                               f"{str(entry.get('input_sha256'))[:12]}) where the shipped {path.name} ({shipped[:12]}) "
                               "belongs")
            with Image.open(io.BytesIO(data)) as image:
                height, width = image.height, image.width
            images = []
            for kind, header in (("mask", (*size, "L")), ("overlay", (height, width, "RGB"))):  # mask: model size
                relative, digest = entry.get(kind), entry.get(f"{kind}_sha256")
                if not isinstance(relative, str) or not isinstance(digest, str):
                    raise _refused(folder, f"case {case_name(size)} has no {kind} file and hash for {path.name}")
                images.append(read_png(folder, relative, digest, header))
            stored.append((entry, *images))
        found[size] = (case, stored)
    missing = [size for size in SIZES if size not in found]
    if missing:
        raise _refused(folder, f"it has no case at {_sizes(missing)}: the check promises {_sizes(SIZES)}")
    return found


def check_identity(case: dict, folder: Path, pipeline: Pipeline, fields) -> None:
    """The `fields` a case records of its backend (model, weights, ...) are `pipeline`'s."""
    identity = pipeline.backend.identity()
    for key in fields:
        if case.get(key) != identity[key]:
            raise _refused(folder, f"case {case.get('case')} records {key} {case.get(key)!r}, the pipeline built "
                           f"here has {identity[key]!r}")


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
    """Run the reference cases with `changes` (device, ops, precision, backend, ...) against the stored files,
    once the manifest has passed every check (the module's docstring)."""
    manifest = load_manifest(folder)
    limits = checked_limits(manifest, folder, changes.get("precision", "fp32"))
    cases = checked_cases(manifest, folder)
    reference = Pipeline(reference_config(SIZES[0]))  # what regenerate records does not depend on the size
    identity = reference.backend.identity()
    for case, _ in cases.values():  # the backend's fields it must record, and any other it does, versions aside
        check_identity(case, folder, reference, sorted(({*IDENTITY, *case} & identity.keys()) - set(PROVENANCE)))
    results = []
    for size in SIZES:
        case, stored = cases[size]
        pipeline = Pipeline(reference_config(size, **changes))
        check_identity(case, folder, pipeline, ("model", "weights"))  # folding or fusing changes the digest only
        _, masks, overlays = run_case(pipeline)
        for (entry, stored_mask, stored_overlay), mask, overlay in zip(stored, masks, overlays, strict=True):
            stats = compare_masks(torch.from_numpy(mask), torch.from_numpy(stored_mask))
            quality = psnr(overlay, stored_overlay)
            passed = (stats.agreement >= limits["agreement"] and stats.iou >= limits["iou"]
                      and quality >= limits["overlay_psnr_db"])
            results.append(GoldenResult(case["case"], entry["input"], stats, quality, passed))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m harness.golden", description=__doc__.split("\n\n")[0])
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
