"""The package as someone else gets it: a wheel with its name, licence, extras and data, importable and runnable
from outside the checkout, and code that passes the linter configured in pyproject.toml."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")  # setuptools builds in the source's build/: not the checkout's
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("*.whl")
    return path


def test_the_wheel_names_its_distribution_licence_and_extras(wheel):
    assert wheel.name.startswith("cvcuda_seg_harness-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(archive.read(metadata))
    assert meta["Name"] == "cvcuda-seg-harness" and meta["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert {"report", "onnx", "bench", "test", "cu12", "cu13", "trt"} <= set(meta.get_all("Provides-Extra"))
    core = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert not any(r.startswith(("pandas", "pytest", "onnx", "matplotlib", "scipy")) for r in core), core
    assert {"harness/py.typed", "harness/data/chelsea.jpg", "harness/__main__.py"} <= set(names)


def test_the_wheel_runs_outside_the_checkout(wheel, tmp_path):
    """Installed into a folder of its own (its dependencies from this environment): the command line answers
    and reads its sample images from the installed package, not from the checkout."""
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run([sys.executable, "-c", "import harness, harness.inputs as i; print(harness.__file__); "
                            "print(i.sample_dir())"], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=300)
    assert probe.returncode == 0, probe.stderr
    module, samples = probe.stdout.split()
    assert Path(module).is_relative_to(target) and len(list(Path(samples).glob("*.jpg"))) == 5
    helped = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert helped.returncode == 0 and "--output_dir" in helped.stdout


def test_the_code_passes_the_configured_linter():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed: pip install -e '.[test]'")
    done = subprocess.run([ruff, "check", "harness", "bench", "tests", "tools", "conftest.py"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]


def test_help_shows_true_defaults():
    """A --no_x flag's stored default is True: --help must not print it as if the flag were on."""
    from harness.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "(default: True)" not in text and "(default: False)" not in text
    assert "model input height (default: 224)" in text
