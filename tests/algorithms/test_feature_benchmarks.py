"""The DeCAF6, JDA digits, Amazon 5000-d and digit pixel feature tasks: sizes and labels from their PROVENANCE
notes, what each preprocess kind (auto included) does to them, and the published 1-NN baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptune.algorithms import data
from adaptune.algorithms.domains import Task
from adaptune.algorithms.errors import InputError
from adaptune.algorithms.methods.linalg import nearest_neighbor
from adaptune.algorithms.preprocess import (
    AUTO,
    AUTO_CLIP_SHARE,
    PREPROCESS_NOTES,
    ZSCORE_CLIP,
    preprocess_domains,
    resolve_preprocess,
    spread_mismatch,
)

# Class counts per domain, as in the PROVENANCE notes.
DECAF_COUNTS = {"D": [12, 21, 12, 13, 10, 24, 22, 12, 8, 23], "W": [29, 21, 31, 27, 27, 30, 43, 30, 27, 30]}
JDA_COUNTS = {
    "M": [196, 227, 207, 202, 196, 179, 191, 206, 195, 201],
    "U": [352, 241, 165, 166, 166, 126, 139, 172, 129, 144],
}
# Amazon 5000-d: every train split is 1000 / 1000; the test splits are the targets' oracle sets.
AMAZON_TEST_COUNTS = {"B": [2201, 2264], "D": [1779, 1807], "E": [2824, 2857], "K": [2991, 2954]}
AMAZON_PAIRS = [f"{s}->{t}" for s in "BDEK" for t in "BDEK" if s != t]
NEW_TASKS = [
    *(f"office-decaf:{pair}" for pair in ("D->W", "W->D")),
    *(f"mnist-usps-jda:{pair}" for pair in ("M->U", "U->M")),
    *(f"amazon-5000:{pair}" for pair in AMAZON_PAIRS),
]
# 1-NN from all source samples to all target samples under the benchmark's own protocol, and the published
# value: MEDA (ACM MM 2018) Table 4 for DeCAF6 (L1 rows, z-score), JDA (ICCV 2013) Table 2 / MEDA Table 3 for
# the digits (unit L2 rows, no z-score).
PUBLISHED_1NN = {
    "office-decaf:D->W": ("zscore", 91.5, 0.06),
    "office-decaf:W->D": ("zscore", 98.1, 0.06),
    "mnist-usps-jda:M->U": ("none", 65.94, 0.006),
    "mnist-usps-jda:U->M": ("none", 44.70, 0.006),
}


def split_sizes(n: int) -> tuple[int, int]:
    return n - round(0.1 * n), round(0.1 * n)


def expected_sizes(name: str) -> dict[str, int]:
    prefix, pair = name.split(":")
    source, target = pair.split("->")
    if prefix == "amazon-5000":
        source_train, source_val = split_sizes(2000)
        return {"source_train": source_train, "source_val": source_val, "target_train": 2000,
                "target_val": sum(AMAZON_TEST_COUNTS[target])}
    counts = DECAF_COUNTS if prefix == "office-decaf" else JDA_COUNTS
    source_train, source_val = split_sizes(sum(counts[source]))
    n_target = sum(counts[target])
    return {"source_train": source_train, "source_val": source_val, "target_train": n_target, "target_val": n_target}


def whole_source(task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([task.source_train.x, task.source_val.x]), torch.cat([task.source_train.y, task.source_val.y])


def assert_standardised(x: torch.Tensor) -> None:
    x = x.double()
    assert torch.allclose(x.mean(dim=0), torch.zeros(x.shape[1], dtype=x.dtype), atol=1e-5)
    std = x.std(dim=0, correction=0)
    assert torch.all(((std - 1.0).abs() < 1e-4) | (std == 0.0))  # a constant feature keeps std 1, so stays 0


@pytest.fixture(scope="module")
def amazon_zscore() -> Task:
    # B->E: the electronics test split holds the 3 reviews with none of the 5000 features.
    return data.load_task("amazon-5000:B->E", preprocess="zscore")


@pytest.fixture(scope="module")
def listing() -> dict[str, dict]:
    return {t["name"]: t for t in data.list_tasks()}


def test_every_new_task_is_listed_with_its_sizes(listing: dict[str, dict]) -> None:
    assert all(name in listing for name in NEW_TASKS) and len(listing) == len(data.BUILTIN_TASKS)
    for name in NEW_TASKS:
        entry = listing[name]
        sizes = {k: entry[k] for k in ("source_train", "source_val", "target_train", "target_val")}
        assert sizes == expected_sizes(name), name
        assert entry["input_kind"] == "features" and entry["default_backbone"] == "mlp"
        assert entry["num_classes"] == (2 if name.startswith("amazon") else 10)


def test_stored_labels_match_the_provenance_notes() -> None:
    for key, expected in DECAF_COUNTS.items():
        assert np.bincount(data._feature_labels(data._OFFICE_DECAF, key)).tolist() == expected
    for key, expected in JDA_COUNTS.items():
        assert np.bincount(data._feature_labels(data._MNIST_USPS_JDA, key)).tolist() == expected
    for key, expected in AMAZON_TEST_COUNTS.items():
        assert np.bincount(data._feature_labels(data._AMAZON_5000, key, ("train",))).tolist() == [1000, 1000]
        assert np.bincount(data._feature_labels(data._AMAZON_5000, key, ("test",))).tolist() == expected
    # The compact storage: float32 activations, integer grey levels, sparse small counts.
    decaf = data._builtin_arrays("office_caltech10_decaf6.npz")
    assert decaf["x_D"].shape == (157, 4096) and decaf["x_D"].dtype == np.float32
    digits = data._builtin_arrays("mnist_usps_jda.npz")
    assert digits["x_M"].dtype == np.uint8 and digits["x_M_divisor"] == 256.0 and digits["x_U"].shape == (1800, 256)
    amazon = data._builtin_arrays("amazon_review_dann_5000.npz")
    assert amazon["x_K_test_data"].dtype == np.uint8 and amazon["x_K_test_indices"].dtype == np.uint16
    assert amazon["x_K_test_shape"].tolist() == [5945, 5000]


def load(name: str, amazon_zscore: Task) -> Task:
    return amazon_zscore if name == "amazon-5000:B->E" else data.load_task(name)


# list_tasks summarises feature tasks from their labels alone: one task of each feature benchmark. It describes
# the default preprocessing (auto) by its rule, since it reads no feature; the task names the kind auto picked.
@pytest.mark.parametrize(
    "name", ["office-surf:A->W", "amazon:B->K", "office-decaf:W->D", "mnist-usps-jda:U->M", "amazon-5000:B->E"]
)
def test_listing_matches_the_loaded_task(name: str, listing: dict[str, dict], amazon_zscore: Task) -> None:
    task = load(name, amazon_zscore)
    listed = dict(listing[name])
    listed_description = listed.pop("description")
    assert listed == {
        "name": name,
        "input_kind": task.input_kind,
        "default_backbone": task.default_backbone,
        "num_classes": task.num_classes,
        **task.sizes(),
    }
    kind = task.extra["preprocess"]
    assert PREPROCESS_NOTES[AUTO] in listed_description and PREPROCESS_NOTES[kind] in task.description
    assert listed_description.replace(PREPROCESS_NOTES[AUTO], PREPROCESS_NOTES[kind]).split(";")[-1] == (
        task.description.split(";")[-1])


@pytest.mark.parametrize("name", ["office-decaf:W->D", "mnist-usps-jda:U->M", "amazon-5000:B->E"])
def test_new_task_hides_target_labels(name: str, amazon_zscore: Task) -> None:
    task = load(name, amazon_zscore)
    # The default (auto) clips the JDA digits' z-scores (blank MNIST borders against full-frame USPS digits).
    assert task.extra["preprocess"] == ("zscore-clip" if name.startswith("mnist-usps-jda") else "zscore")
    assert not task.target_train.labeled and not task.target_val.labeled
    assert len(task.target_oracle) == len(task.target_val)
    assert task.source_train.x.dtype == torch.float32 and task.target_val.x.dtype == torch.float32
    source, target = name.split(":")[1].split("->")
    if name.startswith("amazon"):
        assert task.extra["protocol"] == "train-test" and task.input_shape == (5000,)
        assert torch.bincount(task.target_oracle).tolist() == AMAZON_TEST_COUNTS[target]
        assert torch.bincount(whole_source(task)[1]).tolist() == [1000, 1000]
    else:
        counts = DECAF_COUNTS if name.startswith("office") else JDA_COUNTS
        assert task.extra["protocol"] == "transductive" and torch.equal(task.target_train.x, task.target_val.x)
        assert torch.bincount(task.target_oracle).tolist() == counts[target]
        assert torch.bincount(whole_source(task)[1]).tolist() == counts[source]
        assert task.input_shape == ((4096,) if name.startswith("office") else (256,))


def test_row_normalisation_and_preprocess_kinds_of_the_digits() -> None:
    raw = data.load_task("mnist-usps-jda:M->U", preprocess="none")
    xs, xt = whole_source(raw)[0].double(), raw.target_val.x.double()
    # "none" keeps the benchmark's features: every sample scaled to unit L2 norm, as in the JDA code.
    assert torch.allclose(xs.norm(dim=1), torch.ones(len(xs), dtype=xs.dtype), atol=1e-6)
    assert torch.allclose(xt.norm(dim=1), torch.ones(len(xt), dtype=xt.dtype), atol=1e-6)
    assert raw.extra["preprocess"] == "none" and "published baselines" not in raw.description
    # "zscore": each domain standardised with its own statistics.
    own = data.load_task("mnist-usps-jda:M->U", preprocess="zscore")
    assert_standardised(whole_source(own)[0])
    assert_standardised(own.target_val.x)
    assert "published baselines use preprocess 'none'" in own.description
    # "source-zscore": the target goes through the source's mean and std, so it keeps its offset.
    shared = data.load_task("mnist-usps-jda:M->U", preprocess="source-zscore")
    assert_standardised(whole_source(shared)[0])
    xs = torch.cat([raw.source_train.x, raw.source_val.x]).double()
    mean, std = xs.mean(dim=0), xs.std(dim=0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    assert torch.allclose(shared.target_val.x.double(), (xt - mean) / std, rtol=1e-5, atol=1e-4)
    # "domain-scale": each domain centred on its own mean and divided by one number, so a blank border pixel stays
    # small while a z-score would give it unit variance.
    scaled = data.load_task("mnist-usps-jda:M->U", preprocess="domain-scale")
    rms_std = xt.std(dim=0, correction=0).pow(2).mean().sqrt()
    assert torch.allclose(scaled.target_val.x.double(), (xt - xt.mean(dim=0)) / rms_std, rtol=1e-5, atol=1e-5)
    source = whole_source(scaled)[0].double()
    assert source.mean(dim=0).abs().max() < 1e-5
    assert abs(source.std(dim=0, correction=0).pow(2).mean().item() - 1.0) < 1e-4
    # "zscore-clip": the per-domain z-scores, cut at ±ZSCORE_CLIP; a blank border pixel's rare stroke no longer
    # stands out as a z-score of 10 or more.
    clipped = data.load_task("mnist-usps-jda:M->U", preprocess="zscore-clip")
    assert torch.equal(clipped.target_val.x, own.target_val.x.clamp(-ZSCORE_CLIP, ZSCORE_CLIP))
    assert own.target_val.x.abs().max() > 10 and clipped.target_val.x.abs().max() == ZSCORE_CLIP


def test_decaf_rows_are_l1_normalised() -> None:
    task = data.load_task("office-decaf:D->W", preprocess="none")
    sums = torch.cat([whole_source(task)[0], task.target_val.x]).double().sum(dim=1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


def dense_counts(key: str, split: str) -> np.ndarray:
    arrays = data._builtin_arrays("amazon_review_dann_5000.npz")
    stem = f"x_{key}_{split}"
    indptr = arrays[f"{stem}_indptr"]
    x = np.zeros(tuple(arrays[f"{stem}_shape"]), dtype=np.float32)
    x[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), arrays[f"{stem}_indices"]] = arrays[f"{stem}_data"]
    return x


def test_amazon_5000_keeps_raw_counts_and_standardises_over_all_target_reviews(amazon_zscore: Task) -> None:
    raw = data.load_task("amazon-5000:B->E", preprocess="none")
    # "none" gives the stored counts: source = books train (split 90/10), target = electronics train / test.
    train_idx, val_idx = data.stratified_split(data._feature_labels(data._AMAZON_5000, "B", ("train",)), 0.1, 0)
    books = torch.from_numpy(dense_counts("B", "train"))
    assert torch.equal(raw.source_train.x, books[train_idx]) and torch.equal(raw.source_val.x, books[val_idx])
    assert torch.equal(raw.target_train.x, torch.from_numpy(dense_counts("E", "train")))
    test = torch.from_numpy(dense_counts("E", "test"))
    assert torch.equal(raw.target_val.x, test) and (test.sum(dim=1) == 0).sum() == 3
    # "zscore": the target statistics cover its train and test reviews together, not each part on its own
    # (checked on the first 1000 features, which keeps the test fast).
    target = torch.cat([amazon_zscore.target_train.x[:, :1000], amazon_zscore.target_val.x[:, :1000]])
    assert_standardised(whole_source(amazon_zscore)[0][:, :1000])
    assert_standardised(target)
    assert amazon_zscore.target_train.x[:, :1000].double().mean(dim=0).abs().max() > 0.05


@pytest.mark.parametrize("name", sorted(PUBLISHED_1NN))
def test_1nn_reproduces_the_published_baseline(name: str) -> None:
    preprocess, published, tolerance = PUBLISHED_1NN[name]
    task = data.load_task(name, preprocess=preprocess)
    xs, ys = whole_source(task)
    predicted = nearest_neighbor(xs.double(), ys, task.target_val.x.double())
    accuracy = 100.0 * (predicted == task.target_oracle).double().mean().item()
    assert abs(accuracy - published) < tolerance, accuracy


def test_unknown_domain_of_a_new_benchmark() -> None:
    with pytest.raises(InputError) as error:
        data.load_task("office-decaf:A->W")
    assert error.value.field == "task" and "office-decaf:D->W" in str(error.value)


def test_auto_clips_where_columns_differ_in_spread_between_domains() -> None:
    generator = torch.Generator().manual_seed(0)
    xs, xt = torch.randn(300, 10, generator=generator), torch.randn(200, 10, generator=generator)
    # Three of ten columns nearly blank in the target (a border pixel): their spread differs 100x.
    blank = xt.clone()
    blank[:, :3] *= 0.01
    assert spread_mismatch(xs, xt) == 0.0 and spread_mismatch(xs, blank) == pytest.approx(0.3)
    # A column's unit does not matter (the same rescaling in both domains), nor which domain is the narrow one.
    units = torch.logspace(-3, 3, 10, dtype=torch.float64).float()
    assert spread_mismatch(xs * units, blank * units) == pytest.approx(0.3) == spread_mismatch(blank, xs)
    assert AUTO_CLIP_SHARE < 0.3
    assert resolve_preprocess("auto", xs, blank) == "zscore-clip" and resolve_preprocess("auto", xs, xt) == "zscore"
    assert resolve_preprocess("domain-scale", xs, blank) == "domain-scale"  # a named kind is kept as it is
    for kind, target in (("zscore-clip", blank), ("zscore", xt)):
        assert all(torch.equal(a, b) for a, b in zip(preprocess_domains(xs, target, "auto"),
                                                      preprocess_domains(xs, target, kind), strict=True))


@pytest.mark.parametrize(("name", "kind"), [("mnist-usps-jda:U->M", "zscore-clip"), ("office-decaf:D->W", "zscore")])
def test_auto_task_is_the_task_of_the_kind_it_picks(name: str, kind: str) -> None:
    auto, chosen = data.load_task(name, preprocess="auto"), data.load_task(name, preprocess=kind)
    assert auto.extra["preprocess"] == kind and auto.description == chosen.description
    assert torch.equal(auto.source_train.x, chosen.source_train.x)
    assert torch.equal(auto.target_val.x, chosen.target_val.x)


def test_digit_pixel_tables_are_the_digit_images_flattened() -> None:
    images = data.load_task("usps->mnist")
    pixels = data.load_task("digits-pixels:U->M", preprocess="none")
    assert pixels.input_kind == "features" and pixels.input_shape == (784,) and pixels.sizes() == images.sizes()
    for part in ("source_train", "source_val", "target_train", "target_val"):
        assert torch.equal(getattr(pixels, part).x, getattr(images, part).x.flatten(1))
    assert torch.equal(pixels.source_train.y, images.source_train.y)
    assert torch.equal(pixels.target_oracle, images.target_oracle)
    # MNIST's blank border against USPS's full frame: auto clips the z-scores.
    assert data.load_task("digits-pixels:M->U", preprocess="auto").extra["preprocess"] == "zscore-clip"
