"""python -m harness.report report FILES... -o DIR | compare A B | history RUNS... -o DIR | gate BASELINE CANDIDATE"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import guarded


def main(argv: list[str] | None = None) -> int:
    from harness.errors import OneLineParser as Parser

    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[1:] if argv[:1] == ["--debug"] else argv  # --debug goes before or after the subcommand
    if command[:1] == ["gate"]:
        from harness.report.gate import main as gate

        return gate(command[1:] + argv[:len(argv) - len(command)])
    debug = argparse.ArgumentParser(add_help=False)  # SUPPRESS: a subcommand without it keeps the main parser's
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an unexpected error")
    parser = Parser(prog="python -m harness.report", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", parents=[debug], help="Markdown, HTML and PNG plots from benchmark files")
    report.add_argument("files", nargs="+", type=Path)
    report.add_argument("-o", "--output", type=Path, default=Path("report"))
    compare = commands.add_parser("compare", parents=[debug], help="the same cases from two runs side by side, with "
                                  "the ratios' 95%% intervals")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)
    compare.add_argument("-o", "--output", type=Path, default=None,
                         help="also write compare.md, compare.csv and compare.png (the ratios as bars) "
                              "into this folder")
    compare.add_argument("--labels", nargs=2, metavar=("A", "B"),
                         help="names for the two runs (default: each file's folder and name)")
    history = commands.add_parser("history", parents=[debug],
                                  help="each case's median across runs, its steps and their commits")
    history.add_argument("runs", nargs="+", type=Path,
                         help="benchmark files, or folders of them (searched recursively)")
    history.add_argument("-o", "--output", type=Path, default=Path("history"))
    history.add_argument("--gpu", help="the GPU (as the files name it) when the runs are from several")
    history.add_argument("--threshold", type=float, default=0.05,
                         help="smallest change of a case's median to report as a step (default: %(default)s, 5%%)")
    commands.add_parser("gate", help="regression gate (see python -m harness.report.gate --help)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    args = parser.parse_args(argv)
    return guarded("harness.report", _run, args, error_status=2, debug=args.debug)


def _run(args) -> int:
    """Unusable input (a ReportError, any HarnessError) exits 2, as the gate's does."""
    from harness.report import ReportError
    from harness.report.load import OUT_OF_MEMORY

    try:
        return _command(args)
    except MemoryError:  # errors.fatal_message's advice (lower -b) is the pipeline's, not a report's
        raise ReportError(OUT_OF_MEMORY) from None


def _command(args) -> int:
    from harness.report.load import load

    if args.command == "report":
        from harness.report.render import write_report

        for name, path in write_report(load(args.files), args.output).items():
            print(f"{name}: {path}")
        return 0
    if args.command == "history":
        from harness.report.history import write_history

        for name, path in write_history(args.runs, args.output, args.gpu, args.threshold).items():
            print(f"{name}: {path}")
        return 0
    from harness.report.compare import ALPHA, SHOWN
    from harness.report.gpus import compare_sides
    from harness.report.present import readable, run_label

    label_a, label_b = args.labels or (run_label(args.a), run_label(args.b))
    compared = compare_sides((label_a, load([args.a])), (label_b, load([args.b])))
    table, only_a, only_b, left_out = (compared[k] for k in ("table", "only_a", "only_b", "left_out"))
    shown = table[[SHOWN[0], "resource", *SHOWN[1:]]]
    lines = [*(f"**Warning:** {w}." for w in compared["warnings"]),
             f"a: {label_a}, b: {label_b}; b time / a time: above 1, b is slower (as the gate reads it); low-high: "
             f"its {1 - 2 * ALPHA:.0%} interval (the gate's bootstrap, alpha {ALPHA} a side; empty where a side "
             "has fewer than 3 raw samples); resource: what the data sheets say bounds the case.", ""]
    for topic, sentences in compared["topics"]:
        lines += [f"**{topic}**", "", *(f"- {s}" for s in sentences), ""]
    lines.append(readable(shown).to_markdown(index=False))
    for title, cases in ((f"only in {args.a}", only_a), (f"only in {args.b}", only_b),
                         ("left out, timed two ways (no ratio)", left_out)):
        if cases:
            lines.append(f"\n{title}:\n" + "\n".join(f"- {c}" for c in cases))
    if args.output is not None:
        from harness.files import write_atomic
        from harness.report.render import plot_side_by_side

        args.output.mkdir(parents=True, exist_ok=True)
        title = f"# {label_b} against {label_a}\n\n"
        write_atomic(args.output / "compare.md", (title + "\n".join(lines)).encode())
        write_atomic(args.output / "compare.csv", shown.to_csv(index=False).encode())
        image = plot_side_by_side(table, label_a, label_b)
        if image is not None:
            write_atomic(args.output / "compare.png", image)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
