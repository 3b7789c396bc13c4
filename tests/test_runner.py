"""Files through a pipeline, with and without the I/O threads: the same files written, the same skips."""

from __future__ import annotations

import pytest

from harness.config import Config
from harness.pipeline import Pipeline
from harness import HarnessError
from harness.runner import run_jobs


@pytest.fixture(scope="module")
def pipeline():
    config = Config(device="cpu", model="lraspp_mobilenet_v3_large", weights="synthetic", target_img_height=64,
                    target_img_width=64)
    return Pipeline(config)


@pytest.fixture
def jobs(tmp_path, sample_paths):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for index in range(7):
        path = folder / f"img_{index}.jpg"
        path.write_bytes(sample_paths[index % len(sample_paths)].read_bytes())
        paths.append(path)
    (folder / "img_3.jpg").write_bytes(b"\xff\xd8\xff truncated")  # a bad file in the middle of a batch
    return [(path, f"out_{path.stem}.jpg") for path in paths]


def test_overlapped_io_writes_the_same_files_as_sequential_io(tmp_path, pipeline, jobs, capsys):
    outputs = {}
    for overlap in (False, True):
        out = tmp_path / f"out-{overlap}"
        out.mkdir()
        result = run_jobs(pipeline, jobs, out, 3, overlap_io=overlap)
        assert result.written == 6 and len(result.batch_seconds) == 3
        assert [path.name for path, _ in result.skipped] == ["img_3.jpg"]
        outputs[overlap] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert outputs[True] == outputs[False] and len(outputs[True]) == 6
    assert "Skipping" in capsys.readouterr().err


def test_a_failed_write_is_raised_not_lost(tmp_path, pipeline, jobs):
    with pytest.raises(HarnessError, match="cannot write .*missing"):
        run_jobs(pipeline, jobs, tmp_path / "missing" / "dir", 3, overlap_io=True)
