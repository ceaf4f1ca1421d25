"""benchmarks.warm_start on the committed JDA-digits pools: the deep methods it reads, at which epochs."""

from __future__ import annotations

from adaptune.algorithms.methods import METHODS, get_method
from benchmarks import warm_start


def test_every_deep_method_is_read_at_the_first_rung_and_at_its_last_epoch():
    table = warm_start.deep_methods("raw/proxies-jda-digits-warm.jsonl.gz", "source")
    deep = {name for name in METHODS if not get_method(name).feature_extraction}
    assert set(table["method"]) == deep and len(table) == len(deep)
    assert (table["group"] == "jda-digits").all() and (table["label"] == "source").all()
    values = table[["rung_target", "final_target", "rung_source", "final_source"]]
    assert ((values > 0) & (values <= 100)).all().all()
    # The first rung is not the last epoch: twelve epochs ran.
    assert (table["rung_source"] != table["final_source"]).any()


def test_the_warm_start_is_adopted_only_if_no_group_loses():
    assert warm_start.verdict({"surf": {"none": 53.4, "source": 53.4}, "amazon": {"none": 77.0, "source": 78.0}}
                              ).startswith("- The recommended selection is at least as high")
    refused = warm_start.verdict({"surf": {"none": 53.4, "source": 51.5}, "amazon": {"none": 77.0, "source": 78.0}})
    assert refused.startswith("- Not adopted") and "1 of 2 groups (surf)" in refused
