import pandas as pd

from benchmarks._common import held_out_score
from benchmarks.smoothing import PLAIN, SETTINGS, choose


def _per_group(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Regret per group (rows) and setting (columns): every setting not named equals the plain average plus 5."""
    frame = pd.DataFrame({name: {g: r[PLAIN] + 5 for g, r in rows.items()} for name in SETTINGS})
    frame[PLAIN] = [r[PLAIN] for r in rows.values()]
    for group, row in rows.items():
        for name, value in row.items():
            frame.loc[group, name] = value
    return frame


def test_a_setting_that_wins_on_average_by_losing_a_group_is_screened_out():
    per_group = _per_group({"a": {PLAIN: 5.0, "k=3, w=0.5": 0.0, "k=10, w=0.5": 2.0},
                            "b": {PLAIN: 1.0, "k=3, w=0.5": 1.5, "k=10, w=0.5": 1.1}})
    assert choose(per_group, harm=None) == "k=3, w=0.5"  # mean 0.75 against 1.55
    assert choose(per_group, harm=0.25) == "k=10, w=0.5"  # k=3 raises group b by 0.5
    assert choose(per_group, harm=0.25) != PLAIN


def test_the_plain_average_stays_when_no_setting_does_better():
    per_group = _per_group({"a": {PLAIN: 1.0}, "b": {PLAIN: 0.5}})
    assert choose(per_group) == PLAIN


def test_each_group_is_scored_with_the_setting_chosen_for_it():
    per_group = _per_group({"a": {PLAIN: 4.0, "k=5, w=0.5": 1.0}, "b": {PLAIN: 2.0, "k=5, w=0.5": 3.0}})
    assert held_out_score(per_group, {"a": "k=5, w=0.5", "b": PLAIN}) == 1.5
    assert held_out_score(per_group, {"a": PLAIN, "b": "k=5, w=0.5"}) == 3.5


def test_searches_kept_out_are_counted_against_the_plain_average_and_the_baseline():
    from benchmarks.smoothing import check_section

    chosen = "k=10, w=0.5"
    checks = pd.DataFrame([
        {"label": "a:1", "group": "a", "best": 80.0, "baseline": 70.0, f"acc {PLAIN}": 75.0, f"acc {chosen}": 78.0,
         PLAIN: 5.0, chosen: 2.0},
        {"label": "b:1", "group": "b", "best": 90.0, "baseline": 89.0, f"acc {PLAIN}": 89.5, f"acc {chosen}": 87.0,
         PLAIN: 0.5, chosen: 3.0},
    ])
    text = check_section(checks, chosen)
    assert "plain average 2.75, smoothed 2.50 points" in text
    assert "Smoothing raised 1 of 2 and lowered 1; at or above max(LR, 1-NN): 2 plain, 1 smoothed." in text
