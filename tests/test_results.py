"""The seams every part and every result goes through: the request resolved into a plan, the parser read
into a request, and the one results record that the suites write and the report reads."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.benchkit import Case
from harness.cli import build_parser, config_from_args
from harness.config import Config, Plan
from harness.resolve import resolve
from harness.report.load import load
from harness.results import CASE_FIELDS, FIELDS, MEASURED_FIELDS, add


def test_the_parser_defaults_are_the_config_defaults():
    """Every Config field has a parser entry of the same name; an option missing from either fails here."""
    assert config_from_args(build_parser().parse_args([])) == Config()
    args = build_parser().parse_args(["--no_cudnn_benchmark", "--blur_mode", "downscaled", "-b", "3"])
    assert config_from_args(args) == Config(cudnn_benchmark=False, blur_mode="downscaled", batch_size=3)


def test_a_plan_holds_only_concrete_choices():
    plan = resolve(Config(device="cpu"))
    assert isinstance(plan, Plan) and plan.request == Config(device="cpu")
    assert plan.device.type == "cpu" and plan.config.device == "cpu"
    assert plan.config.ops in ("torch", "opencv") and plan.config.decoder != "auto"
    assert plan.config.model == "deeplabv3_resnet101" and plan.config.channels_last is False
    chosen = dataclasses.asdict(plan.config)
    assert None not in chosen.values() and plan.config.cache_dir
    assert [name for name, value in chosen.items() if value == "auto"] == ["weights", "ort_provider"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.config = Config()  # type: ignore[misc]


def test_a_misspelt_result_is_refused():
    class Entry:
        extra_info: dict = {}

    add(Entry, flops=1)
    with pytest.raises(KeyError, match="tflops"):
        add(Entry, tflops=2.0)
    assert Entry.extra_info == {"flops": 1}


def test_the_report_reads_every_field_the_suites_write(tmp_path):
    record = Case("resize", "torch", "cpu", "fp32", 4, (224, 224), "640x480").record(0.01, median_s=0.01,
                                                                                  flops=123, noisy=False)
    entry = {"name": "test_resize", "group": None, "stats": {"median": 0.01, "data": [0.01], "rounds": 1},
             "extra_info": record.info()}
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": [entry], "machine_info": {}}))
    row = load([path]).iloc[0]
    assert set(record.info()) == set(FIELDS) and set(CASE_FIELDS) | set(MEASURED_FIELDS) == set(FIELDS)
    assert row["images_per_s"] == pytest.approx(400) and row["flops"] == 123 and row["source_width"] == 640
    assert all(name in row.index for name in FIELDS)


def test_the_record_says_the_kind_of_case_apart_from_the_stage(tmp_path):
    """Stage cases, chains, the copy, whole pipelines and probes each say their kind; a file written before the
    field gets the same kind in the report from its stage and variant."""
    from harness.report.tables import kind_of as report_kind_of
    from harness.results import Record

    kinds = {("resize", ""): "stage", ("postprocess", "fused"): "chain", ("preprocess", "staged"): "chain",
             ("d2d_copy", ""): "copy",
             ("end_to_end", "uninstrumented"): "end_to_end", ("throughput", ""): "throughput",
             ("throughput", "files-overlapped"): "throughput_from_files",
             ("distributed_throughput", ""): "distributed_throughput", ("compile_speed", ""): "probe"}
    for (stage, variant), kind in kinds.items():
        assert Record(stage=stage, engine="torch", variant=variant).kind == kind, stage
        assert report_kind_of({"stage": stage, "variant": variant, "kind": float("nan")}) == kind  # an older file
    assert Record(stage="blur", engine="cvcuda", kind="probe").kind == "probe"  # a tool's route through a stage
    record = Case("resize", "torch", "cpu", "fp32", 4, (224, 224), "640x480").record(0.01, median_s=0.01)
    entry = {"name": "t", "group": None, "stats": {"median": 0.01, "data": [0.01], "rounds": 1},
             "extra_info": record.info()}
    (tmp_path / "run.json").write_text(json.dumps({"benchmarks": [entry], "machine_info": {}}))
    assert load([tmp_path / "run.json"]).iloc[0]["kind"] == "stage"


def test_a_probe_writes_results_records_that_the_report_reads(tmp_path):
    """tools/' probes write their measurements through harness.run_file.probe_entry: kind "probe", the samples
    as the entry's raw data, TFLOPS from the work given, the agreement fields; the report renders the file,
    the inference rows against the peak included."""
    from harness.report.render import write_report
    from harness.run_file import probe_entry, write_probe_file

    case = Case("inference", "pytorch:fcn_resnet101", "cuda", "tf32", 32, (520, 520), "", "probe:eager-graph")
    times = [100.0, 101.0, 99.0, 100.5, 99.5]
    entry = probe_entry("inference[eager-graph]", case, times, flops=int(1e12), max_abs_diff=0.0,
                        class_agreement=1.0, setup_seconds=2.0)
    path = tmp_path / "probe.json"
    write_probe_file(path, [entry], "tools/test")
    data = json.loads(path.read_text())
    assert data["version"] == "tools/test" and data["machine_info"]["harness"]["python"]
    assert data["benchmarks"][0]["stats"]["data"] == [t / 1e3 for t in times]
    row = load([path]).iloc[0]
    assert row["kind"] == "probe" and row["variant"] == "probe:eager-graph" and row["timer"] == "cuda"
    assert row["images_per_s"] == pytest.approx(320, rel=1e-3) and row["tflops_per_s"] == pytest.approx(10, rel=1e-3)
    assert row["class_agreement"] == 1.0 and row["sample_count"] == 5
    written = write_report(load([path]), tmp_path / "report")
    assert "eager-graph" in written["markdown"].read_text()
