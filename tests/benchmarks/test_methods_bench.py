import torch

from benchmarks.methods_bench import ensemble_rows, ensemble_scheme, run_one


def _trials():
    """Three trials on four target samples of two classes, one proxy: scores 3 > 2 > 1; the third trial's source
    accuracy lies 20 points below the others'."""
    probs = [torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]),
             torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.3, 0.7], [0.7, 0.3]]),
             torch.tensor([[0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1]])]
    return [(method, {"proxy_im": (score, p, acc)})
            for method, score, p, acc in zip(["dann", "coral", "mcc"], [3.0, 2.0, 1.0], probs, [0.9, 0.9, 0.7])]


def test_the_smoothed_schemes_are_the_gated_ensembles_smoothed():
    oracle = torch.tensor([0, 1, 1, 1])
    swap = lambda probs: probs.flip(1)  # noqa: E731  an easy smoothing to check by hand
    plain = {r["scheme"]: r for r in ensemble_rows("t", _trials(), oracle, k=2)}
    smoothed = {r["scheme"]: r for r in ensemble_rows("t", _trials(), oracle, k=2, smooth=swap)}
    assert ensemble_scheme(0.05, smoothed=True) == "top_k_gap5_smoothed"
    assert not any(name.endswith("_smoothed") for name in plain)
    for gap in (None, 0.05):
        name = ensemble_scheme(gap)
        # Swapping the classes turns the accuracy of every ensemble of binary predictions into its complement.
        assert smoothed[ensemble_scheme(gap, smoothed=True)]["ensemble_target_acc"] == \
            1 - plain[name]["ensemble_target_acc"]
        assert smoothed[name] == plain[name]  # the plain rows stay as they were
    # The two best trials (both within 5 points of the best source accuracy) predict 0, 1, 1, 0 together.
    assert plain["top_k"]["ensemble_target_acc"] == plain["top_k_gap5"]["ensemble_target_acc"] == 0.75


def test_a_run_trains_deep_trials_with_the_weight_decay_it_is_given():
    job = {"task": "office-surf:W->D", "method": "source_only", "config_index": 0, "hparams": {}, "device": "cpu",
           "amp": False, "fewshot_k": 0, "preprocess": "zscore", "warm_start": "none", "store": None, "threads": 1,
           "epochs": 1, "batch_size": 64}
    final = {wd: run_one({**job, "weight_decay": wd})[0][-1] for wd in (0.0, 0.5)}
    # A strong L2 penalty keeps the logits small, so the target predictions are far less confident.
    assert final[0.5]["proxy_entropy"] < final[0.0]["proxy_entropy"] - 0.1
