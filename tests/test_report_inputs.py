"""Issue 26: the report tools and the golden check on broken input.  Each case must end in one line on stderr
naming the problem and the fix, the contract's exit status (2 for the reports' unusable input, 1 for
harness.golden), no traceback and nothing else on stderr; none may hang or read without bound."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from harness.report import gate as gate_module
from harness.report import load as load_module
from harness.report.__main__ import main as report
from harness.report.gate import main as gate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "reports" / "h100-2026-11-24" / "sample.json"  # 15 cases of 3 samples each: quick to gate
WORLD1 = ROOT / "reports" / "h200x2-2026-11-24" / "default" / "world1.json"  # harness.distributed's layout


def one_line(capsys, *words: str) -> str:
    """The one line on stderr (nothing else there, nothing on stdout), holding every word."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert not captured.out, captured.out
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def edited(source: Path, target: Path, edit) -> Path:
    """A copy of a benchmark file with `edit(data)` applied."""
    data = json.loads(source.read_text())
    edit(data)
    target.write_text(json.dumps(data))
    return target


def unblock_later(fifo: Path, seconds: float = 20) -> None:
    """Open the FIFO's writing end after a while, so that a reader that blocked on it fails its test instead
    of hanging the suite (no reader: the open fails and nothing happens)."""
    def writer():
        time.sleep(seconds)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    threading.Thread(target=writer, daemon=True).start()


# 2. statistics that are not positive finite times ----------------------------------------------------------

def _median(value):
    def edit(data):
        data["benchmarks"][2]["stats"]["median"] = value
    return edit


def _sample(value):
    def edit(data):
        data["benchmarks"][2]["stats"]["data"][1] = value
    return edit


BROKEN = {"null-median": (_median(None), "its median is None"), "zero-median": (_median(0), "its median is 0"),
          "negative-median": (_median(-0.1), "its median is -0.1"),
          "infinite-median": (_median(float("inf")), "its median is inf"),
          "nan-median": (_median(float("nan")), "its median is nan"),
          "string-median": (_median("0.1"), "its median is '0.1'"),
          "bool-median": (_median(True), "its median is True"),
          "null-sample": (_sample(None), "raw sample #1 is None"),
          "string-sample": (_sample("0.1"), "raw sample #1 is '0.1'"),
          "zero-sample": (_sample(0.0), "raw sample #1 is 0.0"),
          "no-rounds": (lambda d: d["benchmarks"][2]["stats"].pop("rounds"), "has no statistics (rounds missing)")}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_broken_statistics_are_refused_by_every_tool_naming_the_file_and_case(tmp_path, capsys, broken):
    """One broken case among fifteen: the gate (as baseline and as candidate), report, compare and history all
    exit 2 naming the file and the case; none computes a ratio of nan or divides by zero."""
    edit, words = BROKEN[broken]
    bad = edited(SAMPLE, tmp_path / "bad.json", lambda d: (edit(d), d.update(datetime="2026-11-24T10:00:00")))
    name = json.loads(SAMPLE.read_text())["benchmarks"][2]["name"]
    for command in (lambda: gate([str(SAMPLE), str(bad)]), lambda: gate([str(bad), str(SAMPLE)]),
                    lambda: report(["report", str(bad), "-o", str(tmp_path / "r")]),
                    lambda: report(["compare", str(SAMPLE), str(bad)]),
                    lambda: report(["history", str(bad), "-o", str(tmp_path / "h")])):
        assert command() == 2
        one_line(capsys, str(bad), f"benchmark #2 ({name})", words)


# 3. throttling as every writer records it; unknown hardware -------------------------------------------------

def _file_throttled(value):
    def edit(data):
        data["machine_info"]["harness"]["throttled"] = value
    return edit


def _case_throttled(value):
    def edit(data):
        for bench in data["benchmarks"]:
            bench["extra_info"]["throttled"] = value
    return edit


@pytest.mark.parametrize("edit,throttled", [
    (_case_throttled("false"), False), (_case_throttled("False"), False), (_case_throttled("true"), True),
    (_case_throttled(True), True), (_file_throttled([]), False), (_file_throttled(["HW_SLOWDOWN"]), True),
    (_file_throttled(True), True), (_file_throttled("false"), False), (_file_throttled(False), False)],
    ids=["case-false-string", "case-False-string", "case-true-string", "case-true", "file-no-reasons",
         "file-reasons", "file-true", "file-false-string", "file-false"])
