"""benchmarks/shallow_grid.py: which grid trial each column keeps, and the trimmed raw rows."""

import json

import pytest

from benchmarks.shallow_grid import KEPT_FIELDS, Search, _head_c_range, per_task, trim


def trial(method: str, index: int, target: float, agreement: float) -> dict:
    return {"task": "office-surf:A->C", "method": method, "config_index": index, "hparams": {"head_c": 1.0},
            "target_acc": target, "source_acc": 0.9, "proxy_neighbour_agreement": agreement, "trial_wall_s": 1.0}


def test_columns_keep_the_oracle_best_the_best_default_and_the_proxy_pick():
    trials = [trial("tca", 0, 0.40, 0.1), trial("tca", 3, 0.50, 0.2), trial("jda", 0, 0.45, 0.3),
              trial("coral", 2, 0.30, 0.9)]
    rows = per_task(trials, {"office-surf:A->C": Search(47.0, 52.0, 42.0, "page.md"),
                             "office-surf:C->A": Search(1.0, 1.0, 1.0, "page.md")})
    assert len(rows) == 1  # a search without grid trials has no row
    row = rows[0]
    assert row["grid_oracle"] == 50.0 and row["grid_oracle_trial"].startswith("tca (head_c 1")
    assert row["defaults_oracle"] == 45.0 and row["defaults_oracle_method"] == "jda"
    assert row["grid_ranked"] == 30.0 and row["grid_ranked_method"] == "coral"


def test_trim_keeps_the_shallow_methods_and_the_fields_the_page_reads(tmp_path):
    path = tmp_path / "grid.jsonl"
    rows = [{**trial("jda", 0, 0.5, 0.2), "proxy_im": 1.0, "epoch": 1}, {**trial("dann", 0, 0.6, 0.3)},
            {"kind": "ensemble", "task": "office-surf:A->C", "ensemble_target_acc": 0.5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trimmed = trim([str(path)])
    assert [t["method"] for t in trimmed] == ["jda"] and set(trimmed[0]) == set(KEPT_FIELDS)


@pytest.mark.parametrize(("c", "name"), [(0.01, "< 0.1"), (0.1, "0.1-1"), (1.0, "1 (default)"), (1.5, "1-10"),
                                         (10.0, ">= 10"), (100.0, ">= 10")])
def test_head_c_ranges_keep_the_default_apart(c, name):
    assert _head_c_range(c) == name
