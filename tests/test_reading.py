"""harness.reading: the reading process hands back what threads of the caller would, in order, and leaves
nothing behind however the run ends: no process, no file."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import HarnessError, reading
from harness.reading import Reader, Writer, read_batch, read_files, write_files
from helpers import SMALL_MODEL
from helpers import python_env


@pytest.fixture
def mixed(tmp_path, sample_bytes):
    """Good files, a truncated one, a text file, a missing one and an empty one, in that order."""
    paths = []
    for index, data in enumerate(sample_bytes):
        paths.append(tmp_path / f"good_{index}.jpg")
        paths[-1].write_bytes(data)
    for name, data in (("truncated.jpg", sample_bytes[0][:3000]), ("text.jpg", b"hello"), ("empty.jpg", b"")):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    paths.insert(6, tmp_path / "missing.jpg")
    return paths


def test_the_reading_process_answers_as_threads_do_in_input_order(mixed, monkeypatch):
    by_threads = read_batch(mixed, True, 2)
    monkeypatch.delenv("HARNESS_READERS", raising=False)
    by_process = read_files(mixed, True)
    assert [type(file) for file in by_process] == [type(file) for file in by_threads]
    assert by_process == by_threads  # JpegFile compares path, bytes and size; a reason compares as text
    assert sum(not isinstance(file, str) for file in by_process) == 5
    assert "truncated" in by_process[5] and "not a JPEG" in by_process[7] and "empty" in by_process[8]
    assert read_files(mixed, False)[5].height > 0  # --lenient lets the truncated file through


def test_a_batch_larger_than_the_memory_grows_it(tmp_path, sample_bytes):
    reader = Reader()
    try:
        paths = []
        for index in range(120):  # about 20 MB: more than the 16 MB the memory starts with
            paths.append(tmp_path / f"{index}.jpg")
            paths[-1].write_bytes(sample_bytes[index % 5])
        files = reader.read(paths, True, 2)
        assert [file.data for file in files] == [sample_bytes[index % 5] for index in range(120)]
        assert len(reader.memory) >= sum(len(file.data) for file in files)
    finally:
        reader.close()
    assert reader.process.returncode == 0


def test_a_reading_process_that_dies_mid_batch_is_one_line(tmp_path, sample_bytes):
    reader = Reader()
    (tmp_path / "a.jpg").write_bytes(sample_bytes[0])
    try:
        reader.process.kill()
        reader.process.wait()
        with pytest.raises(HarnessError, match="the process reading the input files died"):
            reader.read([tmp_path / "a.jpg"], True, 2)
    finally:
        reader.close()


def test_the_writing_process_writes_as_this_process_does_in_order_and_stops_at_a_failure(tmp_path, monkeypatch,
                                                                                         sample_bytes):
    datas = [bytes([index]) * (3 << 20) for index in range(8)] + sample_bytes  # 24 MB: the memory grows
    for mode in ("process", "threads"):
        monkeypatch.setenv("HARNESS_WRITERS", mode)
        out = tmp_path / mode
        out.mkdir()
        targets = [out / f"out_{index}.jpg" for index in range(len(datas))]
        assert write_files(targets, datas) == (len(datas), None)
        assert [target.read_bytes() for target in targets] == datas
        # the third target's folder is missing: two are written, the reason names the third, the rest wait
        targets = [out / "a.jpg", out / "b.jpg", out / "missing" / "c.jpg", out / "d.jpg"]
        written, error = write_files(targets, sample_bytes[:4])
        assert written == 2 and error.startswith(f"cannot write {targets[2]} (No such file or directory)"), error
        assert not targets[3].exists() and not list(out.rglob(".harness-*"))


def test_a_writing_process_that_dies_is_one_line_and_one_that_closes_exits(tmp_path, sample_bytes):
    writer = Writer()
    try:
        assert writer.write([tmp_path / "a.jpg"], [sample_bytes[0]]) == (1, None)
        writer.process.kill()
        writer.process.wait()
        with pytest.raises(HarnessError, match="the process writing the overlays died"):
            writer.write([tmp_path / "b.jpg"], [sample_bytes[1]])
    finally:
        writer.close()
    closed = Writer()
    closed.close()
    assert closed.process.returncode == 0


def test_a_wait_cut_short_ends_the_writing_process_and_the_next_batch_gets_a_new_one(tmp_path, monkeypatch):
    """Ctrl-C while the answer is awaited: the process was still writing into the memory the next batch uses,
    and the next request read this one's answer ((4000, None) for a batch of one)."""
    monkeypatch.delenv("HARNESS_WRITERS", raising=False)
    assert write_files([tmp_path / "first.jpg"], [b"first"]) == (1, None)
    writer = reading._helpers[Writer]
    os.kill(writer.process.pid, signal.SIGSTOP)  # it answers nothing until the alarm has cut the wait short

    def cut_short(number, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, cut_short)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            write_files([tmp_path / f"many_{index}.jpg" for index in range(50)], [b"x" * 1000] * 50)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.kill(writer.process.pid, signal.SIGCONT)
    assert writer.process.wait(timeout=60) == 128 + signal.SIGTERM and not writer.usable()
    assert write_files([tmp_path / "next.jpg"], [b"next"]) == (1, None) and reading._helpers[Writer] is not writer
    assert (tmp_path / "next.jpg").read_bytes() == b"next" and not list(tmp_path.glob(".harness-*"))