def test_throttled_is_read_from_every_place_it_is_written(tmp_path, capsys, edit, throttled):
    from harness.report.load import environment

    hot = edited(SAMPLE, tmp_path / "hot.json", edit)
    status = gate([str(SAMPLE), str(hot), "--markdown", str(tmp_path / "g.md")])
    if throttled:
        assert status == 2
        one_line(capsys, "throttled", str(hot), "--allow-throttled")
    else:
        assert status == 0 and not capsys.readouterr().err
    assert environment([hot])["throttled"].item() in (("yes", "HW_SLOWDOWN") if throttled else ("no",))


def test_a_throttled_entry_that_is_no_flag_is_refused(tmp_path, capsys):
    odd = edited(SAMPLE, tmp_path / "odd.json", _case_throttled("maybe"))
    assert gate([str(SAMPLE), str(odd)]) == 2
    one_line(capsys, str(odd), "'throttled' is 'maybe'", "true, false or a list")


def _cpu(data):
    """What harness.distributed writes on a CPU whose model Python cannot name."""
    data["machine_info"]["harness"].update(gpu_name=None, gpu_uuid=None, cpu=None, throttled=[])


def test_two_files_of_unknown_hardware_are_not_one_machine(tmp_path, capsys):
    a, b = edited(WORLD1, tmp_path / "a.json", _cpu), edited(WORLD1, tmp_path / "b.json", _cpu)
    assert gate([str(a), str(b)]) == 2
    one_line(capsys, "names no GPU or CPU model", "--allow-unknown-hardware")
    assert gate([str(a), str(SAMPLE)]) == 2  # one side unknown: refused for the same reason
    one_line(capsys, str(a), "--allow-unknown-hardware")
    assert gate([str(a), str(b), "--allow-unknown-hardware", "--markdown", str(tmp_path / "g.md")]) == 0
    assert "no regression" in (tmp_path / "g.md").read_text()


# 7. a CPU run of harness.distributed in the report ------------------------------------------------------------

def test_the_report_heads_unknown_hardware_in_words(tmp_path, capsys):
    cpu = edited(WORLD1, tmp_path / "cpu.json", _cpu)
    assert report(["report", str(cpu), "-o", str(tmp_path / "r")]) == 0
    assert not capsys.readouterr().err
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "### Unknown hardware (the files name no GPU or CPU model)" in markdown and "### nan" not in markdown


# 4. --debug everywhere; history's options and files -----------------------------------------------------------

COMMANDS = {"report": ["report", str(SAMPLE), "-o", "unused"], "compare": ["compare", str(SAMPLE), str(SAMPLE)],
            "history": ["history", str(SAMPLE), "-o", "unused"], "gate": ["gate", str(SAMPLE), str(SAMPLE)]}


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", COMMANDS)
def test_debug_is_taken_before_or_after_every_subcommand(monkeypatch, capsys, command, where):
    """A bug (here: reading a file fails unexpectedly) is one 'internal error' line without --debug and its
    traceback with it, wherever --debug stands."""
    from harness.report import history

    def bug(path):
        raise RuntimeError("a bug")

    monkeypatch.setattr(load_module, "read_json", bug)
    monkeypatch.setattr(history, "read_json", bug)
    args = COMMANDS[command]
    assert report(args) == 2
    one_line(capsys, "internal error (RuntimeError: a bug)", "--debug")
    with pytest.raises(RuntimeError, match="a bug"):
        report(["--debug", *args] if where == "before" else [*args, "--debug"])


@pytest.mark.parametrize("threshold", ["-1", "nan", "inf"])
def test_history_refuses_a_threshold_that_is_no_fraction(tmp_path, capsys, threshold):
    assert report(["history", str(SAMPLE), "--threshold", threshold, "-o", str(tmp_path)]) == 2
    one_line(capsys, f"--threshold {float(threshold)}", "0 or more")
    assert gate([str(SAMPLE), str(SAMPLE), "--threshold", threshold]) == 2
    one_line(capsys, f"--threshold {float(threshold)}")


def test_history_leaves_out_a_fifo_and_a_device_without_blocking(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(SAMPLE, runs / "sample.json")
    os.mkfifo(runs / "pipe.json")
    unblock_later(runs / "pipe.json")
    (runs / "null.json").symlink_to("/dev/null")
    assert report(["history", str(runs), "-o", str(tmp_path / "out")]) == 0
    assert not capsys.readouterr().err
    markdown = (tmp_path / "out" / "history.md").read_text()
    for name in ("pipe.json", "null.json"):
        assert f"{runs / name} is not a regular file" in markdown


# 5. argparse's errors are one line ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [[], ["bogus"], ["report"], ["compare", "a.json"], ["history"],
                                  ["history", "runs", "--threshold", "x"], ["gate"], ["gate", "a.json"],
                                  ["--debug", "gate", "a.json", "b.json", "--alpha"], ["report", "a.json", "--bogus"]],
                         ids=lambda argv: " ".join(argv) or "nothing")
