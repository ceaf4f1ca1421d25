"""The run directory: file names, atomic writes, and every way reading a run back can fail as one RunError line."""

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adaptune.reports.run_dir import SCHEMA_VERSION, RunDir, RunError, schema_version


def test_a_table_round_trips_with_its_schema_version_and_no_temp_file(tmp_path):
    run_dir = RunDir(str(tmp_path))
    run_dir.write_table(RunDir.HISTORY, pd.DataFrame({"trial_id": ["a", "b"], "epoch": [1, 2]}))
    assert run_dir.read_table(RunDir.HISTORY, required=("trial_id", "epoch"))["epoch"].tolist() == [1, 2]
    assert run_dir.schema_version(RunDir.HISTORY) == schema_version(run_dir.file(RunDir.HISTORY)) == SCHEMA_VERSION
    assert [p.name for p in tmp_path.iterdir()] == [RunDir.HISTORY]


def test_files_are_created_with_the_umask_mode_not_private(tmp_path):
    """Others read a run on shared storage (and its report): the mode is what the umask gives any new file."""
    previous = os.umask(0o022)
    try:
        run_dir = RunDir(str(tmp_path))
        run_dir.write_table(RunDir.LEADERBOARD, pd.DataFrame({"x": [1]}))
        run_dir.write_status({"state": "running"})
        run_dir.write_config({"task": "synthetic:blobs"})
    finally:
        os.umask(previous)
    for name in (RunDir.LEADERBOARD, RunDir.STATUS, RunDir.CONFIG):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_failed_write_keeps_the_previous_file(tmp_path):
    run_dir = RunDir(str(tmp_path))
    run_dir.write_table(RunDir.LEADERBOARD, pd.DataFrame({"x": [1]}))
    with pytest.raises(pa.ArrowException):
        run_dir.write_table(RunDir.LEADERBOARD, pd.DataFrame({"x": [object()]}))  # not serialisable
    assert run_dir.read_table(RunDir.LEADERBOARD)["x"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == [RunDir.LEADERBOARD]


def test_reading_a_table_that_is_not_a_run_file(tmp_path):
    run_dir = RunDir(str(tmp_path))
    with pytest.raises(RunError, match="not a directory; expected the --out directory"):
        RunDir(str(tmp_path / "missing")).read_table(RunDir.LEADERBOARD)
    with pytest.raises(RunError, match="no leaderboard.parquet"):
        run_dir.read_table(RunDir.LEADERBOARD)
    (tmp_path / RunDir.LEADERBOARD).write_bytes(b"not parquet")
    with pytest.raises(RunError, match="not a readable Parquet"):
        run_dir.read_table(RunDir.LEADERBOARD)
    run_dir.write_table(RunDir.LEADERBOARD, pd.DataFrame({"x": [1]}))
    with pytest.raises(RunError, match=r"lacks column\(s\) trial_id, status"):
        run_dir.read_table(RunDir.LEADERBOARD, required=("trial_id", "status"))


def test_a_table_of_another_schema_version_is_refused(tmp_path):
    table = pa.table({"x": [1]}).replace_schema_metadata({b"schema_version": b"2"})
    pq.write_table(table, tmp_path / RunDir.LEADERBOARD)
    with pytest.raises(RunError, match="has schema_version 2; expected 1 .upgrade adaptune"):
        RunDir(str(tmp_path)).read_table(RunDir.LEADERBOARD)


def test_json_files(tmp_path):
    run_dir = RunDir(str(tmp_path))
    assert run_dir.read_summary() is None  # running, or interrupted
    run_dir.write_summary({"state": "finished", "wall_s": 1.5})
    assert run_dir.read_summary() == {"state": "finished", "wall_s": 1.5}
    (tmp_path / RunDir.SUMMARY).write_text("[]")
    with pytest.raises(RunError, match="^summary: .* holds list; expected the JSON object a finished search writes"):
        run_dir.read_summary(field="summary")
    (tmp_path / RunDir.STATUS).write_bytes(b"\xff\x00")
    with pytest.raises(RunError, match="^run: .* is not readable JSON .*; expected the status object"):
        run_dir.read_json(RunDir.STATUS)
    run_dir.remove_summary()
    assert not run_dir.exists(RunDir.SUMMARY)
    run_dir.write_summary({"state": "finished"})  # the predictions written with a summary go with it
    (tmp_path / RunDir.PREDICTIONS).write_bytes(b"")
    run_dir.remove_summary()
    assert not run_dir.exists(RunDir.SUMMARY) and not run_dir.exists(RunDir.PREDICTIONS)


def test_config_round_trip_and_unreadable_yaml(tmp_path):
    run_dir = RunDir(str(tmp_path))
    assert run_dir.read_config() == ({}, None)
    run_dir.write_config({"task": "synthetic:blobs", "methods": ["dann"], "config_hash": "abc"})
    config, text = run_dir.read_config()
    assert config == {"task": "synthetic:blobs", "methods": ["dann"], "config_hash": "abc"}
    assert text.startswith("task: synthetic:blobs\n")  # the order it was written in
    (tmp_path / RunDir.CONFIG).write_text("task: [unclosed\n")
    with pytest.raises(RunError, match="^config: .* is not readable YAML"):
        run_dir.read_config()


def test_where_ray_keeps_the_experiment(tmp_path):
    run_dir = RunDir(str(tmp_path / "run-a"))
    assert run_dir.tune_storage(None) == str(tmp_path / "run-a" / "ray")
    assert run_dir.experiment_name(None, "0123456789abcdef") == "tune"
    # A storage location shared by runs: each run gets its own experiment folder, named after the run and config.
    assert run_dir.tune_storage("s3://bucket/adaptune/") == "s3://bucket/adaptune"
    assert run_dir.experiment_name("s3://bucket/adaptune", "0123456789abcdef") == "run-a-01234567"
    assert run_dir.report_file("md") == str(tmp_path / "run-a" / "report.md")