def test_the_writing_process_writes_empty_data_and_paths_as_the_kernel_resolves_them(tmp_path, monkeypatch):
    """`link/../out` is `real/out` to the kernel (link -> real/sub), not `./out` as os.path.abspath has it."""
    monkeypatch.delenv("HARNESS_WRITERS", raising=False)
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real" / "sub")
    monkeypatch.chdir(tmp_path)
    assert write_files([Path("link/../out/a.jpg"), Path("empty.jpg")], [b"a", b""]) == (2, None)
    assert (tmp_path / "real" / "out" / "a.jpg").read_bytes() == b"a" and (tmp_path / "empty.jpg").stat().st_size == 0
    assert write_files([Path("empty_only.jpg")], [b""]) == (1, None) and (tmp_path / "empty_only.jpg").exists()


def test_a_sigterm_mid_batch_leaves_no_temporary_file_and_a_bad_mode_is_one_line(tmp_path, monkeypatch):
    writer = Writer()
    try:
        targets = [tmp_path / f"{index}.jpg" for index in range(100)]
        threading.Timer(0.05, writer.process.terminate).start()  # the batch takes longer than that to write
        try:
            writer.write(targets, [b"y" * (1 << 20)] * 100)
        except HarnessError as error:
            assert "the process writing the overlays died" in str(error)
        # stopped at a file, or before its handler was set (-15), or after the batch (it answered, then read EOF)
        assert writer.process.wait(timeout=60) in (0, 128 + signal.SIGTERM, -signal.SIGTERM)
    finally:
        writer.close()
    assert not list(tmp_path.glob(".harness-*")), "a temporary file outlived the writing process"
    monkeypatch.setenv("HARNESS_WRITERS", "thread")
    with pytest.raises(HarnessError, match="HARNESS_WRITERS='thread' is neither process nor threads"):
        write_files([tmp_path / "a.jpg"], [b"a"])