def test_argument_errors_of_the_report_tools_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as stop:
        report(argv)
    assert stop.value.code == 2
    assert one_line(capsys, "error:").endswith("(see --help)")


@pytest.mark.parametrize("argv", [[], ["chek"], ["check", "--precision"], ["check", "--bogus"]],
                         ids=["nothing", "misspelt", "no-value", "unknown-option"])
def test_argument_errors_of_golden_are_one_line(capsys, argv):
    from harness.golden import main as golden

    with pytest.raises(SystemExit) as stop:
        golden(argv)
    assert stop.value.code == 2
    assert one_line(capsys, "python -m harness.golden: error:").endswith("(see --help)")


# 6. special and oversized files; memory -------------------------------------------------------------------------

def test_a_report_of_a_device_or_a_fifo_is_refused_unread(tmp_path, capsys):
    """A link to a device (/dev/null here: /dev/zero would be read until memory ran out) and a FIFO (opening
    it would block for ever) are refused by their file type."""
    (tmp_path / "device.json").symlink_to("/dev/null")
    os.mkfifo(tmp_path / "pipe.json")
    unblock_later(tmp_path / "pipe.json")
    for name in ("device.json", "pipe.json"):
        assert report(["report", str(tmp_path / name), "-o", str(tmp_path / "r")]) == 2
        one_line(capsys, f"{tmp_path / name} is not a regular file", "give a --benchmark-json file")
        assert gate([str(SAMPLE), str(tmp_path / name)]) == 2
        one_line(capsys, f"{tmp_path / name} is not a regular file")


