"""The error contract at its edges: modules missing at import time, C++ stacks printed by native code, and a
second signal during the clean-up.  Each case checks the exit status, the one line and that no traceback
reaches stderr."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.errors import fatal_message, guarded, imported
from helpers import SMALL_MODEL, python_env

CPU_RUN = [*SMALL_MODEL, "--device", "cpu"]


def _env(*first_on_path: Path, **extra: str) -> dict:
    """A child on the CPU: its GPUs hidden."""
    return python_env(*first_on_path, CUDA_VISIBLE_DEVICES="", **extra)


def _one_line(stderr: str, prog: str) -> str:
    """The only line of `prog` on stderr, with no traceback anywhere."""
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "(most recent call first)" not in stderr, stderr  # no stuck exit's stacks (faulthandler)
    lines = [line for line in stderr.splitlines() if line.startswith(f"{prog}:")]
    assert len(lines) == 1, stderr
    return lines[0]


# modules missing at import time --------------------------------------------------------------------


def test_a_module_missing_when_an_entry_point_imports_is_one_line(tmp_path):
    """OpenCV and torchvision are imported before any run starts (harness.cli imports the pipeline)."""
    processes = []
    for module, entry in (("cv2", "harness"), ("torchvision", "harness.distributed")):
        shadow = tmp_path / module
        shadow.mkdir()
        (shadow / f"{module}.py").write_text(f"raise ModuleNotFoundError('no {module}', name='{module}')\n")
        processes.append((module, entry, subprocess.Popen(
            [sys.executable, "-m", entry, *CPU_RUN, "-o", str(tmp_path / "out")], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=_env(shadow))))
    for module, entry, process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 1, stderr
        named = {"cv2": "'cv2' (package opencv-python-headless)", "torchvision": "'torchvision'"}[module]
        assert _one_line(stderr, entry) == (f"{entry}: error: the Python module {named} is missing: install harness "
                                            "with its dependencies (pip install -e . in its checkout)")


def test_a_module_missing_when_a_tool_module_imports_is_one_line(tmp_path):
    """`python -m harness.golden` and `python -m harness.report` import Pillow, numpy and pandas at the top;
    harness/__init__.py's hook words a missing one as the entry points do, and --debug keeps the traceback."""
    shadow = tmp_path / "PIL"
    shadow.mkdir()
    (shadow / "PIL.py").write_text("raise ModuleNotFoundError('no PIL', name='PIL')\n")
    done = subprocess.run([sys.executable, "-m", "harness.golden", "check"], capture_output=True, text=True,
                          env=_env(shadow), timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == ("harness.golden: error: the Python module 'PIL' (package pillow) is missing: "
                                   "install harness with its dependencies (pip install -e . in its checkout)")
    debug = subprocess.run([sys.executable, "-m", "harness.golden", "check", "--debug"], capture_output=True,
                           text=True, env=_env(shadow), timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_imported_words_a_missing_module_and_debug_shows_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PIL", None)  # what an environment without Pillow gives
    with pytest.raises(SystemExit) as stopped:
        imported("harness", "PIL")
    assert stopped.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "harness: error: the Python module 'PIL' (package pillow) is missing: install harness with its "
        "dependencies (pip install -e . in its checkout)"]
    with pytest.raises(ModuleNotFoundError):
        imported("harness", "PIL", debug=True)


def test_import_errors_of_libraries_are_named_and_of_harness_itself_are_bugs():
    broken = ImportError("libGL.so.1: cannot open shared object file", name="cv2")
    assert fatal_message(broken).startswith("the Python module 'cv2' (package opencv-python-headless) cannot be "
                                            "imported (libGL.so.1")
    assert fatal_message(ImportError("cannot import name 'x' from 'harness.cli'", name="harness.cli")) is None


# C++ stacks -------------------------------------------------------------------------------------------

#: Runs the command line (both executors), harness.distributed and Pipeline.run in one process, under an
#: address-space limit set after a first run has loaded everything: 400 MB more than that process holds,
#: while decoding a JPEG that claims 16384x16384 pixels needs 805 MB at once, inside torchvision's decoder.
OUT_OF_MEMORY_RUNS = """
import pathlib, resource, sys
from harness import cli, distributed
from harness.config import Config
from harness.errors import stops_the_run
from harness.pipeline import Pipeline
good, big, out = sys.argv[1:4]
fast = {fast!r} + ["-th", "64", "-tw", "64"]
assert cli.main(["-i", good, "-o", out, *fast]) == 0
pipeline = Pipeline(Config(device="cpu", decoder="cpu", ops="opencv", model="lraspp_mobilenet_v3_large",
                           weights="synthetic", target_img_height=64, target_img_width=64))
pipeline.run([pathlib.Path(good).read_bytes()])
held = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) << 10
resource.setrlimit(resource.RLIMIT_AS, (held + (400 << 20),) * 2)
for name, main, extra in (("harness", cli.main, ["--executor", "sequential"]), ("harness", cli.main, []),
                          ("harness.distributed", distributed.main, ["--json", out + "/d.json"])):
    status = main(["-i", big, "-o", out, "--lenient", *fast, *extra])
    print(f"=== {{name}} {{status}}", file=sys.stderr, flush=True)
try:
    pipeline.run([pathlib.Path(big).read_bytes()], strict=False)
    print("=== library returned", file=sys.stderr, flush=True)
except Exception as error:
    print(f"=== library stops the run: {{stops_the_run(error)}}", file=sys.stderr, flush=True)
"""


def _claims_size(height: int, width: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims another size: the decoder allocates for the claim."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    at = data.index(b"\xff\xc0")
    return data[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 9:]


def test_host_memory_running_out_inside_decode_is_one_line_without_the_cpp_stack(tmp_path, sample_paths):
    """libtorch's stable ABI writes a C++ stack of some 45 frames to stderr before torchvision's decoder raises."""
    big = tmp_path / "big.jpg"
    big.write_bytes(_claims_size(16384, 16384))
    script = tmp_path / "runs.py"
    script.write_text(OUT_OF_MEMORY_RUNS.format(fast=CPU_RUN))
    result = subprocess.run([sys.executable, str(script), str(sample_paths[0]), str(big), str(tmp_path / "out")],
                            capture_output=True, text=True, env=_env(MALLOC_ARENA_MAX="2"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = result.stderr.split("=== ")
    assert [run.split()[:2] for run in runs[1:4]] == [["harness", "1"], ["harness", "1"], ["harness.distributed", "1"]]
    for text, run in zip(runs[:3], runs[1:4]):  # each run's lines come before its status
        prog = run.split()[0]
        assert "frame #" not in text and "libtorch" not in text, text
        assert _one_line(text, prog) == f"{prog}: error: out of host memory: lower -b/--batch_size or -th/-tw"
    assert runs[4].strip() == "library stops the run: True"  # the caller gets the exception, the terminal no stack
    assert runs[3].split("\n", 1)[1] == "", runs[3]
    assert not (tmp_path / "out" / "d.json").exists()


# signals ----------------------------------------------------------------------------------------------


@pytest.fixture
def signal_handlers():
    """guarded leaves SIGINT and SIGTERM ignored after a signal (its process is on the way out): put them back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("first,second,status,line", [
    (signal.SIGINT, signal.SIGTERM, 130, "harness: interrupted"),
    (signal.SIGTERM, signal.SIGINT, 143, "harness: terminated"),
    (signal.SIGTERM, signal.SIGTERM, 143, "harness: terminated"),
], ids=["int-then-term", "term-then-int", "term-twice"])
def test_a_second_signal_during_the_clean_up_is_ignored(first, second, status, line, capsys, signal_handlers):
    cleaned = []

    def run(_):
        try:
            os.kill(os.getpid(), first)
            time.sleep(10)  # the first signal's exception lands here
        finally:
            os.kill(os.getpid(), second)  # while the lanes are being joined
            time.sleep(0.1)
            cleaned.append(True)
        return 0

    assert guarded("harness", run, None) == status
    assert cleaned == [True]
    assert capsys.readouterr().err.splitlines() == [line]


def test_a_ctrl_c_dropped_inside_a_weakref_callback_still_stops_the_run(capsys, signal_handlers):
    """Python prints and drops an exception raised in a weakref callback: a Ctrl-C whose handler ran there."""

    class Thing:
        pass

    def interrupted(ref):
        raise KeyboardInterrupt

    def run(_):
        thing = Thing()
        ref = weakref.ref(thing, interrupted)  # noqa: F841 (a callback runs only while its weakref lives)
        del thing  # the callback runs now
        time.sleep(10)
        return 0

    assert guarded("harness", run, None) == 130
    assert capsys.readouterr().err.splitlines() == ["harness: interrupted"]


def test_two_signals_a_tenth_of_a_second_apart_leave_no_temporary_file(tmp_path, sample_bytes):
    """The command line signalled while it writes overlays, SIGINT then SIGTERM (overlapped executor) and SIGTERM
    then SIGINT (sequential: its exit is quick, so the second signal often comes while Python is tearing
    down): the status is the first signal's, one line, and every file in -o is a whole overlay."""
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(300):  # long enough to be still writing when the signals come
        (folder / f"img_{index:03}.jpg").write_bytes(sample_bytes[index % 5])
    trials = [(signal.SIGINT, signal.SIGTERM, "overlapped", 130, "harness: interrupted"),
              (signal.SIGTERM, signal.SIGINT, "sequential", 143, "harness: terminated")]
    results = {}

    def trial(first, second, executor, out: Path):
        process = subprocess.Popen([sys.executable, "-m", "harness", "-i", str(folder), "-o", str(out), *CPU_RUN,
                                    "--executor", executor], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=_env(PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1"))
        for line in process.stdout:
            if "Saving the overlay" in line:
                break
        process.send_signal(first)
        time.sleep(0.1)
        process.send_signal(second)
        try:
            results[out] = process.communicate(timeout=120)[1], process.returncode
        except subprocess.TimeoutExpired:  # stuck: its threads' stacks (faulthandler, on SIGABRT) say where
            process.send_signal(signal.SIGABRT)
            try:
                stacks = process.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                process.kill()
                stacks = process.communicate()[1]
            results[out] = f"still running 120 s after the signals:\n{stacks}", "stuck"

    threads = [threading.Thread(target=trial, args=(first, second, executor, tmp_path / executor))
               for first, second, executor, _, _ in trials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _, _, executor, status, line in trials:
        out = tmp_path / executor
        stderr, returncode = results[out]
        assert returncode == status, stderr
        assert _one_line(stderr, "harness") == line
        names = [p.name for p in out.iterdir()]
        assert names and all(n.startswith("out_img_") and n.endswith(".jpg") for n in names), names
        for name in names:
            assert np.array(Image.open(out / name)).ndim == 3  # whole files only


#: Interrupted, then signalled again after the clean-up, while the interpreter would still be joining a
#: thread that does not end.
STUCK_EXIT = """
import os, signal, sys, time
from harness.errors import guarded

def run(_):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)

print(guarded("harness", run, None), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(10)
sys.exit(0)
"""


def test_a_signal_after_the_clean_up_ends_the_process_with_the_first_signals_status():
    result = subprocess.run([sys.executable, "-c", STUCK_EXIT], capture_output=True, text=True, env=_env(),
                            timeout=60)
    assert result.returncode == 130 and result.stdout == "130\n", result.stderr
    assert _one_line(result.stderr, "harness") == "harness: interrupted"


#: SIGTERM, then SIGINT 0.3 s later, both while the main thread is inside one long C call (seconds of key
#: derivation): Python then runs the two handlers in the signals' numeric order, SIGINT's first.
TOGETHER = """
import hashlib, sys
from harness.errors import guarded

def run(_):
    print("ready", flush=True)
    hashlib.pbkdf2_hmac("sha256", b"key", b"salt", 10_000_000)
    return 0

sys.exit(guarded("harness", run, None))
"""


def test_signals_that_arrive_together_are_taken_in_the_order_they_came():
    process = subprocess.Popen([sys.executable, "-c", TOGETHER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_env())
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # apart enough that the kernel delivers them in this order, even to a thread off its CPU
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert _one_line(stderr, "harness") == "harness: terminated"


#: Interrupted, then unable to exit: a thread that never ends is joined at the exit, and no second signal comes.
NEVER_ENDS = """
import os, signal, threading, time
import harness.errors
from harness.errors import guarded

harness.errors.EXIT_LIMIT_S = 1

def run(_):
    threading.Thread(target=threading.Event().wait, name="never-ends").start()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)

guarded("harness", run, None)
"""


def test_an_exit_that_never_ends_prints_the_stacks_and_ends():
    result = subprocess.run([sys.executable, "-c", NEVER_ENDS], capture_output=True, text=True, env=_env(),
                            timeout=60)
    assert result.returncode == 130, result.stderr
    assert result.stderr.startswith("harness: interrupted\nharness: still exiting 1 s after the signal (a bug): its "
                                    "threads' stacks follow\n"), result.stderr
    assert "(most recent call first)" in result.stderr and "in wait" in result.stderr, result.stderr
