"""A run's timeline: the Perfetto trace (harness.trace) and the report's lane timelines (harness.report)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from harness import STAGES
from harness.report import ReportError
from harness.report.load import load, load_file
from harness.trace import LANES, chrome_trace, write_trace

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "reports" / "h100-2026-12-06-repeats" / "a1.json"  # its sample_workload entry is a whole run
GPU_LANES = ("decode", "compute", "encode")
STEPS = {"read": 0.020, "decode": 0.012, "compute": 0.045, "encode": 0.010, "write": 0.006}  # seconds a batch


def timeline(batches: int = 6, gpu: bool = True, stages: bool = True) -> list[list]:
    """Spans as harness.runner records them for an overlapped run: each lane takes a batch when the lane before
    it is done with it and it is done with the batch before (one thread, one stream); on a GPU each GPU lane
    also has its span on CUDA events, its stages inside it, the last ending a few microseconds past it (the
    two clocks' origins differ by that much)."""
    spans, free = [], dict.fromkeys(LANES, 0.0)
    for batch in range(1, batches + 1):
        ready = 0.0
        for lane in LANES:
            start = max(free[lane], ready) + 0.0003
            end = start + STEPS[lane] * (1 + 0.1 * (batch % 3))
            spans.append([lane, batch, None, "host", start, end])
            clock = "cuda" if gpu and lane in GPU_LANES else "host"
            if clock == "cuda":  # the stream runs a little after the launch
                start, end = start + 0.0004, end + 0.002
                spans.append([lane, batch, None, "cuda", start, end])
            if stages:
                names = {"decode": ["decode"], "compute": ["resize", "inference", "overlay"],
                         "encode": ["encode"]}.get(lane, [])
                cuts = [start + (end - start) * k / max(1, len(names)) for k in range(len(names) + 1)]
                for name, low, high in zip(names, cuts, cuts[1:]):
                    spans.append([lane, batch, name, clock, low, high])
                if names and clock == "cuda":
                    spans[-1][5] += 3e-6  # past its lane's span
            free[lane] = ready = end
    return spans


def x_events(trace: dict) -> list[dict]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X"]


def names_of(trace: dict, kind: str) -> dict:
    """process_name by pid or thread_name by (pid, tid)."""
    return {(e["pid"], e["tid"]) if kind == "thread_name" else e["pid"]: e["args"]["name"]
            for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == kind}


def check_nesting(trace: dict) -> None:
    """What Perfetto needs to draw a track: every stage inside a lane event of its batch on the same track, and
    on each track the lane events, and the stages within one lane event, one after another, never overlapping."""
    events = x_events(trace)
    lanes = {(e["pid"], e["tid"], e["args"]["batch"]): e for e in events if e["cat"] == "lane"}
    for event in events:
        assert isinstance(event["ts"], int) and isinstance(event["dur"], int), event
        assert event["ts"] >= 0 and event["dur"] >= 0, event
        if event["cat"] == "stage":
            parent = lanes[event["pid"], event["tid"], event["args"]["batch"]]
            assert parent["ts"] <= event["ts"] and event["ts"] + event["dur"] <= parent["ts"] + parent["dur"], event
    groups: dict = {}
    for event in events:
        key = (event["pid"], event["tid"]) if event["cat"] == "lane" else \
            (event["pid"], event["tid"], event["args"]["batch"])
        groups.setdefault(key, []).append(event)
    for group in groups.values():
        group.sort(key=lambda e: e["ts"])
        for before, after in zip(group, group[1:]):
            assert before["ts"] + before["dur"] <= after["ts"], (before, after)


def test_the_trace_has_a_track_per_lane_and_clock_in_perfetto_json(tmp_path):
    spans = timeline()
    path = tmp_path / "run.trace.json"
    write_trace(path, spans, {"command": "python -m harness ...", "batch_size": 32})
    trace = json.loads(path.read_text())
    assert trace["displayTimeUnit"] == "ms" and trace["metadata"] == {"command": "python -m harness ...",
                                                                        "batch_size": 32}
    assert len(x_events(trace)) == len(spans)
    processes = names_of(trace, "process_name")
    assert sorted(processes.values()) == ["GPU (CUDA events)", "host lanes"]
    host = {v: k for k, v in processes.items()}["host lanes"]
    threads = names_of(trace, "thread_name")
    order = {(e["pid"], e["tid"]): e["args"]["sort_index"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    for pid, lanes in ((host, LANES), (3 - host, GPU_LANES)):
        tracks = sorted((k for k in threads if k[0] == pid), key=order.get)
        assert [threads[k] for k in tracks] == list(lanes)  # LANES order
    assert len({tid for _, tid in threads}) == len(threads)  # no tid under two processes
    for event in x_events(trace):
        assert event["args"]["clock"] == ("host" if event["pid"] == host else "cuda")
        assert event["name"] in LANES or event["name"] in STAGES
        if event["cat"] == "lane":
            assert threads[event["pid"], event["tid"]] == event["name"]
    first = next(e for e in x_events(trace) if e["name"] == "compute" and e["pid"] == host
                 and e["args"]["batch"] == 1)
    span = next(s for s in spans if s[:4] == ["compute", 1, None, "host"])
    assert first["ts"] == round(span[4] * 1e6) and first["dur"] == round(span[5] * 1e6) - first["ts"]  # µs
    check_nesting(trace)


def test_gpu_stages_are_drawn_inside_their_lanes_gpu_span():
    trace = chrome_trace(timeline(), {})
    threads = names_of(trace, "thread_name")
    gpu = {v: k for k, v in names_of(trace, "process_name").items()}["GPU (CUDA events)"]
    inference = [e for e in x_events(trace) if e["name"] == "inference"]
    assert inference and all(e["pid"] == gpu and threads[gpu, e["tid"]] == "compute" for e in inference)
    check_nesting(trace)  # the stages that ended past their lane's span were clamped into it


def test_a_cpu_timeline_has_only_host_tracks():
    trace = chrome_trace(timeline(gpu=False), {})
    assert list(names_of(trace, "process_name").values()) == ["host lanes"]
    assert sorted(names_of(trace, "thread_name").values()) == sorted(LANES)
    check_nesting(trace)


def test_the_trace_file_is_strict_json(tmp_path):
    path = tmp_path / "run.trace.json"
    write_trace(path, timeline(2), {"images_per_s": float("nan"), "out": tmp_path, "rates": [1.0, math.inf]})

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    trace = json.loads(path.read_text(), parse_constant=refuse)
    assert trace["metadata"] == {"images_per_s": None, "out": str(tmp_path), "rates": [1.0, None]}
    assert not list(tmp_path.glob(".harness-*"))  # written atomically: no temporary left


def test_the_trace_knows_the_runners_lanes():
    from harness.runner import LANES as RUNNER_LANES

    assert LANES == RUNNER_LANES


@pytest.mark.parametrize("executor, lanes", [("overlapped", LANES), ("sequential", ("read", "compute", "write"))])
def test_a_real_cpu_run_traces_every_lane_of_every_batch(tmp_path, sample_bytes, executor, lanes):
    from harness.config import Config
    from harness.pipeline import Pipeline
    from harness.runner import JobsResult, run_jobs, write_jobs

    if "spans" not in JobsResult.__dataclass_fields__:
        pytest.skip("harness.runner records no timeline (JobsResult.spans) yet")
    pipeline = Pipeline(Config(device="cpu", decoder="cpu", ops="opencv", model="lraspp_mobilenet_v3_large",
                               weights="synthetic", target_img_height=64, target_img_width=64, batch_size=2))
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    jobs = write_jobs(sample_bytes, tmp_path / "in")  # 5 images: batches of 2, 2 and 1
    result = run_jobs(pipeline, jobs, tmp_path / "out", 2, executor=executor)
    assert result.written == 5
    spans = result.spans
    assert {(s[0], s[1]) for s in spans if s[2] is None} == {(lane, b) for lane in lanes for b in (1, 2, 3)}
    assert all(s[3] == "host" and 0 <= s[4] <= s[5] for s in spans)  # the CPU has one clock
    assert {s[2] for s in spans if s[2] is not None} <= set(STAGES)
    for batch in (1, 2, 3):  # each batch's stages inside its lanes, the sequential executor's in compute
        assert {"decode", "inference", "encode"} <= {s[2] for s in spans if s[1] == batch and s[2]}, batch
    write_trace(tmp_path / "run.trace.json", spans, {"executor": executor})
    trace = json.loads((tmp_path / "run.trace.json").read_text())
    assert len(x_events(trace)) == len(spans)
    assert sorted(names_of(trace, "thread_name").values()) == sorted(lanes)
    check_nesting(trace)


# --- the report's lane timelines ----------------------------------------------------------------------------

def whole_runs(data: dict) -> list[dict]:
    """The file's whole-run entries: those of harness.runner's executor, with lane times."""
    return [b for b in data["benchmarks"] if b["extra_info"].get("executor") and b["extra_info"].get("lane_seconds")]


def with_timelines(tmp_path: Path, variants: list[tuple[str, int, int]]) -> Path:
    """The recorded file, its whole-run entry copied once per (executor, batch size, batches) with a timeline of
    that many batches (lane spans only, both clocks, as the benchmark records them)."""
    data = json.loads(RECORDED.read_text())
    entry = whole_runs(data)[0]
    for executor, batch_size, batches in variants:
        copied = copy.deepcopy(entry)
        copied["extra_info"].update(executor=executor, batch_size=batch_size,
                                    lane_spans=timeline(batches, stages=False))
        data["benchmarks"].append(copied)
    path = tmp_path / "timelines.json"
    path.write_text(json.dumps(data))
    return path


def test_the_report_draws_the_lane_timeline_of_a_whole_run(tmp_path):
    from harness.report.render import write_report

    path = with_timelines(tmp_path, [("overlapped", 32, 8)])
    written = write_report(load([path]), tmp_path / "out")
    assert [name for name in written if name.startswith("lanes")] == ["lanes-1"]
    with Image.open(written["lanes-1"]) as image:
        assert image.format == "PNG" and image.width > 500
    html = written["html"].read_text()
    assert "<h3 id='lanes'>Lane timelines</h3>" in html
    assert html.count("data:image/png;base64,") == 1 + sum(name in written for name in ("throughput", "breakdown",
                                                                                          "speedups"))
    assert ("alt='timelines.json: sample_workload cvcuda+nvimgcodec tf32, batch 32, 520 px from 1920x1080, "
            "overlapped executor'") \
        in html.replace(f"{tmp_path.name}/", "")
    markdown = written["markdown"].read_text()
    assert "### Lane timelines" in markdown and "](lanes-1.png)" in markdown
    cases = written["cases"].read_text().splitlines()[0].split(",")
    assert "lane_spans" not in cases and "lane_seconds" in cases  # the timeline is in the plot, not the CSV


def test_a_report_of_files_without_timelines_has_none(tmp_path):
    from harness.report.render import write_report

    table = load([RECORDED])
    assert "lane_spans" not in table or table["lane_spans"].isna().all()
    written = write_report(table, tmp_path)
    assert not [name for name in written if name.startswith("lanes")] and not list(tmp_path.glob("lanes-*"))
    assert "Lane timelines" not in written["html"].read_text()
    assert "Lane timelines" not in written["markdown"].read_text()


def test_the_report_picks_one_timeline_per_case_and_at_most_four(tmp_path):
    from harness.report.tables import lane_cases

    path = with_timelines(tmp_path, [("overlapped", 32, 3), ("overlapped", 32, 8), ("sequential", 32, 8),
                                     ("overlapped", 16, 16), ("overlapped", 8, 32), ("overlapped", 64, 4)])
    picked = lane_cases(load([path]))
    # one per executor and batch size: the run of 8 batches over that of 3; the 4-batch one left out
    assert sorted(zip(picked["executor"], picked["batch_size"], picked["batches"])) == [
        ("overlapped", 8, 32), ("overlapped", 16, 16), ("overlapped", 32, 8), ("sequential", 32, 8)]


def test_the_binding_lane_counts_the_longer_of_host_and_gpu_time():
    from harness.report.render import lane_busy

    spans = [["compute", 1, None, "host", 0.0, 0.10], ["compute", 1, None, "cuda", 0.0, 0.12],
             ["compute", 2, None, "host", 0.2, 0.35], ["compute", 2, None, "cuda", 0.2, 0.30],
             ["compute", 2, "inference", "cuda", 0.2, 0.30], ["read", 1, None, "host", 0.0, 0.2]]
    busy = lane_busy(spans)
    assert busy.keys() == {"read", "compute"}
    assert busy["compute"] == pytest.approx(0.12 + 0.15) and busy["read"] == pytest.approx(0.2)


@pytest.mark.parametrize("row", [["compute", 1, None, "gpu", 0.0, 0.1], ["compute", 0, None, "host", 0.0, 0.1],
                                 ["compute", 1, None, "host", 0.2, 0.1], ["compute", 1, None, "host", 0.0]])
def test_a_broken_timeline_is_refused_naming_the_case(tmp_path, row):
    data = json.loads(RECORDED.read_text())
    whole_runs(data)[0]["extra_info"]["lane_spans"] = [["read", 1, None, "host", 0.0, 0.1], row]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError, match=r"test_sample_workload.*lane_spans row #1 is"):
        load_file(path)


# --trace on the command line and harness.distributed ------------------------------------------------


def test_the_command_line_writes_its_timeline(tmp_path, sample_paths, capsys):
    from helpers import SMALL_CPU_RUN, in_process

    trace = tmp_path / "run.trace.json"
    result = in_process(capsys, "-i", str(sample_paths[0].parent), "-o", str(tmp_path / "out"), "-b", "2",
                        "--trace", str(trace), *SMALL_CPU_RUN)
    assert result.returncode == 0, result.stderr
    assert f"timeline to {trace}" in result.stdout
    assert "; the busiest lane: " in result.stdout  # the summary line names the lane that binds
    data = json.loads(trace.read_text())
    assert data["metadata"]["command"] == "harness" and data["metadata"]["batch_size"] == 2
    lanes = {(e["name"], e["args"]["batch"]) for e in data["traceEvents"] if e.get("cat") == "lane"}
    assert lanes == {(lane, batch) for lane in LANES for batch in (1, 2, 3)}  # 5 images in batches of 2
    assert {e["name"] for e in data["traceEvents"] if e.get("cat") == "stage"} >= {"decode", "inference", "encode"}


def test_an_unwritable_trace_is_refused_before_the_model_is_loaded(tmp_path, sample_paths, capsys):
    from helpers import SMALL_MODEL, assert_one_line_error, in_process

    target = tmp_path / "missing" / "t.json"
    result = in_process(capsys, "-i", str(sample_paths[0]), "-o", str(tmp_path / "out"), "--trace", str(target),
                        *SMALL_MODEL)
    assert_one_line_error(result, f"--trace {target} cannot be written", "a directory you can write to")
    assert not (tmp_path / "out").exists()


def test_harness_distributed_writes_each_ranks_timeline(tmp_path, sample_paths, capsys, monkeypatch):
    from harness.distributed import main
    from helpers import SMALL_CPU_RUN

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    trace, results = tmp_path / "d.trace.json", tmp_path / "d.json"
    status = main(["-i", str(sample_paths[0].parent), "-o", str(tmp_path / "out"), "-b", "4", "--json", str(results),
                   "--trace", str(trace), *SMALL_CPU_RUN])
    assert status == 0, capsys.readouterr().err
    data = json.loads(trace.read_text())
    names = {e["args"]["name"] for e in data["traceEvents"] if e["name"] == "process_name"}
    assert names == {"rank 0: host lanes"} and data["metadata"]["world_size"] == 1
    assert {e["args"]["batch"] for e in data["traceEvents"] if e.get("cat") == "lane"} == {1, 2}
    assert "spans" not in json.loads(results.read_text())["benchmarks"][0]["extra_info"]


def test_the_lane_timeline_reads_well_in_a_real_browser(tmp_path, browser_page):
    """Headless Chromium at 1440x900: the lane timeline is under its heading, decodes, and fits the window."""
    from harness.report.render import write_report

    page, _ = browser_page
    written = write_report(load([with_timelines(tmp_path, [("overlapped", 32, 8)])]), tmp_path / "out")
    page.goto(written["html"].as_uri())
    heading = page.locator("h3#lanes")
    assert heading.inner_text() == "Lane timelines"
    image = page.locator("img[alt*='overlapped executor']")
    assert image.count() == 1
    natural, shown = image.evaluate("i => [i.complete && i.naturalWidth, i.getBoundingClientRect().right]")
    assert natural > 500 and shown <= 1440  # decoded, and within the window
    assert image.bounding_box()["y"] > heading.bounding_box()["y"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440


@pytest.mark.gpu
@pytest.mark.parametrize("executor", ["overlapped", "sequential"])
def test_a_real_gpu_run_traces_its_stages_on_both_clocks(tmp_path, sample_bytes, executor):
    """The GPU twin: each batch's stages on CUDA events inside the lane's GPU span, for either executor."""
    import torch

    from harness.config import Config
    from harness.pipeline import Pipeline
    from harness.runner import run_jobs, write_jobs

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: torch.cuda.is_available() is False here")
    pipeline = Pipeline(Config(device="cuda", model="lraspp_mobilenet_v3_large", weights="synthetic",
                               target_img_height=64, target_img_width=64, batch_size=2, executor=executor))
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    result = run_jobs(pipeline, write_jobs(sample_bytes, tmp_path / "in"), tmp_path / "out")
    assert result.written == 5
    for batch in (1, 2, 3):
        assert {"decode", "inference", "encode"} <= {s[2] for s in result.spans if s[1] == batch and s[3] == "cuda"}
    write_trace(tmp_path / "run.trace.json", result.spans, {"executor": executor})
    trace = json.loads((tmp_path / "run.trace.json").read_text())
    assert set(names_of(trace, "process_name").values()) == {"host lanes", "GPU (CUDA events)"}
    check_nesting(trace)
