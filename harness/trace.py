"""A run's timeline (harness.runner's JobsResult.spans) as a Chrome Trace Event Format file, so that
https://ui.perfetto.dev or chrome://tracing shows where each lane worked and waited, batch by batch.

A span row is [lane, batch, stage, clock, start_s, end_s]: stage None for the lane's whole span of that batch,
clock "host" (perf_counter) or "cuda" (CUDA events), both in seconds since the run's start.  Host spans go
to one process, GPU spans to another, one thread track per lane; a lane's stages are complete events inside
its span on the same track, so the viewers draw them as its children.  Each lane is one thread (host) or one
stream (GPU), so its batches never overlap on a track.  Times are whole microseconds, rounded once from the
clamped seconds so that a child never ends after its parent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness import LANES
from harness.files import write_atomic

PROCESSES = {"host": (1, "host lanes"), "cuda": (2, "GPU (CUDA events)")}  # clock: pid, process name


def _tid(clock: str, lane: str) -> int:
    """A lane's thread id under its clock's process, unique across both: a viewer may take a tid seen under
    two pids for one thread."""
    return PROCESSES[clock][0] * 100 + (LANES.index(lane) + 1 if lane in LANES else len(LANES) + 1)


def _us(seconds: float) -> int:
    return max(0, round(seconds * 1e6))


def chrome_trace(spans, metadata: dict) -> dict:
    """The trace as a JSON object: complete ("X") events for every span, named by lane or stage with
    args {"batch", "clock"}; process and thread names and sort order as metadata ("M") events.  `spans` may
    be a dict of rank: spans (harness.distributed), each rank's under processes of its own."""
    if isinstance(spans, dict):
        return _of_ranks(spans, metadata)
    lanes = {(lane, batch, clock): (start, end) for lane, batch, stage, clock, start, end in spans if stage is None}
    tracks: set[tuple[str, str]] = set()
    events = []
    for lane, batch, stage, clock, start, end in spans:
        end = max(start, end)
        if stage is not None and (lane, batch, clock) in lanes:  # clamp a stage into its lane's span
            low, high = lanes[lane, batch, clock]
            start, end = min(max(start, low), high), min(max(end, low), high)
        tracks.add((clock, lane))
        ts = _us(start)
        events.append({"ph": "X", "ts": ts, "dur": _us(end) - ts, "pid": PROCESSES[clock][0],
                       "tid": _tid(clock, lane), "name": stage or lane, "cat": "stage" if stage else "lane",
                       "args": {"batch": batch, "clock": clock}})
    # by track and time, a parent before the children that start with it
    events.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], -e["dur"], e["cat"] != "lane"))
    names = []
    for clock in sorted({clock for clock, _ in tracks}, key=lambda c: PROCESSES[c][0]):
        pid, name = PROCESSES[clock]
        names += [{"ph": "M", "pid": pid, "name": "process_name", "args": {"name": name}},
                  {"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}}]
    for clock, lane in sorted(tracks, key=lambda t: _tid(*t)):
        pid, tid = PROCESSES[clock][0], _tid(clock, lane)
        names += [{"ph": "M", "pid": pid, "tid": tid, "name": "thread_name", "args": {"name": lane}},
                  {"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}}]
    return {"traceEvents": names + events, "displayTimeUnit": "ms", "metadata": dict(metadata)}


def _of_ranks(spans: dict, metadata: dict) -> dict:
    events = []
    for rank, rows in sorted(spans.items()):
        for event in chrome_trace(rows, {})["traceEvents"]:
            event = {**event, "pid": event["pid"] + 10 * rank}
            if event["name"] == "process_name":
                event["args"] = {"name": f"rank {rank}: {event['args']['name']}"}
            elif event["name"] == "process_sort_index":
                event["args"] = {"sort_index": event["pid"]}
            events.append(event)
    return {"traceEvents": events, "displayTimeUnit": "ms", "metadata": dict(metadata)}


def _strict(value):
    """NaN and infinities as null, as strict JSON readers (Perfetto's among them) need."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


def write_trace(path: str | Path, spans, metadata: dict) -> None:
    """chrome_trace() written atomically; metadata JSON cannot hold is written as text, NaN as null."""
    data = json.dumps(_strict(chrome_trace(spans, metadata)), default=str, allow_nan=False)
    write_atomic(Path(path), data.encode())