def test_the_writing_process_ends_with_the_process_that_started_it(tmp_path):
    """A caller ended by os._exit runs no clean-up, and here a `sleep` it started keeps the pipe to the writing
    process open, so no end of file comes: only its watch for the end of its parent ends the writing process."""
    script = ("import os, subprocess; from harness.reading import Writer; w = Writer(); "
              "fd = w.requests.fileno(); os.set_inheritable(fd, True); "
              "s = subprocess.Popen(['sleep', '120'], pass_fds=[fd], start_new_session=True, "
              "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
              "print(w.process.pid, s.pid, flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, env=python_env(), timeout=120)
    pid, holder = (int(word) for word in done.stdout.split())
    try:
        for _ in range(600):
            try:
                if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                    break  # ended; who reaps it is the container's business
            except FileNotFoundError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the writing process outlived the process that started it")
    finally:
        os.kill(holder, signal.SIGKILL)


def test_the_processes_outlive_the_thread_that_started_them(tmp_path, sample_paths):
    """Linux's parent-death signal comes when the *thread* that started a process ends: a run from a thread
    that has ended must still find its reading and writing processes at work."""
    for helper in reading._helpers.values():  # started by the thread below, not by an earlier test
        helper.close()
    reading._helpers.clear()
    starter = threading.Thread(target=lambda: (read_files([], True), write_files([], [])))
    starter.start()
    starter.join()
    helpers = (reading._helpers[Reader], reading._helpers[Writer])
    time.sleep(1)  # a signal tied to the thread would have ended them by now
    assert [helper.process.poll() for helper in helpers] == [None, None]
    files = read_files(sample_paths[:2], True)
    assert [type(file).__name__ for file in files] == ["JpegFile", "JpegFile"]
    assert write_files([tmp_path / "a.jpg"], [files[0].data]) == (1, None)
    assert (tmp_path / "a.jpg").read_bytes() == bytes(files[0].data)
    assert (reading._helpers[Reader], reading._helpers[Writer]) == helpers  # the same processes served them


def assert_nothing_left(group: int, out) -> None:
    """No process of the run's process group, and no temporary file in -o."""
    for _ in range(600):  # it exits on its closed pipe, a moment after the run: 60 s only guards against a hang
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a process of the run is still running")
    assert not list(out.glob(".harness-*")), list(out.iterdir())


@pytest.mark.parametrize("signals,status,word", [
    ([signal.SIGINT], 130, "interrupted"), ([signal.SIGTERM], 143, "terminated"),
    ([signal.SIGINT, signal.SIGINT], 130, "interrupted"), ([signal.SIGTERM, signal.SIGTERM], 143, "terminated"),
], ids=["ctrl-c", "sigterm", "ctrl-c-twice", "sigterm-twice"])
def test_no_process_or_file_outlives_an_interrupted_run(tmp_path, sample_bytes, signals, status, word):
    """Ctrl-C reaches every process of the terminal's group (the reading process too); SIGTERM only the run.
    A second signal comes 0.1 s after the first, while the run is shutting down."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for index in range(200):
        (folder / f"img_{index:03}.jpg").write_bytes(sample_bytes[index % 5])
    process = subprocess.Popen([sys.executable, "-m", "harness", "-i", str(folder), "-o", str(out), "-b", "2",
                                *SMALL_MODEL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=python_env(PYTHONUNBUFFERED="1"), start_new_session=True)
    for line in process.stdout:  # the reading process is running once overlays are written
        if "Saving the overlay" in line:
            break
    for number, sent in enumerate(signals):
        time.sleep(0.1 * number)
        if sent == signal.SIGINT:
            os.killpg(process.pid, sent)
        else:
            process.send_signal(sent)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert word in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert_nothing_left(process.pid, out)


def test_no_process_outlives_a_failed_write(tmp_path):
    """A file-size limit makes every write fail the way a full disk does; the memory the reading process
    shares falls back to the pipe under it."""
    out = tmp_path / "out"

    def limited():
        os.setsid()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    process = subprocess.Popen([sys.executable, "-m", "harness", "-o", str(out), "-b", "2", *SMALL_MODEL],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=python_env(CUDA_VISIBLE_DEVICES=""), preexec_fn=limited)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1 and "cannot write" in stderr and "Traceback" not in stderr, stderr
    assert_nothing_left(process.pid, out)


@pytest.mark.parametrize("variable,default,maximum", [("HARNESS_READ_WORKERS", None, 32),
                                                      ("HARNESS_CODEC_THREADS", 0, 64)])
def test_a_thread_count_setting_is_taken_and_a_bad_value_is_one_line(monkeypatch, variable, default, maximum):
    from harness.decode import codec_threads
    from harness.reading import read_workers

    count = {"HARNESS_READ_WORKERS": read_workers, "HARNESS_CODEC_THREADS": codec_threads}[variable]
    monkeypatch.delenv(variable, raising=False)
    assert count() == (default if default is not None else read_workers())  # 0: nvImageCodec's, every core
    monkeypatch.setenv(variable, "3")
    assert count() == 3
    for bad in ("0", "many", "²", str(maximum + 1)):
        monkeypatch.setenv(variable, bad)
        with pytest.raises(HarnessError, match=f"{variable}=.* is not a number of threads: give 1 to {maximum}"):
            count()


def test_the_read_lane_check_measures_the_hosts_ceiling_in_processes_it_ends(tmp_path, sample_paths):
    """tools/read_lane_check.py --ceiling: the same files read and checked by as many processes of their own,
    one run per number of workers beside the reading process's, and no process left when it ends."""
    import json

    from helpers import ROOT

    for path in sample_paths:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "read_lane.json"
    tool = subprocess.Popen([sys.executable, str(ROOT / "tools" / "read_lane_check.py"), "0", "--images",
                             str(tmp_path), "--workers", "1,2", "--modes", "process", "--ceiling", "--json",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=python_env(), start_new_session=True)
    stdout, stderr = tool.communicate(timeout=300)
    assert tool.returncode == 0, stderr
    runs = json.loads(out.read_text())["runs"]
    assert [(run["mode"], run["workers"]) for run in runs] == [("process", 1), ("processes", 1), ("process", 2),
                                                               ("processes", 2)]
    assert all(run["alone_s"] > 0 for run in runs) and "checked by 2 processes" in stdout
    assert_nothing_left(tool.pid, tmp_path)
