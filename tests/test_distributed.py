"""The multi-process runner: sharding, and real torchrun launches on the CPU (gloo) with the small model.

What these cannot show: several GPUs (each process on its own device, NCCL-free gathering across them) and
several nodes; those need a multi-GPU machine (see docs/multi-gpu.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.distributed import shard
from harness.report.load import load
from harness.report.render import write_report
from helpers import SMALL_CPU_RUN

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("world", range(1, 8))
def test_shards_hold_every_item_exactly_once(world):
    for count in range(0, 20):
        items = list(range(count))
        shares = [shard(items, rank, world) for rank in range(world)]
        assert sum(shares, []) == items  # in order, none twice, none missing
        sizes = [len(s) for s in shares]
        assert max(sizes) - min(sizes) <= 1


def test_shard_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="outside a world of 2"):
        shard([1, 2, 3], 2, 2)


def launch(processes: int | None, inputs: Path, out: Path, result: Path, *extra: str) -> subprocess.CompletedProcess:
    """torchrun with `processes` processes, or a plain process (a world of one) for None."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    runner = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
              if processes else [sys.executable])
    command = [*runner, "-m", "harness.distributed", "-i", str(inputs), "-o", str(out), "--json", str(result),
               *SMALL_CPU_RUN, *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture
def inputs(tmp_path, sample_paths):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(7):  # seven files over three ranks: shares of 2, 2 and 3
        (folder / f"img_{index}.jpg").write_bytes(sample_paths[index % len(sample_paths)].read_bytes())
    return folder


def test_three_processes_write_every_output_once_and_report_in_the_benchmark_schema(tmp_path, inputs):
    result = launch(3, inputs, tmp_path / "out", tmp_path / "r.json", "-b", "2", "--blur_mode", "downscaled",
                    "--no_channels_last")  # the CPU's default memory format: not named in the variant
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"out_img_{i}.jpg" for i in range(7)]
    table = load([tmp_path / "r.json"])  # the report's loader reads it unchanged
    ranks = table[table["rank"] != "all"].sort_values("rank")
    assert list(ranks["rank"]) == [0, 1, 2] and (table["world_size"] == 3).all()
    assert (table["variant"] == "blur_mode=downscaled").all()  # a non-default option makes its own case
    data = json.loads((tmp_path / "r.json").read_text())
    infos = [b["extra_info"] for b in data["benchmarks"]]
    assert [i["inputs"] for i in infos[:3]] == [2, 2, 3] and infos[-1]["images"] == 7
    whole = infos[-1]
    assert whole["images_per_s"] == pytest.approx(7 / max(i["seconds"] for i in infos[:3]))
    assert whole["per_rank_images_per_s"] == [i["images_per_s"] for i in infos[:3]]
    assert whole["scaling_efficiency"] is None  # no one-process baseline given
    assert whole["throttled"] is False and infos[0]["gpu_state_before"] is None  # no GPU, no NVML state
    assert all(i["noise_rel_iqr"] >= 0 and isinstance(i["noisy"], bool) for i in infos[:3])
    assert data["machine_info"]["harness"]["world_size"] == 3


