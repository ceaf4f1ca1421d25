"""The one-line summaries the CLI prints."""

from adaptune.search.cli import describe_recommendation


def test_the_recommended_line_says_what_to_ship_and_how_it_was_smoothed():
    ensemble = {"kind": "ensemble", "trial_id": "ensemble-top2", "members": ["a1", "b2"], "methods": ["mcc", "tca"],
                "proxy": "im", "score": 0.61234, "target_acc": 0.8}
    plain = describe_recommendation(ensemble)
    assert plain == ("the ensemble ensemble-top2 (average the predictions of trials a1, b2: mcc, tca), im 0.6123, "
                     "oracle 80.0%")
    smoothed = describe_recommendation({**ensemble, "smoothing": {"neighbours": 10, "weight": 0.5}})
    assert "mcc, tca, smoothed over 10 target neighbours (weight 0.5))" in smoothed
    single = {"kind": "trial", "trial_id": "a1", "method": "mcc", "proxy": "im", "score": 0.5, "target_acc": None}
    assert describe_recommendation(single) == "trial a1 (mcc), im 0.5000"
