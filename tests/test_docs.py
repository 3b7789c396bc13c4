"""The documentation: docs/cli.md's generated --help blocks match the parsers, and every relative link in
README.md, docs/*.md and reports/README.md points at a file that exists (and, into a Markdown file, at a
heading it has)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS, ROOT / "reports" / "README.md"]


def _cli_docs():
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "tools" / "cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_docs = _cli_docs()


@pytest.fixture(scope="module")
def cli_page() -> str:
    doc = cli_docs.DOC.read_text()
    recorded = cli_docs.recorded_python(doc)
    if recorded != cli_docs.python_version():
        pytest.skip(f"docs/cli.md was generated with Python {recorded}, this is {cli_docs.python_version()}: "
                    "argparse lays help out differently between versions")
    return doc


def test_the_cli_page_holds_the_parsers_help(cli_page, capsys):
    status = cli_docs.main(["--check"])
    assert status == 0, f"docs/cli.md is stale; regenerate it with python tools/cli_docs.py:\n{capsys.readouterr().err}"


def test_the_check_names_a_stale_block(cli_page, tmp_path, capsys):
    stale = tmp_path / "cli.md"
    assert "usage: harness [-h]" in cli_page
    stale.write_text(cli_page.replace("usage: harness [-h]", "usage: harness [-h] [--gone]", 1))
    assert cli_docs.main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err
    assert "harness: stale" in err and "harness.golden" not in err


FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^[ \t]*\[[^\]]+\]:[ \t]*<?([^\s>]+)>?(?:[ \t]+.*)?$", re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _without_code(text: str) -> str:
    """Markdown outside fenced blocks and inline code, where a link is a link."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def links(page: Path) -> list[str]:
    text = _without_code(page.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but - and _ dropped, spaces as -, repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_docs_pages_are_linked_from_the_readme():
    readme = set(links(ROOT / "README.md"))
    missing = [p.name for p in DOCS if f"docs/{p.name}" not in readme]
    assert not missing, f"README.md does not link {', '.join(missing)}"


def test_every_option_of_the_command_line_has_a_row_in_the_options_tables():
    """The hand-written tables of docs/cli.md (flag, default, meaning) name every long option of
    python -m harness: a new option without its row fails here."""
    from harness.cli import build_parser

    rows = "\n".join(line.split("|")[1] for line in (ROOT / "docs" / "cli.md").read_text().splitlines()
                     if line.startswith("| `-"))
    options = {flag for action in build_parser()._actions for flag in action.option_strings
               if flag.startswith("--") and flag not in ("--help", "--version")}
    missing = sorted(flag for flag in options if not re.search(rf"`(-\w+/)?{re.escape(flag)}[`\s]", rows))
    assert not missing, f"docs/cli.md's options tables lack a row for {', '.join(missing)}"


def test_the_help_names_every_registered_part():
    """--ops, --decoder and -bk list their choices in the help (the parser imports no registry, to stay fast):
    a registered engine, decoder or backend missing there fails here."""
    from harness.backends import BACKENDS
    from harness.cli import build_parser
    from harness.decode import DECODERS
    from harness.ops import ENGINES

    helps = {flag: action.help for action in build_parser()._actions for flag in action.option_strings}
    for flag, registry in (("--ops", ENGINES), ("--decoder", DECODERS), ("--backend", BACKENDS)):
        missing = [name for name in registry.names() if not re.search(rf"\b{re.escape(name)}\b", helps[flag])]
        assert not missing, f"the {flag} help does not name {', '.join(missing)} (harness/cli.py)"