def test_a_benchmark_file_over_the_size_limit_is_refused_unread(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(load_module, "MAX_JSON_BYTES", 1000)
    assert report(["compare", str(SAMPLE), str(SAMPLE)]) == 2
    one_line(capsys, f"{SAMPLE} is too large ({SAMPLE.stat().st_size} bytes, the limit is 1000)")


@pytest.mark.parametrize("command", ["gate", "report"])
def test_running_out_of_memory_says_what_to_do_about_files_not_batches(monkeypatch, capsys, command):
    def exhausted(paths):
        raise MemoryError()

    monkeypatch.setattr(gate_module, "load", exhausted)
    monkeypatch.setattr(load_module, "load", exhausted)
    assert report([command, str(SAMPLE), str(SAMPLE)]) == 2
    line = one_line(capsys, "out of host memory", "fewer or smaller files")
    assert "-b" not in line and "batch" not in line


def test_the_gate_holds_samples_as_floats_and_bootstraps_in_bounded_chunks(monkeypatch):
    """Samples are float arrays in the table (8 bytes each, not a Python float and its list slot), and the
    bootstrap resamples CHUNK_VALUES values at a time: 100 resamples of 100,000 samples, at most 65,536 values
    at a time, stay far below the 80 MB one unchunked array of resamples takes."""
    from harness.report.gate import ratio_interval

    table = load_module.load([SAMPLE])
    assert all(isinstance(s, np.ndarray) and s.dtype == np.float64 for s in table["samples"])
    monkeypatch.setattr(gate_module, "RESAMPLES", 100)
    monkeypatch.setattr(gate_module, "CHUNK_VALUES", 1 << 16)
    rng = np.random.default_rng(0)
    base, cand = rng.lognormal(0, 0.05, 100_000), rng.lognormal(0.1, 0.05, 100_000)
    process = np.arange(100_000) % 4
    tracemalloc.start()
    try:
        plain = ratio_interval(base, cand, 0.01)
        nested = ratio_interval(base, cand, 0.01, base_process=process, cand_process=process)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, peak
    ratio = np.median(cand) / np.median(base)
    for low, high in (plain, nested):
        assert ratio * 0.99 < low < ratio < high < ratio * 1.01


# 1. the golden check believes its manifest only where the code agrees ---------------------------------------------

@pytest.fixture
def golden_copy(tmp_path):
    from harness import golden

    folder = tmp_path / "golden"
    shutil.copytree(golden.DEFAULT_DIR, folder)
    return folder


def _manifest(edit):
    """`edit(manifest)` applied to the copy's manifest."""
    def apply(folder):
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        edit(manifest)
        path.write_text(json.dumps(manifest))
    return apply


def _replaced(text: str):
    return lambda folder: (folder / "manifest.json").write_text(text)


def _case(index, key, value):
    return _manifest(lambda m: m["cases"][index].__setitem__(key, value))


def _output(key, value):
    return _manifest(lambda m: m["cases"][0]["outputs"][1].__setitem__(key, value))


def _fifo_png(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    png = folder / manifest["cases"][1]["outputs"][0]["overlay"]
    png.unlink()
    os.mkfifo(png)
    unblock_later(png)


def _stored(data: bytes):
    """The first case's first mask replaced by `data`, its manifest hash updated to match."""
    def apply(folder):
        from harness.files import sha256_hex

        path = folder / "manifest.json"
        manifest = json.loads(path.read_text())
        entry = manifest["cases"][0]["outputs"][0]
        (folder / entry["mask"]).write_bytes(data)
        entry["mask_sha256"] = sha256_hex(data)
        path.write_text(json.dumps(manifest))
    return apply


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


MANIFESTS = {
    "no-cases": (_manifest(lambda m: m.update(cases=[])), "it has no case at 224x224, 520x520"),
    "no-520-case": (_manifest(lambda m: m["cases"].pop()), "it has no case at 520x520"),
    "null": (_replaced("null"), "it is not an object with 'tolerances'"),
    "list": (_replaced("[]"), "it is not an object with 'tolerances'"),
    "empty": (_replaced("{}"), "it is not an object with 'tolerances'"),
    "not-json": (_replaced('{"cases": ['), "is not valid JSON"),
    "no-tolerances": (_manifest(lambda m: m.pop("tolerances")), "it is not an object with 'tolerances'"),
    "looser": (_manifest(lambda m: m["tolerances"]["fp16"].update(iou=0.5)),
               "tolerances.fp16.iou is 0.5, looser than harness/tolerances.py's 0.8"),
    "not-a-number": (_manifest(lambda m: m["tolerances"]["fp32"].update(agreement="0.99")),
                     "tolerances.fp32.agreement is '0.99', not a number"),
    "no-cases-list": (_manifest(lambda m: m.update(cases={})), "it has no 'cases' list"),
    "size": (_case(0, "size", [224]), "case #0 has size [224]"),
    "unknown-size": (_case(1, "size", [512, 512]), "case #1 has size [512, 512]"),
    "twice": (_manifest(lambda m: m["cases"].__setitem__(1, m["cases"][0])), "case #1 has size [224, 224]"),
    "model": (_case(1, "model", "deeplabv3_resnet101"), "records model 'deeplabv3_resnet101'"),
    "weights": (_case(0, "weights", "synthetic(seed=1)"), "records weights 'synthetic(seed=1)'"),
    "weights-hash": (_case(1, "weights_sha256", "0" * 64), "records weights_sha256 '000"),
    "blur": (_manifest(lambda m: m["cases"][1]["pipeline"].update(blur_kernel=31)),
             "case #1 records pipeline.blur_kernel 31, this code's reference uses 27"),
    "sigma": (_manifest(lambda m: m["cases"][0]["pipeline"].update(blur_sigma=5.0)), "pipeline.blur_sigma 5.0"),
    "class": (_case(0, "class_name", "cat"), "case #0 records class_name 'cat'"),
    "input-name": (_output("input", "cat.jpg"), "records input 'cat.jpg'"),
    "input-hash": (_output("input_sha256", "f" * 64), "where the shipped camera.jpg"),
    "outputs": (_manifest(lambda m: m["cases"][0]["outputs"].pop()), "does not list one output per shipped image"),
    "outside": (_output("mask", "../../outside.png"), "'../../outside.png' is outside"),
    "absolute": (_output("overlay", "/etc/hostname"), "'/etc/hostname' is outside"),
    "fifo-png": (_fifo_png, "is not a regular file"),
    "not-a-png": (_stored(b"GIF89a, not a PNG"), "is not a readable PNG"),
    "png-size": (_stored(_png(10, 12)), "astronaut.mask.png is 10x12 L, not 224x224 L"),
}


@pytest.mark.parametrize("broken", MANIFESTS, ids=list(MANIFESTS))
def test_golden_check_refuses_a_manifest_it_cannot_believe(golden_copy, capsys, monkeypatch, broken):
    """Each refusal comes before the pipeline runs (run_case is never called), in one line."""
    from harness import golden

    def never(pipeline):
        raise AssertionError("the pipeline ran")

    monkeypatch.setattr(golden, "run_case", never)
    edit, words = MANIFESTS[broken]
    edit(golden_copy)
    assert golden.main(["check", "--dir", str(golden_copy)]) == 1
    one_line(capsys, "harness.golden: error:", words)


def test_golden_manifest_that_is_a_fifo_is_refused(golden_copy, capsys):
    from harness import golden

    (golden_copy / "manifest.json").unlink()
    os.mkfifo(golden_copy / "manifest.json")
    unblock_later(golden_copy / "manifest.json")
    assert golden.main(["check", "--dir", str(golden_copy)]) == 1
    one_line(capsys, "cannot read the golden manifest", "is not a regular file")
