"""Presets are defined once (harness/presets.py): the command line's flags that `python -m harness.presets`
prints give exactly the preset's options, and tools/peer_compare.sh runs presets by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from harness.cli import build_parser, config_from_args
from harness.config import Config
from harness.presets import PRESETS, flags
from helpers import ROOT, python_env


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_presets_flags_give_its_options(name):
    config = config_from_args(build_parser().parse_args(flags(name)))
    assert config == Config().replace(**PRESETS[name])


def test_the_command_prints_the_flags_and_refuses_an_unknown_name():
    done = subprocess.run([sys.executable, "-m", "harness.presets", "fastest-fused"], capture_output=True,
                          text=True, env=python_env(), timeout=300)
    assert done.returncode == 0 and done.stdout.split() == flags("fastest-fused")
    unknown = subprocess.run([sys.executable, "-m", "harness.presets", "fastest-of-all"], capture_output=True,
                             text=True, env=python_env(), timeout=300)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "unknown preset" in unknown.stderr


def test_the_side_by_side_runs_presets():
    for script in ("peer_compare.sh", "readers_compare.sh"):
        text = (ROOT / "tools" / script).read_text()
        default = re.search(r"PEER_OURS:-([^}]*)\}", text).group(1).split()
        assert default and all(re.sub(r"(-lenient)?(-threads)?$", "", run) in PRESETS for run in default), default


def test_the_side_by_side_names_take_their_suffixes_in_any_order(tmp_path):
    """peer_compare.sh's parse(): each suffix sets its setting, in any order, and a bad name stops the call."""
    text = (ROOT / "tools" / "peer_compare.sh").read_text()
    parse = text[text.index("parse() {"):text.index("\n}\n", text.index("parse() {")) + 3]
    (tmp_path / "python3").symlink_to(sys.executable)  # the script's python3: this interpreter
    show = ('parse "$1" && echo "$readers $writers ${workers:--} ${codec:--} ${switch:--} ${at:--} '
            '${extra[*]:--} ${options[*]}"')
    env = python_env(PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def parsed(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", parse + show, "parse", name], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120)

    fastest = " ".join(flags("fastest-fused"))
    assert parsed("fastest-fused").stdout.strip() == f"process process - - - - - {fastest}"
    assert (parsed("fastest-fused-codec4-lenient-atHEAD-readers6-switch0.5-writethreads").stdout.strip()
            == f"process threads 6 4 0.5 HEAD --lenient {fastest} --lenient")
    assert parsed("fastest-fused-writethreads-threads").stdout.strip() == f"threads threads - - - - - {fastest}"
    assert parsed("fastest-fused-at0123abcd").returncode == 2  # no such commit
    unknown = parsed("fastest-of-all-lenient")
    assert unknown.returncode == 2 and "unknown preset 'fastest-of-all'" in unknown.stderr


def test_the_side_by_side_table_sets_steady_against_steady():
    """On a recorded call: the sample's headline (164.4 images/s, its set-up counted) is not the yardstick."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "peer_table.py"),
                             str(ROOT / "reports" / "h100-2026-12-07-readers" / "peer")],
                            capture_output=True, text=True, env=python_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0] + " " + line.split(" | ")[1]: line for line in result.stdout.splitlines()[2:]}
    assert len(rows) == 8
    # the bound over the steady window, from the file's timeline (it recorded 103%: batch 2's work before it)
    assert rows["| b32/224 fastest"] == "| b32/224 | fastest | 656.2 (656-667) | 1098.7 | 1.67x | 87% | read |"
