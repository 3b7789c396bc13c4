"""The table of a tools/peer_compare.sh folder: per case, the sample's steady images/s (its timed runs before
and after) and each of this project's runs beside it: steady images/s, the ratio of the two steady rates,
steady over the pipelining bound and the lane that sets it, over the steady window.  Steady against
steady: the sample's headline (PEER images_per_s) counts its first batch, about 1.2 s of set-up on an H100,
and this project's whole-run images/s its pipeline fill.
Usage: python tools/peer_table.py FOLDER [FOLDER ...]   (Markdown on stdout)"""

import argparse
import json
import re
import statistics
from pathlib import Path

from harness.runner import JobsResult

OURS = re.compile(r"harness_(?P<name>.+)_b(?P<batch>\d+)_s(?P<size>\d+)\.json")


def sample_steady(folder: Path, batch: str, size: str) -> list[float]:
    """The steady images/s of the sample's timed runs in this case, before and after this project's runs (a
    file cut short by the call's time limit is left out)."""
    rates = []
    for name in (f"peer_b{batch}_s{size}.json", f"peer_b{batch}_s{size}_after.json"):
        try:
            runs = json.loads((folder / name).read_text())["runs"]
        except (OSError, ValueError, KeyError):
            continue
        rates += [run["steady_images_per_s"] for run in runs if run.get("kind") == "timed"]
    return rates


def window_bound(info: dict) -> tuple[float | None, str | None]:
    """steady / bound and the lane that sets the bound, over the steady window (harness.runner since
    e46d20e).  A file recorded before holds a bound from each batch's whole lane time: it is computed again
    from the file's lane timeline, each batch ending where its write does (within microseconds)."""
    if info.get("bound_lane"):
        return info.get("bound_fraction"), info["bound_lane"]
    spans = [list(span) for span in info.get("lane_spans") or []]
    ends: dict[int, float] = {}
    for lane, number, _, _, _, ended in spans:
        if lane == "write":
            ends[number] = max(ends.get(number, 0.0), ended)
    if len(ends) < 2:
        return None, None
    finished = [ends[number] for number in sorted(ends)]
    written = info["images"] / len(finished)  # every batch whole: the side-by-side's files are all good
    result = JobsResult(batch_seconds=[b - a for a, b in zip([0.0] + finished, finished)],
                        batch_written=[written] * len(finished), spans=spans)
    record = result.info()
    return record["bound_fraction"], record["bound_lane"]


def rows(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("harness_*.json")):
        match = OURS.fullmatch(path.name)
        if not match:
            continue
        try:
            info = json.loads(path.read_text())["benchmarks"][0]["extra_info"]
        except (ValueError, KeyError, IndexError):  # a run that failed or was cut short
            continue
        sample = sample_steady(folder, match["batch"], match["size"])
        steady = info.get("steady_images_per_s")
        of_bound, bound_lane = window_bound(info)
        out.append({"case": f"b{match['batch']}/{match['size']}", "run": match["name"],
                    "sample": statistics.median(sample) if sample else None,
                    "sample_range": (min(sample), max(sample)) if sample else None,
                    "steady": steady, "ratio": steady / statistics.median(sample) if steady and sample else None,
                    "of_bound": of_bound, "bound_lane": bound_lane})
    return out


def markdown(table: list[dict]) -> str:
    def number(value, form):
        return "-" if value is None else format(value, form)

    lines = ["| case | run | sample steady (range) | steady | over the sample | of the bound | bound set by |",
             "|---|---|---|---|---|---|---|"]
    for row in table:
        low, high = row["sample_range"] or (None, None)
        lines.append(f"| {row['case']} | {row['run']} | {number(row['sample'], '.1f')} ({number(low, '.0f')}-"
                     f"{number(high, '.0f')}) | {number(row['steady'], '.1f')} | {number(row['ratio'], '.2f')}x | "
                     f"{number(row['of_bound'], '.0%')} | {row['bound_lane'] or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    table = [row for folder in parser.parse_args().folders for row in rows(folder)]
    print(markdown(table))


if __name__ == "__main__":
    main()
