"""How the report shows things: one colour per stage in every plot, runs named by folder and file, column
titles with their units, numbers to their precision and nothing printed as NaN or None."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from harness import STAGES

#: Kenneth Kelly's colours of maximum contrast (1965), white and black left out: 20 hues that stay apart
#: side by side, for the 14 stages and the unattributed remainder.
KELLY = ("#0067A5", "#F38400", "#008856", "#BE0032", "#875692", "#F3C300", "#848482", "#A1CAF1", "#882D17",
         "#8DB600", "#E68FAC", "#654522", "#F99379", "#2B3D26", "#C2B280", "#604E97", "#DCD300", "#B3446C",
         "#F6A600", "#E25822")
#: Each stage's colour, fixed by name: the same stage has the same colour in every plot of every report, and a
#: stage added to STAGES takes a colour no stage or lane has (FREE), changing no other's.
STAGE_COLORS = dict(zip(("decode", "resize", "convert", "normalize", "reformat", "preprocess", "inference",
                         "softmax", "mask", "upscale", "blur", "overlay", "blur_overlay", "encode", "unattributed"),
                        KELLY))
#: The lanes that are not stages (decode and encode keep their stage's colour).
LANE_COLORS = {"read": KELLY[15], "decode": STAGE_COLORS["decode"], "compute": KELLY[17],
               "encode": STAGE_COLORS["encode"], "write": KELLY[19]}
FREE = [c for c in (*KELLY, "#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#E6AB02")
        if c not in STAGE_COLORS.values() and c not in LANE_COLORS.values()]
STAGE_COLORS.update(zip([s for s in STAGES if s not in STAGE_COLORS], FREE))

#: Column titles with their units; columns not listed are shown with spaces for underscores.
TITLES = {
    "median_ms": "median (ms)", "a_ms": "a (ms)", "b_ms": "b (ms)", "gpu_ms": "GPU time (ms)",
    "floor_ms": "floor (ms)", "end_to_end_ms": "end to end (ms)", "inference_ms": "inference (ms)",
    "images_per_s": "images/s", "sample_images_per_s": "CV-CUDA sample (images/s)",
    "slowest_rank_images_per_s": "slowest rank (images/s)", "fastest_rank_images_per_s": "fastest rank (images/s)",
    "tflops_per_s": "TFLOPS", "peak_tflops": "peak (TFLOPS)", "copy_GB_per_s": "copy (GB/s)",
    "batch_size": "batch", "model_height": "model side (px)", "source": "source (px)", "seconds": "wall (s)",
    "noise_rel_iqr": "noise (IQR/median)", "non_inference_share": "not inference",
    "unattributed_fraction": "unattributed", "instrumentation_overhead": "instrumentation cost",
    "unattributed_95": "unattributed 95%", "instrumentation_95": "instrumentation cost 95%",
    "fraction_of_floor": "of the floor", "fraction_of_peak": "of the peak", "scaling_efficiency": "scaling",
    "speedup": "speed-up (x)", "speedup_over_sample": "against the sample (x)",
    "ratio_b_over_a": "b time / a time", "label": "file", "world_size": "processes", "procs_per_gpu": "per GPU",
}
PERCENT = ("share", "fraction", "overhead", "efficiency", "noise_rel_iqr", "unattributed")
TIMES = ("speedup", "ratio")
DASH = "–"  # shown where a value does not apply


def run_label(path) -> str:
    """A file named by its folder and name: two runs' `e2e-fp16.json` from two folders stay apart."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def number(value, column: str = "") -> str:
    """One value as text: percentages for shares and fractions, 'x' for ratios, thousands separated, about four
    significant digits and never an exponent; empty values as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15
                                  and not any(k in column for k in (*PERCENT, *TIMES))):
        return f"{int(value):,}"
    if not isinstance(value, float):
        return str(value)
    if any(key in column for key in PERCENT):
        return f"{value * 100:.1f}%"
    if any(key in column for key in TIMES):
        return f"{value:.3g}x" if abs(value) < 100 else f"{value:,.0f}x"
    size = abs(value)
    digits = 0 if size >= 1000 else 1 if size >= 100 else 2 if size >= 1 else 3 if size >= 0.01 else 5
    return f"{value:,.{digits}f}"


#: Columns a reader looks for first, in this order: what the case is, then its time and rate; the file and the
#: hardware, the same on most rows, come last.
KEY_FIRST = ("case", "kind", "stage", "engine", "variant", "device", "precision", "batch_size", "model_height",
             "model_width", "source", "median_ms", "gpu_ms", "end_to_end_ms", "a_ms", "b_ms", "ratio_b_over_a", "low",
             "high", "images_per_s")
LAST = ("label", "hardware")


def arranged(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The table with the key columns first and the file and hardware last, less the columns that hold one
    value on every row (returned apart, to be said once above the table); a one-row table keeps its columns."""
    constant = {}
    if len(frame) > 1:
        for column in frame.columns:
            values = {number(v, column) for v in frame[column].tolist()}
            if len(values) == 1 and column not in ("case",):
                constant[column] = values.pop()
    kept = [c for c in frame.columns if c not in constant]
    order = [c for c in KEY_FIRST if c in kept] + [c for c in kept if c not in KEY_FIRST and c not in LAST] + \
        [c for c in LAST if c in kept]
    return frame[order], {TITLES.get(c, c.replace("_", " ")): v for c, v in constant.items() if v != DASH}


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as text to show: every value formatted by its column, titles with units."""
    shown = pd.DataFrame({column: [number(v, column) for v in frame[column].tolist()] for column in frame.columns},
                         index=frame.index)
    return shown.rename(columns=lambda c: TITLES.get(c, c.replace("_", " ")))
