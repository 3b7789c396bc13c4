"""The --help blocks of docs/cli.md, generated from the real argparse parsers.

    python tools/cli_docs.py           rewrite every block between <!-- cli: NAME --> and <!-- /cli -->
    python tools/cli_docs.py --check   exit 1 naming each stale or missing block (tests/test_docs.py runs it)

The help text is formatted at COLUMNS=100 without colour, so that it does not depend on the terminal.
argparse lays help out differently from one Python minor version to the next, so docs/cli.md records the
version it was generated with (<!-- cli-python: X.Y -->); tests/test_docs.py skips the check on another one.
A default path under the package's folder (the shipped images of -i, harness.golden's --dir) is written
relative to it (harness/data, golden), not as this machine's path.  Where a module has a parser builder it
is called (harness.cli, harness.distributed); elsewhere the module's own main() runs in this process until it
parses its arguments, and the parser it built is taken there.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
ENVIRONMENT = {"COLUMNS": "100", "LINES": "50", "NO_COLOR": "1", "PYTHON_COLORS": "0"}
BLOCK = re.compile(r"<!-- cli: (?P<name>[^>]+?) -->\n(?P<body>.*?)<!-- /cli -->", re.S)
PYTHON = re.compile(r"<!-- cli-python: (?P<version>[0-9.]+) -->")

if str(ROOT) not in sys.path:  # run as a script from anywhere: the checkout's harness, not another one
    sys.path.insert(0, str(ROOT))


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@contextlib.contextmanager
def stable_terminal():
    """COLUMNS=100 and no colour while the help is formatted; the environment as it was afterwards."""
    saved = {key: os.environ.get(key) for key in ENVIRONMENT}
    os.environ.update(ENVIRONMENT)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _package_root() -> Path:
    """The folder that holds the harness package: the checkout, for an editable install."""
    import harness

    return Path(harness.__file__).resolve().parent.parent


def _portable_defaults(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A default path under the package's folder (-i's shipped images, harness.golden's --dir) written relative
    to it (harness/data, golden), whatever the checkout's path on this machine."""
    root = _package_root()
    for action in parser._actions:
        default = action.default
        if isinstance(default, (str, Path)) and os.path.isabs(default):
            try:
                inside = Path(default).resolve().relative_to(root)
            except ValueError:
                continue
            action.default = inside.as_posix()
    return parser


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


def _built(module: str) -> Callable[[], str]:
    """The help of the parser that `module.build_parser()` returns."""
    def text() -> str:
        return _portable_defaults(importlib.import_module(module).build_parser()).format_help()
    return text


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__()
        self.parser = parser


def _from_main(module: str, *subcommands: str) -> Callable[[], str]:
    """The help of the parser that `module.main()` builds for itself (and of its subcommand): main() runs here
    until it parses its arguments, where the parser is taken, so that what --help would print is formatted
    with the defaults made portable."""
    def text() -> str:
        parse_args = argparse.ArgumentParser.parse_args

        def taken(self, *args, **kwargs):
            raise _Parsed(self)

        argparse.ArgumentParser.parse_args = taken
        try:
            importlib.import_module(module).main([])
        except _Parsed as parsed:
            parser = parsed.parser
        else:
            raise RuntimeError(f"{module}.main() returned without parsing its arguments")
        finally:
            argparse.ArgumentParser.parse_args = parse_args
        for name in subcommands:
            parser = _subcommand(parser, name)
        return _portable_defaults(parser).format_help()
    return text


#: Block name -> how its text is made.  The name is what follows `python -m` (harness: the command line).
HELP: dict[str, Callable[[], str]] = {
    "harness": _built("harness.cli"),
    "harness.distributed": _built("harness.distributed"),
    "harness.report": _from_main("harness.report.__main__"),
    "harness.report report": _from_main("harness.report.__main__", "report"),
    "harness.report compare": _from_main("harness.report.__main__", "compare"),
    "harness.report history": _from_main("harness.report.__main__", "history"),
    "harness.report.gate": _from_main("harness.report.gate"),
    "harness.golden": _from_main("harness.golden"),
    "harness.repeats": _from_main("harness.repeats"),
}


def render(name: str) -> str:
    """The body of block `name`: its help text as a fenced block."""
    with stable_terminal():
        text = HELP[name]()
    for local in {str(ROOT), str(_package_root())}:
        if local in text:
            raise RuntimeError(f"the help of {name} names this machine's path {local}: make it portable in "
                               "tools/cli_docs.py")
    return "```text\n" + text.rstrip() + "\n```\n"


def problems(doc: str) -> list[str]:
    """Each block of `doc` that differs from its parser's help, is missing, or names no known command."""
    found: list[str] = []
    named = []
    for match in BLOCK.finditer(doc):
        name = match["name"]
        named.append(name)
        if name not in HELP:
            found.append(f"{name}: no such command (known: {', '.join(HELP)})")
        elif match["body"] != render(name):
            found.append(f"{name}: stale")
    found += [f"{name}: missing (add <!-- cli: {name} --> <!-- /cli -->)" for name in HELP if name not in named]
    found += [f"{name}: more than one block" for name in sorted(set(named)) if named.count(name) > 1]
    recorded = recorded_python(doc)
    if recorded != python_version():
        found.append(f"generated with Python {recorded or '(not recorded)'}, this is {python_version()}: "
                     "argparse lays help out differently between versions")
    return found


def recorded_python(doc: str) -> str | None:
    match = PYTHON.search(doc)
    return match["version"] if match else None


def regenerate(doc: str) -> str:
    """`doc` with every known block rewritten and the Python version recorded."""
    text = BLOCK.sub(lambda m: m.group(0) if m["name"] not in HELP else
                     f"<!-- cli: {m['name']} -->\n{render(m['name'])}<!-- /cli -->", doc)
    version = f"<!-- cli-python: {python_version()} -->"
    return PYTHON.sub(version, text) if PYTHON.search(text) else text.rstrip("\n") + f"\n\n{version}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/cli_docs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 naming each stale block; change nothing")
    parser.add_argument("doc", nargs="?", type=Path, default=DOC, help="the page (default docs/cli.md)")
    args = parser.parse_args(argv)
    doc = args.doc.read_text()
    if args.check:
        found = problems(doc)
        for problem in found:
            print(f"{args.doc}: {problem}", file=sys.stderr)
        if found:
            print("regenerate with: python tools/cli_docs.py", file=sys.stderr)
        return 1 if found else 0
    updated = regenerate(doc)
    if updated != doc:
        args.doc.write_text(updated)
        print(f"rewrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
