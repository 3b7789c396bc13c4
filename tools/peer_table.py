"""The table of a tools/peer_compare.sh folder: per case, the sample's steady images/s (its timed runs before
and after) and each of this project's runs beside it: steady images/s, the ratio of the two steady rates,
steady over the pipelining bound, and the busiest lane.  Steady against steady: the sample's headline
(PEER images_per_s) counts its first batch, about 1.2 s of set-up on an H100, and this project's whole-run
images/s its pipeline fill.
Usage: python tools/peer_table.py FOLDER [FOLDER ...]   (Markdown on stdout)"""

import argparse
import json
import re
import statistics
from pathlib import Path

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
        lanes = info.get("lane_seconds") or {}
        busiest = max(lanes, key=lanes.get) if lanes else None
        steady, bound = info.get("steady_images_per_s"), info.get("bound_images_per_s")
        out.append({"case": f"b{match['batch']}/{match['size']}", "run": match["name"],
                    "sample": statistics.median(sample) if sample else None,
                    "sample_range": (min(sample), max(sample)) if sample else None,
                    "steady": steady, "ratio": steady / statistics.median(sample) if steady and sample else None,
                    "of_bound": steady / bound if steady and bound else None,
                    "busiest": busiest, "lanes": lanes})
    return out


def markdown(table: list[dict]) -> str:
    def number(value, form):
        return "-" if value is None else format(value, form)

    lines = ["| case | run | sample steady (range) | steady | over the sample | of the bound | busiest lane (s) |",
             "|---|---|---|---|---|---|---|"]
    for row in table:
        low, high = row["sample_range"] or (None, None)
        busiest = f"{row['busiest']} {row['lanes'][row['busiest']]:.3f}" if row["busiest"] else "-"
        lines.append(f"| {row['case']} | {row['run']} | {number(row['sample'], '.1f')} ({number(low, '.0f')}-"
                     f"{number(high, '.0f')}) | {number(row['steady'], '.1f')} | {number(row['ratio'], '.2f')}x | "
                     f"{number(row['of_bound'], '.0%')} | {busiest} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    table = [row for folder in parser.parse_args().folders for row in rows(folder)]
    print(markdown(table))


if __name__ == "__main__":
    main()
