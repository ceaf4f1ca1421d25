import math

import pandas as pd
import pytest

from adaptune.reports.leaderboard import (
    LEADERBOARD_COLUMNS,
    RunError,
    format_table,
    leaderboard_frame,
    rank_rows,
    read_run,
    schema_version,
    write_atomic,
)


def _rows():
    return [
        {"trial_id": "a", "status": "completed", "method": "dann", "score": 0.5, "lr": 0.01, "adv_weight": 1.0},
        {"trial_id": "b", "status": "stopped", "method": "source_only", "score": 0.9, "lr": 0.02},
        {"trial_id": "c", "status": "error", "method": "dann", "score": None, "error": "boom"},
        {"trial_id": "d", "status": "completed", "method": "dann", "score": float("nan")},
    ]


def test_rank_only_finished_rows_with_finite_scores():
    rows = _rows()
    rank_rows(rows)
    assert [r["rank"] for r in rows] == [2, 1, None, None]


def test_frame_has_fixed_columns_types_and_sort(tmp_path):
    rows = _rows()
    rank_rows(rows)
    frame = leaderboard_frame(rows, ["lr", "freeze_depth", "adv_weight", "disc_hidden"], ["im"])
    assert list(frame.columns[: len(LEADERBOARD_COLUMNS)]) == list(LEADERBOARD_COLUMNS)
    assert list(frame["trial_id"]) == ["b", "a", "c", "d"]
    assert str(frame["rank"].dtype) == "Int64" and math.isnan(frame.loc[2, "score"])
    path = tmp_path / "leaderboard.parquet"
    write_atomic(frame, str(path))
    assert schema_version(str(path)) == "1"
    back = read_run(str(tmp_path))
    assert list(back["trial_id"]) == ["b", "a", "c", "d"]
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.parquet"]  # no temp file left behind


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "leaderboard.parquet"
    write_atomic(pd.DataFrame({"x": [1]}), str(path))
    import pyarrow as pa

    with pytest.raises(pa.ArrowException):
        write_atomic(pd.DataFrame({"x": [object()]}), str(path))  # not serialisable
    assert read_run(str(tmp_path))["x"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.parquet"]


def test_read_run_errors(tmp_path):
    with pytest.raises(RunError, match="not a directory"):
        read_run(str(tmp_path / "missing"))
    with pytest.raises(RunError, match="no leaderboard.parquet"):
        read_run(str(tmp_path))
    (tmp_path / "leaderboard.parquet").write_bytes(b"not parquet")
    with pytest.raises(RunError, match="not a readable Parquet"):
        read_run(str(tmp_path))


def test_format_table_variants():
    rows = _rows()
    rank_rows(rows)
    frame = leaderboard_frame(rows, ["lr"], [])
    assert format_table(frame, top=1, by=None, fmt="csv").splitlines()[1].startswith("b,")
    assert "trial_id" in format_table(frame, top=None, by="score", fmt="table")
    with pytest.raises(RunError, match="by: unknown column"):
        format_table(frame, top=None, by="nope", fmt="table")


def test_compact_table_fits_a_terminal_and_wide_keeps_every_column(capsys):
    """The end of a search prints the top trials with their knobs, score, epoch and oracle, in < 120 columns."""
    from pathlib import Path

    from adaptune.reports.leaderboard import compact_table, read_run
    from adaptune.search.cli import main

    run = Path(__file__).resolve().parents[1] / "fixtures" / "run-small"
    board = read_run(str(run))
    lines = compact_table(board, top=3).splitlines()
    assert lines[0].split() == ["rank", "method", "hyperparameters", "im", "epoch", "oracle"]
    assert len(lines) == 4 and max(map(len, lines)) < 120
    best = board.sort_values("rank").iloc[0]
    assert lines[1].split()[:2] == ["1", best["method"]] and f"lr={best['lr']:.3g}" in lines[1]
    assert main(["leaderboard", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "rank"
    assert main(["leaderboard", str(run), "--wide", "--top", "1"]) == 0
    assert {"trial_id", "proxy_im", "source_acc"} <= set(capsys.readouterr().out.splitlines()[0].split())
