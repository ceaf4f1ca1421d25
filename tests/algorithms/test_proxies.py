import math

import pytest
import torch

from adaptune.algorithms.errors import InputError
from adaptune.algorithms.proxies import (
    PROXIES,
    Evaluation,
    compute_proxies,
    get_proxy,
    information_maximization,
    negative_entropy,
    neighbour_agreement,
    oracle_accuracy,
    source_accuracy,
)


def _evaluation(target_probs, source_logits=None, source_labels=None):
    target_logits = torch.log(torch.tensor(target_probs, dtype=torch.float32))
    source_logits = torch.tensor(source_logits or [[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    source_labels = torch.tensor(source_labels or [0, 1, 1])
    return Evaluation(source_logits, source_labels, torch.zeros(len(source_labels), 2), target_logits,
                      torch.zeros(len(target_probs), 2))


def test_source_accuracy_hand_computed():
    assert source_accuracy(_evaluation([[0.5, 0.5]])) == pytest.approx(2 / 3)


def test_entropy_hand_computed():
    # rows: uniform over 2 classes (entropy ln 2) and certain (entropy 0): mean ln2 / 2, negated
    ev = _evaluation([[0.5, 0.5], [1.0, 0.0]])
    assert negative_entropy(ev) == pytest.approx(-math.log(2) / 2, abs=1e-6)


def test_information_maximization_hand_computed():
    # two confident, opposite predictions: mean prediction uniform (H = ln 2), each entropy 0 -> IM = ln 2
    assert information_maximization(_evaluation([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(math.log(2), abs=1e-6)
    # confident but always the same class: no diversity -> IM = 0
    assert information_maximization(_evaluation([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.0, abs=1e-6)
    # p = (0.9, 0.1) on both rows: H(mean) = H(p) -> 0
    assert information_maximization(_evaluation([[0.9, 0.1], [0.9, 0.1]])) == pytest.approx(0.0, abs=1e-6)


def test_higher_is_better_orientation():
    confident = _evaluation([[0.99, 0.01], [0.01, 0.99]])
    unsure = _evaluation([[0.6, 0.4], [0.4, 0.6]])
    assert negative_entropy(confident) > negative_entropy(unsure)
    assert information_maximization(confident) > information_maximization(unsure)


def test_compute_proxies_names_every_proxy():
    values = compute_proxies(_evaluation([[0.7, 0.3], [0.2, 0.8]]))
    assert set(values) == {f"proxy_{name}" for name in PROXIES}


def test_oracle_accuracy_kept_apart():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert oracle_accuracy(logits, torch.tensor([0, 0])) == pytest.approx(0.5)
    assert oracle_accuracy(logits, None) is None


def test_unknown_proxy_names_field():
    with pytest.raises(InputError) as error:
        get_proxy("accuracy")
    assert error.value.field == "proxy"


def test_a_proxy_of_feature_tables_is_refused_for_images(blobs_task):
    from dataclasses import replace

    from adaptune.algorithms.proxies import resolve_proxy

    assert resolve_proxy("neighbour_agreement", blobs_task) == "neighbour_agreement"
    with pytest.raises(InputError) as error:
        resolve_proxy("neighbour_agreement", replace(blobs_task, input_kind="images"))
    assert error.value.field == "proxy" and "feature table" in str(error.value)
    with pytest.raises(InputError) as error:  # named by another config field: that field is the one to fix
        resolve_proxy("neighbour_agreement", replace(blobs_task, input_kind="images"), field="checkpoint_proxy")
    assert error.value.field == "checkpoint_proxy"


def _ev_from_probs(target_probs, source_probs=None, source_labels=None):
    sp = torch.tensor(source_probs or [[0.9, 0.1]], dtype=torch.float32)
    return Evaluation(torch.log(sp), torch.tensor(source_labels or [0]), torch.zeros(len(sp), 2),
                      torch.log(torch.tensor(target_probs, dtype=torch.float32)), torch.zeros(len(target_probs), 2))


def test_bnm_hand_computed():
    from adaptune.algorithms.proxies import batch_nuclear_norm

    assert batch_nuclear_norm(_ev_from_probs([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(1.0, abs=1e-5)
    # two identical rows: one singular value sqrt(2), divided by N = 2
    assert batch_nuclear_norm(_ev_from_probs([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(math.sqrt(2) / 2, abs=1e-5)


def test_snd_hand_computed():
    from adaptune.algorithms.proxies import soft_neighborhood_density

    # three identical predictions: each sample's two neighbours are equally similar -> entropy ln 2
    assert soft_neighborhood_density(_ev_from_probs([[0.7, 0.3]] * 3)) == pytest.approx(math.log(2), abs=1e-5)
    # two samples: a single neighbour gets all the mass -> entropy 0
    assert soft_neighborhood_density(_ev_from_probs([[0.7, 0.3], [0.2, 0.8]])) == pytest.approx(0.0, abs=1e-5)


def test_atc_hand_computed():
    from adaptune.algorithms.proxies import average_thresholded_confidence

    source = [[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]]  # confidences 0.6..0.9, all predict class 0
    ev = _ev_from_probs([[0.95, 0.05], [0.7, 0.3], [0.8, 0.2], [0.55, 0.45]], source, [0, 1, 0, 1])
    # source accuracy 0.5 -> threshold = median confidence 0.75 -> target confidences above it: 0.95, 0.8
    assert average_thresholded_confidence(ev) == pytest.approx(0.5)


def test_iwcv_and_dev_hand_computed():
    from adaptune.algorithms.proxies import deep_embedded_validation, importance_weighted_accuracy

    # source losses 1 and 2 (label 0, logits [0, z] with log(1 + e^z) = loss); the first is correct
    z1, z2 = math.log(math.e - 1), math.log(math.e**2 - 1)
    ev = Evaluation(torch.tensor([[0.0, -1.0], [0.0, z2]]), torch.tensor([0, 0]), torch.zeros(2, 2),
                    torch.zeros(2, 2), torch.zeros(2, 2))
    ev.__dict__["importance_weights"] = torch.tensor([1.0, 3.0])  # fixed density ratio for a hand computation
    assert importance_weighted_accuracy(ev) == pytest.approx(1 / 4)
    ev = Evaluation(torch.tensor([[0.0, z1], [0.0, z2]]), torch.tensor([0, 0]), torch.zeros(2, 2),
                    torch.zeros(2, 2), torch.zeros(2, 2))
    ev.__dict__["importance_weights"] = torch.tensor([1.0, 3.0])
    # weighted losses [1, 6]: mean 3.5; Cov = 5, Var(w) = 2 -> eta = -2.5; risk = 3.5 - 2.5 * 2 + 2.5 = 1.0
    assert deep_embedded_validation(ev) == pytest.approx(-1.0, abs=1e-5)


def test_density_ratio_grows_towards_the_target():
    from adaptune.algorithms.proxies import domain_density_ratio

    g = torch.Generator().manual_seed(0)
    source = torch.randn(400, 1, generator=g)
    target = torch.randn(400, 1, generator=g) + 2.0
    weights = domain_density_ratio(source, target)
    order = source[:, 0].argsort()
    assert weights[order[-20:]].mean() > 5 * weights[order[:20]].mean()


def test_density_ratio_of_two_gaussians_matches_the_true_ratio():
    from adaptune.algorithms.proxies import domain_density_ratio

    # p_s = N(0, 1), p_t = N(2, 1): log p_t(x) / p_s(x) = 2x - 2 exactly
    g = torch.Generator().manual_seed(0)
    source = torch.randn(5000, 1, generator=g)
    target = torch.randn(5000, 1, generator=g) + 2.0
    log_weights = domain_density_ratio(source, target).log()
    inside = source[:, 0].abs() < 1.5  # away from the clipping at ratio 20
    x = source[inside, 0]
    design = torch.stack([x, torch.ones_like(x)], 1)
    slope, intercept = torch.linalg.lstsq(design, log_weights[inside, None]).solution[:, 0]
    assert slope.item() == pytest.approx(2.0, abs=0.1) and intercept.item() == pytest.approx(-2.0, abs=0.1)


def test_density_ratio_with_more_dimensions_than_samples_is_finite():
    from adaptune.algorithms.proxies import domain_density_ratio

    g = torch.Generator().manual_seed(0)
    weights = domain_density_ratio(torch.randn(30, 256, generator=g), torch.randn(40, 256, generator=g) + 0.3)
    assert torch.isfinite(weights).all() and (weights >= 0).all()
    assert torch.equal(domain_density_ratio(torch.ones(5, 3), torch.ones(4, 3)), torch.ones(5))  # no shift: 1


def test_mixval_hand_computed():
    from adaptune.algorithms.proxies import mixup_validation

    ev = _ev_from_probs([[0.5, 0.5]])
    assert math.isnan(mixup_validation(ev))  # no mixed pairs in this evaluation
    ev.mix_logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])  # predicts 0, 1, 0, 1
    ev.mix_labels = torch.tensor([0, 0, 0, 1])
    assert mixup_validation(ev) == pytest.approx(3 / 4)


def test_mixup_pairs_keep_the_dominant_pseudo_label():
    from adaptune.algorithms.loop import mix, mixup_pairs

    x = torch.tensor([[0.0], [10.0]])
    i, j = mixup_pairs(len(x), pairs=8)
    assert len(i) == len(j) == 2  # at most one pair per target sample
    mixed = mix(x[i], x[j])
    # 0.55 x_i + 0.45 x_j is one of 0, 4.5 (i = sample 0) or 5.5, 10 (i = sample 1): x_i dominates
    for value, first in zip(mixed[:, 0].tolist(), i.tolist()):
        assert min(abs(value - v) for v in (0.0, 4.5, 5.5, 10.0)) < 1e-5
        assert first == int(value > 5.0)


def test_adjusted_mutual_information_matches_reference_values():
    from adaptune.algorithms.proxies import adjusted_mutual_information as ami

    t = torch.tensor
    assert ami(t([0, 0, 1, 1]), t([1, 1, 0, 0])) == pytest.approx(1.0)  # same partition, renamed
    # Reference values from scikit-learn's adjusted_mutual_info_score (arithmetic normalisation).
    assert ami(t([0, 0, 0, 1, 1, 1]), t([0, 0, 1, 1, 2, 2])) == pytest.approx(0.2987924581708901, abs=1e-9)
    assert ami(t([0, 0, 1, 1]), t([0, 1, 0, 1])) == pytest.approx(-0.5, abs=1e-9)
    assert ami(t([0, 0, 1, 1, 1, 2, 2, 0]), t([1, 1, 0, 0, 2, 2, 2, 0])) == pytest.approx(0.31967265056964694, abs=1e-9)


def test_kmeans_recovers_separated_clusters_deterministically():
    from adaptune.algorithms.proxies import kmeans

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 3, generator=g) + 10 * c for c in range(3)])
    clusters = kmeans(x, 3)
    assert torch.equal(clusters, kmeans(x, 3))
    for c in range(3):  # each true cluster maps to one k-means cluster
        assert clusters[30 * c : 30 * (c + 1)].unique().numel() == 1
    assert clusters.unique().numel() == 3


def _clustered_evaluation(predictions_follow_clusters: bool) -> Evaluation:
    g = torch.Generator().manual_seed(1)
    features = torch.cat([torch.randn(40, 2, generator=g) + torch.tensor([8.0 * c, 0.0]) for c in range(2)])
    truth = torch.arange(2).repeat_interleave(40)
    predicted = truth if predictions_follow_clusters else torch.arange(80) % 2
    logits = torch.nn.functional.one_hot(predicted, 2).float() * 4
    source_labels = truth.clone()
    return Evaluation(logits.clone(), source_labels, features.clone(), logits, features)


def test_class_ami_high_when_predictions_follow_feature_clusters():
    from adaptune.algorithms.proxies import class_cluster_agreement

    assert class_cluster_agreement(_clustered_evaluation(True)) == pytest.approx(1.0)
    assert class_cluster_agreement(_clustered_evaluation(False)) == pytest.approx(0.0, abs=0.05)
    # above max_samples, a subset of samples, each with its own prediction: agreement is still perfect
    assert class_cluster_agreement(_clustered_evaluation(True), max_samples=16) == pytest.approx(1.0)
    assert class_cluster_agreement(_clustered_evaluation(False), max_samples=17) < 0.3


def test_circular_validation_hand_computed():
    from adaptune.algorithms.proxies import circular_validation

    # Target pseudo-labels follow the clusters; the reverse classifier then labels the source (same clusters,
    # same labels) perfectly: 1.0. Source labels swapped: the reverse classifier gets every one wrong: 0.0.
    ev = _clustered_evaluation(True)
    assert circular_validation(ev) == pytest.approx(1.0)
    ev.source_labels = 1 - ev.source_labels
    assert circular_validation(ev) == pytest.approx(0.0)


def test_model_fitting_proxies_fit_on_evenly_spaced_target_samples_above_the_cap(monkeypatch):
    from adaptune.algorithms import proxies

    # A large target costs a model fit as much as the trial's own head (benchmarks/results/image_scale.md): above
    # the cap the density ratio and circular validation's reverse classifier see evenly spaced target samples.
    g = torch.Generator().manual_seed(3)
    source, target = torch.randn(30, 4, generator=g), torch.randn(200, 4, generator=g) + 0.5
    full = proxies.domain_density_ratio(source, target)
    monkeypatch.setattr(proxies, "MODEL_FIT_MAX_SAMPLES", 40)
    kept = torch.linspace(0, 199, 40).long()
    assert torch.equal(proxies.domain_density_ratio(source, target), proxies.domain_density_ratio(source, target[kept]))
    assert not torch.allclose(proxies.domain_density_ratio(source, target), full)

    ev = _clustered_evaluation(True)
    kept = torch.linspace(0, 79, 40).long()
    ev.target_logits[kept] = ev.target_logits[kept].flip(1)  # the kept samples' pseudo-labels are all wrong
    assert proxies.circular_validation(ev) == pytest.approx(0.0)
    monkeypatch.setattr(proxies, "MODEL_FIT_MAX_SAMPLES", 80)  # every sample: half of them are right
    assert proxies.circular_validation(ev) > 0.3


def test_circular_only_on_the_final_checkpoint():
    ev = _clustered_evaluation(True)
    assert math.isnan(compute_proxies(ev)["proxy_circular"])
    assert compute_proxies(ev, final=True)["proxy_circular"] == pytest.approx(1.0)


def test_fewshot_accuracy_hand_computed_and_nan_without_labels():
    from adaptune.algorithms.proxies import fewshot_accuracy

    ev = _evaluation([[0.7, 0.3]])
    assert math.isnan(fewshot_accuracy(ev))
    ev.fewshot_logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    ev.fewshot_labels = torch.tensor([0, 1, 1, 1])
    assert fewshot_accuracy(ev) == pytest.approx(0.75)


def test_auto_proxy_resolves_by_input_kind(blobs_task):
    from adaptune.algorithms.proxies import AUTO_PROXY, resolve_proxy

    assert resolve_proxy("auto", blobs_task) == AUTO_PROXY[blobs_task.input_kind]
    assert resolve_proxy("entropy", blobs_task) == "entropy"
    assert set(AUTO_PROXY.values()) <= set(PROXIES) and not {"fewshot", "circular"} & set(AUTO_PROXY.values())
    with pytest.raises(InputError):
        resolve_proxy("nope", blobs_task)


def test_auto_ranks_by_its_ranking_rule_at_the_epochs_of_its_proxy_rule(blobs_task, monkeypatch):
    from dataclasses import replace

    from adaptune.algorithms import proxies

    monkeypatch.setattr(proxies, "AUTO_PROXY", {"features": "im", "images": "bnm"})
    monkeypatch.setattr(proxies, "AUTO_RANKING_PROXY", {"features": "neighbour_agreement", "images": None})
    images = replace(blobs_task, input_kind="images")
    assert proxies.resolve_proxies("auto", None, blobs_task) == ("neighbour_agreement", "im")
    assert proxies.resolve_proxies("auto", None, images) == ("bnm", "bnm")  # no ranking rule: one proxy for both
    assert proxies.resolve_proxies("auto", "snd", blobs_task) == ("neighbour_agreement", "snd")
    assert proxies.resolve_proxies("entropy", None, blobs_task) == ("entropy", "entropy")
    assert proxies.resolve_proxies("entropy", "im", blobs_task) == ("entropy", "im")
    with pytest.raises(InputError, match="checkpoint_proxy"):
        proxies.resolve_proxies("auto", "neighbour_agreement", images)


def test_the_auto_ranking_rule_names_epoch_wise_proxies():
    from adaptune.algorithms.proxies import AUTO_PROXY, AUTO_RANKING_PROXY

    assert set(AUTO_RANKING_PROXY) == set(AUTO_PROXY)
    for kind, name in AUTO_RANKING_PROXY.items():
        assert name is None or (not PROXIES[name].final_only and name != "fewshot"
                                and (kind == "features" or not PROXIES[name].features_only))


def test_auto_proxy_without_a_rule_or_an_input_kind(monkeypatch):
    from adaptune.algorithms import proxies

    assert proxies.auto_proxy("video") == proxies.DEFAULT_PROXY  # a kind without evidence
    monkeypatch.setattr(proxies, "AUTO_PROXY", {"features": "snd", "images": "snd"})
    assert proxies.auto_proxy() == "snd"  # the kind unknown: what every kind's rule agrees on
    monkeypatch.setattr(proxies, "AUTO_PROXY", {"features": "snd", "images": "bnm"})
    assert proxies.auto_proxy() == proxies.DEFAULT_PROXY


def test_the_source_gap_widens_to_the_standard_error_of_a_small_held_out_source():
    from adaptune.algorithms.proxies import widened_source_gap

    # 16 held-out samples: the widest standard error of their accuracy is 1 / (2 * 4) = 0.125 (two samples).
    assert widened_source_gap(0.05, 1.0, 16) == 0.125
    assert widened_source_gap(0.05, 2.0, 16) == 0.25
    assert widened_source_gap(0.05, 1.0, 400) == 0.05  # 0.025 < the gap: a large split keeps it
    assert widened_source_gap(0.05, 0.0, 16) == 0.05
    assert widened_source_gap(None, 1.0, 16) is None  # no gap stays no gap


def test_auto_source_gap_reads_the_tasks_held_out_source(blobs_task, monkeypatch):
    from adaptune.algorithms import proxies

    monkeypatch.setattr(proxies, "AUTO_SOURCE_GAP", {"features": 0.05, "images": None})
    monkeypatch.setattr(proxies, "AUTO_SOURCE_GAP_STANDARD_ERRORS", {"features": 1.0, "images": 0.0})
    held_out = len(blobs_task.source_val)
    assert proxies.resolve_source_gap("auto", blobs_task) == max(0.05, 1 / (2 * math.sqrt(held_out)))
    assert proxies.resolve_source_gap(0.02, blobs_task) == 0.02  # a gap the user names is taken as it is
    assert proxies.resolve_source_gap("none", blobs_task) is None
    assert "widened to 1 standard error" in proxies.auto_gap_words("features")
    assert proxies.auto_gap_words("images") == "none"


def test_auto_rule_is_the_one_our_benchmark_derived():
    import json
    from pathlib import Path

    from adaptune.algorithms.proxies import (
        AUTO_PROXY,
        AUTO_RANKING_PROXY,
        AUTO_SOURCE_GAP,
        AUTO_SOURCE_GAP_STANDARD_ERRORS,
    )

    measured = json.loads((Path(__file__).resolve().parents[2] / "benchmarks/results/proxy_auto.json").read_text())
    assert AUTO_PROXY == measured["rule"] and AUTO_SOURCE_GAP == measured["source_gap"]
    assert AUTO_SOURCE_GAP_STANDARD_ERRORS == measured["source_gap_standard_errors"]
    assert AUTO_RANKING_PROXY == measured["ranking_rule"]
    from adaptune.search.config import DEFAULT_ENSEMBLE_PER_METHOD

    assert DEFAULT_ENSEMBLE_PER_METHOD == measured["ensemble_per_method"]


def _calibration_case(scale: float = 1.0) -> Evaluation:
    # Source: logits (2, 0) everywhere and 3 of 4 labels are class 0, so the calibrated p(class 0) is 0.75:
    # sigmoid(2 / T) = 0.75 -> T = 2 / ln 3. Target: (2, 0) and (0, 2).
    source = torch.tensor([[2.0, 0.0]] * 4) * scale
    target = torch.tensor([[2.0, 0.0], [0.0, 2.0]]) * scale
    return Evaluation(source, torch.tensor([0, 0, 0, 1]), torch.zeros(4, 2), target, torch.zeros(2, 2))


def test_calibration_temperature_hand_computed():
    from adaptune.algorithms.proxies import calibration_temperature

    ev = _calibration_case()
    assert calibration_temperature(ev.source_logits, ev.source_labels) == pytest.approx(2 / math.log(3), rel=1e-4)
    assert ev.source_temperature == pytest.approx(2 / math.log(3), rel=1e-4)
    assert calibration_temperature(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)) == 1.0


def test_calibrated_im_and_bnm_hand_computed():
    from adaptune.algorithms.proxies import calibrated_batch_nuclear_norm, calibrated_information_maximization

    ev = _calibration_case()
    # calibrated target rows (0.75, 0.25) and (0.25, 0.75): IM = ln 2 - H(0.75, 0.25); singular values 1, 0.5
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert calibrated_information_maximization(ev) == pytest.approx(math.log(2) - h, abs=1e-4)
    assert calibrated_batch_nuclear_norm(ev) == pytest.approx(0.75, abs=1e-4)
    assert information_maximization(ev) > calibrated_information_maximization(ev)  # the raw model is overconfident


def test_calibrated_proxies_do_not_reward_sharper_logits():
    from adaptune.algorithms.proxies import batch_nuclear_norm

    soft, sharp = _calibration_case(1.0), _calibration_case(5.0)  # the same decisions, logits 5x larger
    assert information_maximization(sharp) > information_maximization(soft) + 0.1
    assert batch_nuclear_norm(sharp) > batch_nuclear_norm(soft) + 0.05
    for name in ("im_ts", "bnm_ts"):
        assert PROXIES[name].fn(sharp) == pytest.approx(PROXIES[name].fn(soft), abs=1e-4)


# Two tight clusters of four samples each in the input space: a sample's 3 nearest neighbours are its cluster.
_CLUSTERS = torch.tensor([[1.0, 0.0], [0.99, 0.05], [0.98, 0.1], [0.97, 0.12],
                          [0.0, 1.0], [0.05, 0.99], [0.1, 0.98], [0.12, 0.97]])


def _agreement(predicted: list[int], neighbours: torch.Tensor | None) -> float:
    from adaptune.algorithms.proxies import neighbour_agreement

    logits = 5 * torch.nn.functional.one_hot(torch.tensor(predicted), 2).float()
    empty = torch.zeros(0, 2)
    return neighbour_agreement(Evaluation(empty, torch.zeros(0, dtype=torch.long), empty, logits, logits,
                                          target_neighbours=neighbours))


def test_neighbour_agreement_rewards_predictions_that_follow_the_input_clusters_beyond_chance():
    from adaptune.algorithms.neighbours import neighbourhoods

    neighbours = neighbourhoods(_CLUSTERS, k=3)
    assert _agreement([0, 0, 0, 0, 1, 1, 1, 1], neighbours) == pytest.approx(1.0)
    # one class everywhere agrees perfectly, and not at all beyond chance
    assert _agreement([0] * 8, neighbours) == pytest.approx(0.0)
    # each cluster split in two: a third of the neighbours agree where chance is a half -> (1/3 - 1/2) / (1/2)
    assert _agreement([0, 1, 0, 1, 0, 1, 0, 1], neighbours) == pytest.approx(-1 / 3)
    assert math.isnan(_agreement([0, 1, 0, 1, 0, 1, 0, 1], None))  # image inputs: no neighbourhoods


def test_neighbour_agreement_does_not_reward_confidence():
    from adaptune.algorithms.neighbours import neighbourhoods

    neighbours = neighbourhoods(_CLUSTERS, k=3)
    soft = torch.tensor([[0.6, 0.4]] * 4 + [[0.4, 0.6]] * 4).log()
    sharp = 10 * soft
    empty = torch.zeros(0, 2)
    scores = [neighbour_agreement(Evaluation(empty, torch.zeros(0, dtype=torch.long), empty, logits, logits,
                                             target_neighbours=neighbours)) for logits in (soft, sharp)]
    assert scores[0] == scores[1] == pytest.approx(1.0)
