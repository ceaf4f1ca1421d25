"""benchmarks.ensemble_settings: the vote counts classes, each group is scored with the setting the others chose, and
the page calls for a change only when the held-out groups gain."""

from __future__ import annotations

import torch

from benchmarks._common import held_out_choices
from benchmarks.ensemble_settings import SETTINGS, SHIPPED, Setting, losses, page


def _rows(loss_by_group: dict[str, dict[str, float]]) -> list[dict]:
    """One search per group whose settings lose ``loss_by_group[group][setting]`` points (shipped when unnamed)."""
    return [{"task": f"{group}:t", "seed": 0, "group": group, "best": 90.0, "baseline": 80.0,
             "accuracy": {name: 90.0 - losses.get(name, losses.get(SHIPPED, 1.0)) for name in SETTINGS}}
            for group, losses in loss_by_group.items()]


def test_a_majority_vote_counts_each_member_once_however_confident():
    confident = torch.tensor([[0.99, 0.01]])
    unsure = torch.tensor([[0.4, 0.6]])
    members = [confident, unsure, unsure]
    assert Setting().combine(members).argmax(1).item() == 0  # the average follows the confident member
    assert Setting(vote=True).combine(members).argmax(1).item() == 1  # two votes against one


def test_each_group_is_scored_with_the_setting_the_others_chose():
    rows = _rows({"a": {"top 3": 0.0}, "b": {"top 3": 0.5}, "c": {"top 3": 3.0}})  # 1.0 for every other setting
    # a held out: top 3 loses 1.75 on b and c; b held out: 1.5 on a and c; c held out: 0.25 on a and b
    assert held_out_choices(losses(rows), SHIPPED) == {"a": SHIPPED, "b": SHIPPED, "c": "top 3"}


def test_the_page_keeps_the_shipped_setting_unless_the_held_out_groups_gain():
    keep = page(_rows({"a": {SHIPPED: 1.0, "top 3": 0.5}, "b": {SHIPPED: 1.0, "top 3": 2.0},
                       "c": {SHIPPED: 1.0, "majority vote": 2.0}}))
    assert "keeps its settings" in keep and "A majority vote of the members loses more" in keep
    change = page(_rows({group: {SHIPPED: 2.0, "top 10": 0.5} for group in "abc"}))
    assert "should follow them" in change
    later = page(_rows({"a": {}, "b": {}}), "benchmarks/results/raw/ensemble-settings-later.jsonl", "later.md")
    assert "--rows benchmarks/results/raw/ensemble-settings-later.jsonl --page later.md" in later
    assert "run after these settings" in later  # each committed set of searches is described by its rows file
    other = page(_rows({"a": {}, "b": {}}), "benchmarks/results/raw/other.jsonl", "other.md")
    assert "searches given with --runs" in other
    assert "checkpoint_proxy.md re-ranks" in keep and "--rows" not in keep


def test_fresh_rows_replace_their_search_and_one_search_given_twice_is_kept_once(tmp_path):
    from benchmarks._common import merge_searches, read_jsonl

    path = str(tmp_path / "rows.jsonl")
    merge_searches(path, [{"task": "a:t", "seed": 0, "value": 1}, {"task": "b:t", "seed": 0, "value": 1}])
    merge_searches(path, [{"task": "a:t", "seed": 0, "value": 2}, {"task": "a:t", "seed": 0, "value": 3},
                          {"task": "a:t", "seed": 1, "value": 4}])
    assert [(r["task"], r["seed"], r["value"]) for r in read_jsonl(path)] == [("a:t", 0, 3), ("b:t", 0, 1),
                                                                              ("a:t", 1, 4)]


def test_rows_from_before_a_setting_existed_leave_it_off_the_page():
    rows = _rows({"a": {}, "b": {}})
    for row in rows:
        del row["accuracy"]["gap of 1 standard error"]
    text = page(rows)
    assert "gap of 1 standard error" not in text and "gap of 2 standard errors" in text


def test_several_seeds_show_the_source_gap_at_each_seed():
    one_seed = _rows({"a": {"gap of 1 standard error": 0.0}, "b": {}})
    assert "at each seed" not in page(one_seed)
    other_seed = [{**row, "seed": 1} for row in _rows({"a": {"gap of 1 standard error": 2.0}, "b": {}})]
    text = page(one_seed + other_seed)
    section = text.split("## The source gap at each seed")[1].split("##")[0]
    assert "| gap of 1 standard error | 0 | 0.0 | 1.0 | 0.5 |" in section
    assert "| gap of 1 standard error | 1 | 2.0 | 1.0 | 1.5 |" in section
    assert "| 5 neighbours |" not in section  # only the source-gap settings


def test_a_group_searched_at_one_seed_only_stays_out_of_the_means_per_seed():
    both = _rows({"a": {"gap of 1 standard error": 0.0}, "b": {}})
    later = [{**row, "seed": 1} for row in _rows({"a": {"gap of 1 standard error": 2.0}, "b": {}, "c": {}})]
    section = page(both + later).split("## The source gap at each seed")[1].split("##")[0]
    assert "| setting | seed | a | b | c | mean over groups at every seed |" in section
    assert "| gap of 1 standard error | 0 | 0.0 | 1.0 | - | 0.5 |" in section
    assert "| gap of 1 standard error | 1 | 2.0 | 1.0 | 1.0 | 1.5 |" in section
