"""The shared value rules: what counts as a finite metric value, and how durations read."""

import math

import numpy as np
import pandas as pd
import pytest

from adaptune.reports.leaderboard import rank_rows
from adaptune.reports.values import MISSING, duration, finite


@pytest.mark.parametrize("value", [0, 2, 0.5, -1e300, np.float32(0.25), np.float64(1.0), np.int64(3)])
def test_finite_accepts_real_numbers_python_or_numpy(value):
    assert finite(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), None, "0.5", math.nan, math.inf, -math.inf, pd.NA])
def test_finite_refuses_bools_text_and_non_finite_numbers(value):
    assert not finite(value)


def test_a_bool_score_is_not_ranked():
    rows = [{"status": "completed", "score": True}, {"status": "completed", "score": 0.2}]
    rank_rows(rows)
    assert [r["rank"] for r in rows] == [None, 1]


@pytest.mark.parametrize(
    ("seconds", "long", "compact"),
    [(8.25, "8.25 s", "8s"), (42, "42.0 s", "42s"), (200, "3 min 20 s", "3m20s"), (9000, "2.5 h", "2h30m")],
)
def test_duration_long_for_the_report_compact_for_the_progress_line(seconds, long, compact):
    assert duration(seconds) == long and duration(seconds, compact=True) == compact
    assert duration(math.nan) == duration(None, compact=True) == MISSING