def test_fewer_inputs_than_processes_and_scaling_efficiency_against_one_process(tmp_path, inputs, sample_paths):
    one = launch(None, inputs, tmp_path / "one", tmp_path / "one.json")  # without torchrun: a world of one
    assert one.returncode == 0, one.stderr[-2000:]
    single = json.loads((tmp_path / "one.json").read_text())["benchmarks"][-1]["extra_info"]
    assert single["world_size"] == 1 and single["scaling_efficiency"] == 1.0 and single["images"] == 7
    few = tmp_path / "few"
    few.mkdir()
    for index in range(2):
        (few / f"f{index}.jpg").write_bytes(sample_paths[index].read_bytes())
    result = launch(3, few, tmp_path / "out", tmp_path / "r.json", "--baseline", str(tmp_path / "one.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["out_f0.jpg", "out_f1.jpg"]
    infos = [b["extra_info"] for b in json.loads((tmp_path / "r.json").read_text())["benchmarks"]]
    assert [i["inputs"] for i in infos[:3]] == [0, 1, 1]
    whole = infos[-1]
    assert whole["scaling_efficiency"] == pytest.approx(whole["images_per_s"] / (3 * single["images_per_s"]))
    written = write_report(load([tmp_path / "one.json", tmp_path / "r.json"]), tmp_path / "report")
    markdown = written["markdown"].read_text()  # the report has a scaling section and no end-to-end breakdown
    assert "## Several processes" in markdown and "End-to-end breakdown" not in markdown


def test_a_baseline_that_is_not_a_one_process_run_is_refused(tmp_path, inputs):
    (tmp_path / "bad.json").write_text("{}")
    result = launch(None, inputs, tmp_path / "out", tmp_path / "r.json", "--baseline", str(tmp_path / "bad.json"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "is not the --json of a harness.distributed run" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_bad_files_are_skipped_and_counted_even_first(tmp_path, inputs):
    """A corrupt file sorted first: the warm-up passes over it, its rank reports and skips it."""
    (inputs / "a_bad.jpg").write_bytes(b"not a jpeg")
    result = launch(2, inputs, tmp_path / "out", tmp_path / "r.json", "-b", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Skipping" in result.stderr and "a_bad.jpg is not a JPEG image" in result.stderr
    whole = json.loads((tmp_path / "r.json").read_text())["benchmarks"][-1]["extra_info"]
    assert (whole["inputs"], whole["images"], whole["skipped"]) == (8, 7, 1)
    assert len(list((tmp_path / "out").iterdir())) == 7


def test_variant_names_only_what_differs_from_the_defaults():
    from harness.config import Config, Plan
    from harness.resolve import resolve
    from harness.run_file import variant

    cpu = resolve(Config(device="cpu", ops="torch"))
    assert variant(cpu, 1) == ""
    assert variant(resolve(Config(device="cpu", channels_last=True)), 2) == "channels_last=True,procs_per_gpu=2"
    # a GPU plan made by hand, so that this runs without one: channels-last is the GPU fp16 default
    gpu_fp16 = Plan(cpu.request, cpu.config.replace(device="cuda", precision="fp16", channels_last=True),
                    torch.device("cuda", 0), cpu.class_index)
    assert variant(gpu_fp16, 1) == ""
    no_cl = Plan(cpu.request, gpu_fp16.config.replace(channels_last=False), gpu_fp16.device, cpu.class_index)
    assert variant(no_cl, 1) == "channels_last=False"
    assert variant(resolve(Config(device="cpu", fuse_conv=True, preprocess="folded")), 1) == \
        "preprocess=folded,fuse_conv=True"
    lenient = resolve(Config(device="cpu", fuse_conv=True, preprocess="folded", lenient=True))
    assert variant(lenient, 1) == "preprocess=folded,fuse_conv=True,lenient"
    assert variant(resolve(Config(device="cpu", executor="sequential")), 1) == "executor=sequential"
    assert variant(resolve(Config(device="cpu", depth=3)), 1) == "depth=3"
    # every option that changes the work is named, without a list to extend: the encoder's quality, the blur
    assert variant(resolve(Config(device="cpu", jpeg_quality=80, blur_sigma=3.0)), 1) == \
        "blur_sigma=3.0,jpeg_quality=80"
    assert variant(resolve(Config(device="cpu", weights="synthetic", seed=3, class_name="dog")), 1) == ""
    host_lanes = {"HARNESS_READERS": "threads", "HARNESS_WRITERS": "threads", "HARNESS_READ_WORKERS": "3",
                  "HARNESS_CODEC_THREADS": "4"}  # the files read, the overlays written, by the pipeline's process
    os.environ.update(host_lanes)
    try:
        assert variant(cpu, 1) == "readers=threads,writers=threads,read_workers=3,codec_threads=4"
    finally:
        for name in host_lanes:
            del os.environ[name]


def test_colliding_names_across_ranks_give_every_overlay(tmp_path, sample_paths):
    """x.jpeg, x.jpg and x_1.jpg on two ranks: three overlays, none overwriting another (they once left two)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("x.jpeg", "x.jpg", "x_1.jpg"):
        (folder / name).write_bytes(sample_paths[0].read_bytes())
    result = launch(2, folder, tmp_path / "out", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["out_x.jpg", "out_x_1.jpg", "out_x_2.jpg"]


# the command line's error contract, under torchrun or without it ---------------------------------------


@pytest.fixture
def no_torchrun(monkeypatch):
    """This process as a world of one, whatever the environment it was started in."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run_here(capsys, *args: str) -> tuple[int, str]:
    """harness.distributed in this process: its exit status and its stderr."""
    from harness.distributed import main

    return main(list(args)), capsys.readouterr().err


def only_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize("env,message", [
    ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 is outside a world of WORLD_SIZE=2 (ranks 0 to 1)"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0: a run needs 1 or more processes"),
    ({"RANK": "1", "WORLD_SIZE": "2", "MASTER_PORT": "29500"}, "WORLD_SIZE=2 but MASTER_ADDR not set"),
    ({"LOCAL_RANK": "x"}, "LOCAL_RANK='x' is not a number"),
], ids=["rank-outside", "no-world", "no-master-addr", "not-a-number"])
def test_an_environment_torchrun_would_not_make_is_one_line(tmp_path, inputs, no_torchrun, capsys, env, message):
    for name, value in env.items():
        no_torchrun.setenv(name, value)
    status, stderr = run_here(capsys, "-i", str(inputs), "-o", str(tmp_path / "out"), "--json",
                              str(tmp_path / "r.json"), *SMALL_CPU_RUN)
    assert status == 1
    line = only_error(stderr)
    assert line.startswith(f"harness.distributed: error: {message}") and line.endswith("torchrun"), line
    assert not (tmp_path / "out").exists()


def test_a_single_bad_file_and_a_folder_of_bad_files_exit_1_without_results(tmp_path, sample_paths, no_torchrun,
                                                                            capsys):
    """As on the command line: a single -i file that is bad is fatal, and a run that wrote nothing failed."""
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(sample_paths[0].read_bytes()[:3000])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"not a jpeg")
    (bad / "b.jpg").write_bytes(b"")
    for source, message in ((cut, f"{cut} is truncated"), (bad, "no input image could be processed")):
        status, stderr = run_here(capsys, "-i", str(source), "-o", str(tmp_path / "out"), "--json",
                                  str(tmp_path / "r.json"), *SMALL_CPU_RUN)
        assert status == 1
        assert only_error(stderr).startswith(f"harness.distributed: error: {message}")
        assert not (tmp_path / "r.json").exists()


def test_an_unwritable_json_is_refused_before_any_overlay(tmp_path, inputs, no_torchrun, capsys):
    target = tmp_path / "missing" / "r.json"
    status, stderr = run_here(capsys, "-i", str(inputs), "-o", str(tmp_path / "out"), "--json", str(target),
                              *SMALL_CPU_RUN)
    assert status == 1
    assert only_error(stderr) == (f"harness.distributed: error: --json {target} cannot be written (No such file or "
                                  "directory): pass --json a file in a directory you can write to")
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback_of_an_unexpected_error(tmp_path, inputs, no_torchrun, capsys, monkeypatch):
    import harness.distributed as distributed

    def broken(*args):
        raise ValueError("boom")

    monkeypatch.setattr(distributed, "_run", broken)
    args = ["-i", str(inputs), "-o", str(tmp_path / "out"), "--json", str(tmp_path / "r.json"), *SMALL_CPU_RUN]
    status, stderr = run_here(capsys, *args)
    assert status == 1
    assert only_error(stderr) == ("harness.distributed: error: internal error (ValueError: boom): rerun with --debug "
                                  "for the traceback and report it")
    with pytest.raises(ValueError, match="boom"):
        distributed.main([*args, "--debug"])


#: One rank of a world of two at the meeting that ends its set-up (harness.distributed's own functions, without
#: the pipeline): it "works", "fails" for want of memory, or "leaves" without a word once it has joined, as a
#: killed process does.  The real runs' meetings are the torchrun tests above.
RANK = """
import os, sys, time
from harness.distributed import _join, _together
from harness.errors import guarded

def run(_):
    _join(int(os.environ["RANK"]), 2)
    if sys.argv[1] == "leaves":
        time.sleep(1)  # rank 0 has finished joining
        os._exit(9)
    def set_up():
        if sys.argv[1] == "fails":
            raise MemoryError
    _together(2, set_up)
    return 0

sys.exit(guarded("harness.distributed", run, None))
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_rank_that_fails_or_is_lost_stops_every_rank_with_the_reason():
    """Rank 0 names rank 1's failure, or says it lost a process, in one line with exit status 1 (it once said
    'internal error'); the failing rank gives its own reason."""
    worlds = {}
    for kind in ("fails", "leaves"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(free_port())}
        worlds[kind] = [subprocess.Popen([sys.executable, "-c", RANK, role], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, env={**env, "RANK": str(rank)})
                        for rank, role in enumerate(("works", kind))]
    for kind, (zero, one) in worlds.items():
        stderr, peer = zero.communicate(timeout=300)[1], one.communicate(timeout=300)[1]
        assert zero.returncode == 1, stderr
        line = only_error(stderr)
        if kind == "fails":
            memory = "out of host memory: lower -b/--batch_size or -th/-tw"
            assert line == f"harness.distributed: error: rank 1 stopped the run: {memory}"
            assert one.returncode == 1 and only_error(peer) == f"harness.distributed: error: {memory}"
        else:
            assert line.startswith("harness.distributed: error: lost another process of the run (") and \
                "Connection closed by peer" in line and line.endswith("see its own message, then rerun"), line
