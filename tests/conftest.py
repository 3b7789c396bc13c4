"""Shared fixtures: the shipped images, JPEG makers, and skips for missing GPU libraries."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.decode import DECODERS
from harness.inputs import sample_dir

# Under pytest-xdist (.ci/run: -n auto) a worker's environment names it; a `pytest bench/` that a test starts
# would inherit that and pytest-benchmark would disable every benchmark there (it reads PYTEST_XDIST_WORKER).
for name in [name for name in os.environ if name.startswith("PYTEST_XDIST_")]:
    del os.environ[name]


@pytest.fixture
def browser_page():
    """(page, errors): a headless Chromium page at 1440x900, the size the report is read at, and the console
    errors and page errors it collects; skips naming what is missing."""
    import shutil

    path = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    if not path:
        pytest.skip("Chromium is not installed: apt-get install chromium (as .ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-background-networking",
                                                                "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors
        browser.close()


#: Every table's width against its box's in an open page: (heading above it, scrollWidth, clientWidth).
TABLE_WIDTHS = """Array.from(document.querySelectorAll('table')).map(t => {
    let h = t.closest('details') || t.parentElement;
    while (h && h.tagName !== 'H2') h = h.previousElementSibling;
    return [h ? h.innerText : '', t.scrollWidth, t.parentElement.clientWidth]; })"""


@pytest.fixture
def cvcuda_module():
    from harness.ops import ENGINES

    if reason := ENGINES.unavailable("cvcuda"):
        pytest.skip(reason)
    import cvcuda

    return cvcuda


@pytest.fixture
def nvimgcodec_module():
    if reason := DECODERS.unavailable("nvimgcodec"):
        pytest.skip(reason)
    from nvidia import nvimgcodec

    return nvimgcodec


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    paths = sorted(sample_dir().glob("*.jpg"))
    assert len(paths) == 5
    return paths


@pytest.fixture(scope="session")
def sample_bytes(sample_paths) -> list[bytes]:
    return [p.read_bytes() for p in sample_paths]


def jpeg_bytes(array: np.ndarray, mode: str | None = None, quality: int = 90) -> bytes:
    """Encode an array as JPEG with Pillow, optionally converting it (e.g. to 'CMYK' or 'L') first."""
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def decode_rgb(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photograph (the astronaut), RGB uint8 512x512."""
    return decode_rgb((sample_dir() / "astronaut.jpg").read_bytes())


@pytest.fixture(scope="session")
def quick_run_path(request, tmp_path_factory) -> Path:
    """The benchmark suites run in quick mode as a user runs them (CPU cases here), once per test run:
    pytest-xdist's workers share it (the first to ask runs it, the others wait on a file lock)."""
    import subprocess
    import sys

    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # a pytest-xdist worker: its base folder's parent is the run's
        shared = shared.parent
    out = shared / "bench-quick-run.json"
    with FileLock(f"{out}.lock"):
        if not out.exists():
            root = Path(__file__).resolve().parent.parent
            written = shared / "bench-quick-run.partial.json"
            env = dict(os.environ, PYTHONPATH=str(root), HARNESS_BENCH_QUICK="1")
            result = subprocess.run([sys.executable, "-m", "pytest", "bench/", "-q", "-p", "no:cacheprovider",
                                     "--benchmark-json", str(written)], cwd=root, env=env, capture_output=True,
                                    text=True, timeout=900)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            written.rename(out)
    return out
