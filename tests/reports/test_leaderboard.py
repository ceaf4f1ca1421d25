import math

import pytest

from adaptune.reports.leaderboard import (
    LEADERBOARD_COLUMNS,
    at_most_per_method,
    format_table,
    leaderboard_frame,
    rank_rows,
    selection_order,
)
from adaptune.reports.run_dir import RunDir, RunError


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


def test_at_most_per_method_keeps_the_first_trials_of_each_method_in_order():
    rows = [{"trial_id": t, "method": m} for t, m in [("1", "mcc"), ("2", "mcc"), ("3", "mcc"), ("4", "dann"),
                                                       ("5", "mcc"), ("6", "jda")]]
    assert [r["trial_id"] for r in at_most_per_method(rows, 2)] == ["1", "2", "4", "6"]
    assert [r["trial_id"] for r in at_most_per_method(rows, 1)] == ["1", "4", "6"]
    assert [r["trial_id"] for r in at_most_per_method(rows, None)] == ["1", "2", "3", "4", "5", "6"]


def test_a_source_gap_holds_back_trials_far_below_the_best_source_accuracy():
    rows = [{"trial_id": "sa", "status": "completed", "score": 0.9, "source_acc": 0.70},
            {"trial_id": "dann", "status": "completed", "score": 0.5, "source_acc": 0.86},
            {"trial_id": "tca", "status": "stopped", "score": 0.7, "source_acc": 0.84},
            {"trial_id": "lost", "status": "completed", "score": 0.8, "source_acc": float("nan")},
            {"trial_id": "failed", "status": "error", "score": None, "source_acc": 0.99}]
    admitted, held_back = selection_order(rows, 0.05)
    assert [r["trial_id"] for r in admitted] == ["tca", "dann"]  # within 5 points of 0.86, best score first
    assert [r["trial_id"] for r in held_back] == ["sa", "lost"]
    assert [r["trial_id"] for r in selection_order(rows)[0]] == ["sa", "lost", "tca", "dann"]  # no gap: by score
    rank_rows(rows, 0.05)
    assert {r["trial_id"]: r["rank"] for r in rows} == {"tca": 1, "dann": 2, "sa": 3, "lost": 4, "failed": None}


def test_the_source_gap_compares_trials_on_the_same_preprocessing():
    rows = [{"trial_id": "z-best", "preprocess": "zscore", "score": 0.5, "source_acc": 0.80},
            {"trial_id": "z-low", "preprocess": "zscore", "score": 0.9, "source_acc": 0.70},
            {"trial_id": "d-best", "preprocess": "domain-scale", "score": 0.6, "source_acc": 0.95},
            {"trial_id": "d-near", "preprocess": "domain-scale", "score": 0.7, "source_acc": 0.92}]
    admitted, held_back = selection_order(rows, 0.05)
    # zscore trials are held to 0.80 - 0.05, not to domain-scale's 0.95 - 0.05.
    assert [r["trial_id"] for r in admitted] == ["d-near", "d-best", "z-best"]
    assert [r["trial_id"] for r in held_back] == ["z-low"]
    one_kind = [{**r, "preprocess": "zscore"} for r in rows]
    assert [r["trial_id"] for r in selection_order(one_kind, 0.05)[0]] == ["d-near", "d-best"]


def test_frame_has_fixed_columns_types_and_sort(tmp_path):
    rows = _rows()
    rank_rows(rows)
    frame = leaderboard_frame(rows, ["lr", "freeze_depth", "adv_weight", "disc_hidden"], ["im"])
    assert list(frame.columns[: len(LEADERBOARD_COLUMNS)]) == list(LEADERBOARD_COLUMNS)
    assert list(frame["trial_id"]) == ["b", "a", "c", "d"]
    assert str(frame["rank"].dtype) == "Int64" and math.isnan(frame.loc[2, "score"])
    run_dir = RunDir(str(tmp_path))
    run_dir.write_table(RunDir.LEADERBOARD, frame)
    back = run_dir.read_table(RunDir.LEADERBOARD)
    assert list(back["trial_id"]) == ["b", "a", "c", "d"]
    assert list(back.columns) == list(frame.columns) and str(back["rank"].dtype) == "Int64"


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

    from adaptune.reports.leaderboard import compact_table
    from adaptune.search.cli import main

    run = Path(__file__).resolve().parents[1] / "fixtures" / "run-small"
    board = RunDir(str(run)).read_table(RunDir.LEADERBOARD)
    lines = compact_table(board, top=3).splitlines()
    assert lines[0].split() == ["rank", "method", "hyperparameters", "im", "epoch", "oracle"]
    assert len(lines) == 4 and max(map(len, lines)) < 120
    best = board.sort_values("rank").iloc[0]
    assert lines[1].split()[:2] == ["1", best["method"]] and f"lr={best['lr']:.3g}" in lines[1]
    assert main(["leaderboard", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "rank"
    assert main(["leaderboard", str(run), "--wide", "--top", "1"]) == 0
    assert {"trial_id", "proxy_im", "source_acc"} <= set(capsys.readouterr().out.splitlines()[0].split())
