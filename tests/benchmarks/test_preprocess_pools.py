"""benchmarks.preprocess_pools on the committed JDA-digits pools: the rows it reads from them."""

from __future__ import annotations

from benchmarks import preprocess_pools


def test_rows_hold_the_oracle_the_recommendation_and_the_same_preprocessing_baseline():
    rows = preprocess_pools.rows_of("domain-scale", "raw/proxies-jda-digits-domain-scale.jsonl.gz")
    assert [r["task"] for r in rows] == ["mnist-usps-jda:M->U", "mnist-usps-jda:U->M"]
    for row in rows:
        assert row["preprocess"] == "domain-scale" and row["group"] == "jda-digits"
        assert all(0 < row[label] <= row["oracle"] for label in preprocess_pools.SCHEMES)
    # The baseline is the one measured under the pool's own preprocessing, not the default's.
    zscore = preprocess_pools.rows_of("zscore", "raw/proxies-jda-digits.jsonl.gz")
    assert rows[0]["baseline"] != zscore[0]["baseline"]
