"""Built-in tasks reproduce their provenance and published numbers; user data loads or fails clearly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from adaptune.algorithms import data
from adaptune.algorithms.domains import Task
from adaptune.algorithms.errors import InputError
from adaptune.algorithms.images import IMAGENET_MEAN, IMAGENET_STD

# MEDA (ACM MM 2018) Table 2, 1NN column: all source samples -> all target samples.
MEDA_1NN = {
    "C->A": 23.7, "C->W": 25.8, "C->D": 25.5, "A->C": 26.0, "A->W": 29.8, "A->D": 25.5,
    "W->C": 19.9, "W->A": 23.0, "W->D": 59.2, "D->C": 26.3, "D->A": 28.5, "D->W": 63.4,
}  # fmt: skip

# Class counts from the PROVENANCE notes (identical to zip.info.txt).
USPS_TRAIN_COUNTS = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
USPS_TEST_COUNTS = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def counts(y: torch.Tensor) -> list[int]:
    return torch.bincount(y, minlength=10).tolist()


# --- Office-Caltech10 SURF -------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", sorted(MEDA_1NN))
def test_office_surf_1nn_reproduces_meda_table2(pair: str) -> None:
    xs, ys = (torch.from_numpy(a) for a in data.load_office_surf_domain(pair[0]))
    xt, yt = (torch.from_numpy(a) for a in data.load_office_surf_domain(pair[-1]))
    predicted = ys[torch.cdist(xt, xs).argmin(dim=1)]
    accuracy = 100.0 * (predicted == yt).double().mean().item()
    assert abs(accuracy - MEDA_1NN[pair]) < 0.06


def test_office_surf_domain_preprocessing() -> None:
    x, y = data.load_office_surf_domain("W")
    assert x.shape == (295, 800) and x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-9)
    assert np.bincount(y).tolist() == [29, 21, 31, 27, 27, 30, 43, 30, 27, 30]


def test_office_surf_task_is_transductive() -> None:
    task = data.load_task("office-surf:A->W")
    assert task.input_kind == "features" and task.default_backbone == "mlp"
    assert task.classes == data.OFFICE_CLASSES and task.input_shape == (800,)
    assert task.sizes() == {"source_train": 862, "source_val": 96, "target_train": 295, "target_val": 295}
    assert torch.equal(task.target_train.x, task.target_val.x)
    assert task.target_train.y is None and task.target_val.y is None
    assert counts(task.target_oracle) == [29, 21, 31, 27, 27, 30, 43, 30, 27, 30]
    assert task.source_train.x.dtype == torch.float32


# --- digits ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_usps() -> Task:
    return data.load_task("mnist->usps")


@pytest.fixture(scope="module")
def usps_mnist() -> Task:
    return data.load_task("usps->mnist")


def test_mnist_to_usps(mnist_usps: Task) -> None:
    task = mnist_usps
    sizes = {"source_train": 9000, "source_val": 1000, "target_train": 7291, "target_val": 2007}
    assert task.sizes() == sizes
    assert task.classes == tuple("0123456789") and task.default_backbone == "lenet"
    for domain in (task.source_train, task.source_val, task.target_train, task.target_val):
        assert domain.x.shape[1:] == (1, 28, 28) and domain.x.dtype == torch.float32
        assert domain.x.min() >= -1.0 and domain.x.max() <= 1.0
    assert task.source_train.x.min() == -1.0 and task.source_train.x.max() == 1.0
    assert not task.target_train.labeled and not task.target_val.labeled
    assert counts(task.target_oracle) == USPS_TEST_COUNTS
    merged = torch.cat([task.source_train.y, task.source_val.y])
    assert counts(merged) == MNIST_COUNTS


def test_usps_to_mnist(usps_mnist: Task) -> None:
    task = usps_mnist
    assert task.sizes() == {"source_train": 6562, "source_val": 729, "target_train": 8000, "target_val": 2000}
    assert counts(torch.cat([task.source_train.y, task.source_val.y])) == USPS_TRAIN_COUNTS
    assert task.target_oracle is not None and len(task.target_oracle) == 2000
    # The 80/20 target split is stratified: every class holds 20% of its MNIST count, give or take one.
    assert all(abs(n - 0.2 * m) <= 1 for n, m in zip(counts(task.target_oracle), MNIST_COUNTS, strict=True))
    assert not task.target_train.labeled and not task.target_val.labeled
    assert task.target_train.x.min() >= -1.0 and task.target_train.x.max() <= 1.0


def test_source_split_is_disjoint_stratified_and_fixed(mnist_usps: Task) -> None:
    train_idx, val_idx = data.stratified_split(np.repeat(np.arange(10), MNIST_COUNTS), 0.1, data.SPLIT_SEED)
    assert len(np.intersect1d(train_idx, val_idx)) == 0 and len(train_idx) + len(val_idx) == 10000
    val_counts = counts(mnist_usps.source_val.y)
    assert all(abs(n - 0.1 * m) <= 1 for n, m in zip(val_counts, MNIST_COUNTS, strict=True))
    again = data.load_task("mnist->usps")
    assert torch.equal(again.source_val.x, mnist_usps.source_val.x)
    assert torch.equal(again.source_train.y, mnist_usps.source_train.y)
    # No image of the validation part also sits in the training part.
    train_keys = {row.numpy().tobytes() for row in mnist_usps.source_train.x.flatten(1)}
    assert not any(row.numpy().tobytes() in train_keys for row in mnist_usps.source_val.x.flatten(1)[:200])


def test_stratified_split_edge_cases() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    kept, held = data.stratified_split(y, 0.5, seed=3)
    assert len(held) == 3 and set(y[kept]) == {0, 1, 2}  # every class stays on the kept side
    assert np.array_equal(held, data.stratified_split(y, 0.5, seed=3)[1])
    assert len(data.stratified_split(np.zeros(5), 0.01, seed=0)[1]) == 1  # at least one held out


def test_list_tasks() -> None:
    tasks = data.list_tasks()
    # 2 digits + 12 SURF + 12 Amazon 400-d + 2 DeCAF + 2 JDA digits + 12 Amazon 5000-d + 2 digit pixel tables.
    assert [t["name"] for t in tasks] == list(data.BUILTIN_TASKS) and len(tasks) == 44
    keys = {"name", "input_kind", "default_backbone", "num_classes", "description"}
    keys |= {"source_train", "source_val", "target_train", "target_val"}
    assert all(set(t) == keys and t["description"] for t in tasks)
    assert all(t["num_classes"] == (2 if t["name"].startswith("amazon") else 10) for t in tasks)
    office = {t["name"] for t in tasks if t["name"].startswith("office-surf:")}
    assert office == {f"office-surf:{pair}" for pair in MEDA_1NN}


def test_unknown_task() -> None:
    with pytest.raises(InputError) as error:
        data.load_task("office-surf:A->X")
    assert error.value.field == "task"
    assert "unknown task 'office-surf:A->X'" in str(error.value) and "--source/--target" in str(error.value)
    with pytest.raises(InputError) as error:
        data.load_task("mnist->usps", source_val_fraction=1.5)
    assert error.value.field == "source_val_fraction"


# --- user data -------------------------------------------------------------------------------------------


def write_npz(path, x, y=None):
    np.savez(path, x=x, **({} if y is None else {"y": y}))
    return str(path)


def test_user_npz_features(tmp_path) -> None:
    rng = np.random.default_rng(0)
    source = write_npz(tmp_path / "src.npz", rng.normal(size=(50, 6)), np.repeat([2, 7], 25))
    target = write_npz(tmp_path / "tgt.npz", rng.normal(size=(30, 6)).astype(np.float32))
    task = data.load_user_task(source, target)
    assert task.classes == ("2", "7") and task.input_kind == "features" and task.default_backbone == "mlp"
    assert task.sizes() == {"source_train": 45, "source_val": 5, "target_train": 30, "target_val": 30}
    assert task.target_oracle is None and task.source_train.x.dtype == torch.float32
    assert sorted(counts(task.source_val.y)[:2]) == [2, 3]

    labeled = write_npz(tmp_path / "tgt_labeled.npz", rng.normal(size=(4, 6)), np.array([7, 2, 7, 2]))
    task = data.load_user_task(source, labeled)
    assert task.target_oracle.tolist() == [1, 0, 1, 0]
    assert not task.target_train.labeled and not task.target_val.labeled


def test_user_npz_images_backbones(tmp_path) -> None:
    grey = write_npz(tmp_path / "grey.npz", np.zeros((20, 28, 28), np.uint8), np.arange(20) % 2)
    task = data.load_user_task(grey, grey)
    assert task.input_shape == (1, 28, 28) and task.input_kind == "images"
    assert task.default_backbone == "lenet"
    rgb = write_npz(tmp_path / "rgb.npz", np.zeros((20, 3, 32, 32), np.float32), np.arange(20) % 2)
    assert data.load_user_task(rgb, rgb).default_backbone == "resnet18"


def write_table(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return str(path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_user_table_string_labels(tmp_path, suffix) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    frame["label"] = np.repeat(["dog", "cat"], 20)
    source = write_table(frame, tmp_path / f"src{suffix}")
    # The target's columns in another order: they are matched by name.
    target = write_table(frame.iloc[::4][["label", "c", "a", "b"]], tmp_path / f"tgt{suffix}")
    # preprocess "none": the table's values come through as they are (the default would z-score them).
    task = data.load_user_task(source, target, preprocess="none")
    assert task.classes == ("cat", "dog") and task.input_shape == (3,)
    assert task.target_oracle.tolist() == [1] * 5 + [0] * 5
    np.testing.assert_allclose(task.target_val.x.numpy(), frame.iloc[::4][["a", "b", "c"]], rtol=1e-6)


def write_images(folder, names, size=(6, 5)):
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, color=(40 * i % 255, 100, 200)).save(path)


def test_user_image_folders(tmp_path) -> None:
    write_images(tmp_path / "src", [f"{c}/{i}.png" for c in ("bird", "ant") for i in range(5)])
    write_images(tmp_path / "tgt_labeled", ["ant/a.png", "bird/b.png", "bird/c.jpg"])
    write_images(tmp_path / "tgt_flat", ["a.png", "b.png", "c.png"])
    (tmp_path / "tgt_flat" / "notes.txt").write_text("not an image")
    task = data.load_user_task(str(tmp_path / "src"), str(tmp_path / "tgt_flat"), image_size=8)
    assert task.classes == ("ant", "bird") and task.input_kind == "images"
    assert task.input_shape == (3, 8, 8) and task.default_backbone == "resnet18"
    assert task.sizes()["target_train"] == 3 and task.target_oracle is None
    blue = (200 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]
    assert torch.allclose(task.target_val.x.load()[:, 2], torch.full((3, 8, 8), blue), atol=1e-5)
    labeled = data.load_user_task(str(tmp_path / "src"), str(tmp_path / "tgt_labeled"), image_size=8)
    assert labeled.target_oracle.tolist() == [0, 1, 1]


# Each bad input, the field it must be blamed on, and a phrase the one-line message must contain.
def bad_inputs(tmp_path):
    rng = np.random.default_rng(2)
    good = write_npz(tmp_path / "good.npz", rng.normal(size=(10, 4)), np.arange(10) % 2)
    unlabeled = write_npz(tmp_path / "unlabeled.npz", rng.normal(size=(10, 4)))
    np.savez(tmp_path / "no_x.npz", features=np.zeros((3, 4)))
    empty = write_npz(tmp_path / "empty.npz", np.zeros((0, 4)), np.zeros(0, int))
    other_classes = write_npz(tmp_path / "other.npz", rng.normal(size=(3, 4)), np.array([1, 2, 3]))
    wide = write_npz(tmp_path / "wide.npz", rng.normal(size=(5, 7)))
    channels_last = write_npz(tmp_path / "hwc.npz", np.zeros((4, 8, 8, 3)), np.arange(4) % 2)
    (tmp_path / "table.txt").write_text("a,b\n1,2\n")
    (tmp_path / "gap.csv").write_text("a,b,label\n1,2,0\n3,,1\n")
    (tmp_path / "words.csv").write_text("a,colour,label\n1,red,0\n3,blue,1\n")
    pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}).to_csv(tmp_path / "indexed.csv")
    pd.DataFrame({"a": [1.0, 2.0], "name": ["x", "y"], "label": [0, 1]}).to_parquet(tmp_path / "text.parquet")
    (tmp_path / "no_images" / "cls").mkdir(parents=True)
    (tmp_path / "no_images" / "cls" / "readme.txt").write_text("nothing here")
    write_images(tmp_path / "flat", ["a.png"])
    lonely = write_npz(tmp_path / "lonely.npz", rng.normal(size=(7, 4)), np.array([0, 0, 1, 1, 2, 2, 3]))
    singletons = write_npz(tmp_path / "singletons.npz", rng.normal(size=(3, 4)), np.array([0, 1, 2]))
    one_class = write_npz(tmp_path / "one_class.npz", rng.normal(size=(6, 4)), np.full(6, 5))
    no_features = write_npz(tmp_path / "no_features.npz", np.zeros((6, 0)), np.arange(6) % 2)
    pd.DataFrame({"label": [0, 1, 0, 1]}).to_parquet(tmp_path / "label_only.parquet")
    pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0], "label": [0, 1]}).to_parquet(tmp_path / "ab.parquet")
    pd.DataFrame({"a": [0.0, 1.0], "c": [1.0, 0.0]}).to_parquet(tmp_path / "ac.parquet")
    write_images(tmp_path / "not_image", [f"{c}/{i}.png" for c in ("x", "y") for i in range(2)])
    (tmp_path / "not_image" / "x" / "0.png").write_text("a text file with an image extension")
    return [
        (str(tmp_path / "missing.npz"), good, "source", "does not exist"),
        (good, str(tmp_path / "missing_dir"), "target", "does not exist"),
        (str(tmp_path / "table.txt"), good, "source", "unsupported file type '.txt'"),
        (str(tmp_path / "gap.csv"), good, "source", "NaN or infinite values"),
        (str(tmp_path / "words.csv"), good, "source", "non-numeric feature columns colour"),
        (good, str(tmp_path / "indexed.csv"), "target", "column 'Unnamed: 0' has no header name (a row index?)"),
        (str(tmp_path / "no_x.npz"), good, "source", "no array 'x'"),
        (empty, good, "source", "0 samples"),
        (good, empty, "target", "0 samples"),
        (unlabeled, good, "source", "must be labeled"),
        (str(tmp_path / "flat"), good, "source", "must be labeled"),
        (good, other_classes, "target", "classes the source lacks: 2, 3; expected target labels among the source's"),
        (good, wide, "target", "shape (7,) but source samples (4,)"),
        (channels_last, good, "source", "channels-last"),
        (str(tmp_path / "text.parquet"), good, "source", "non-numeric feature columns name"),
        (good, str(tmp_path / "no_images"), "target", "no readable images"),
        (lonely, unlabeled, "source", "expected at least 2 labeled samples per class to hold out a validation split, "
         "class 3 has 1"),
        (singletons, unlabeled, "source", "class 0 has 1"),
        (one_class, unlabeled, "source", "at least 2 classes, found only class 5"),
        (no_features, good, "source", "hold no values"),
        (good, no_features, "target", "hold no values"),
        (str(tmp_path / "label_only.parquet"), good, "source", "besides 'label'"),
        (str(tmp_path / "ab.parquet"), str(tmp_path / "ac.parquet"), "target", "missing b; extra c"),
        (str(tmp_path / "not_image"), good, "source", "0.png (cannot identify image file"),
    ]


def test_user_data_errors(tmp_path) -> None:
    for source, target, field, phrase in bad_inputs(tmp_path):
        with pytest.raises(InputError) as error:
            data.load_user_task(source, target)
        message = str(error.value)
        assert error.value.field == field, message
        assert phrase in message and "\n" not in message, message
        assert (source if field == "source" else target) in message, message


def test_with_fewshot_moves_k_labeled_per_class_out_of_the_oracle(blobs_task):
    from adaptune.algorithms.domains import with_fewshot

    task = with_fewshot(blobs_task, 3, seed=0)
    assert task.target_fewshot is not None and task.target_fewshot.labeled
    assert torch.bincount(task.target_fewshot.y).tolist() == [3] * blobs_task.num_classes
    assert len(task.target_val) == len(blobs_task.target_val) - 3 * blobs_task.num_classes
    assert len(task.target_oracle) == len(task.target_val)
    # Nothing selected on is left in the oracle's set.
    val_rows = {tuple(r.tolist()) for r in task.target_val.x}
    assert not any(tuple(r.tolist()) in val_rows for r in task.target_fewshot.x)
    assert torch.equal(with_fewshot(blobs_task, 3, seed=0).target_fewshot.x, task.target_fewshot.x)
    assert with_fewshot(blobs_task, 0) is blobs_task


def test_input_error_pickles_and_copies_with_its_field():
    """Ray copies and pickles exceptions raised in trials; the field and message must survive both."""
    import copy
    import pickle

    from adaptune.algorithms.errors import InputError

    error = InputError("weights", "expected a readable file")
    for clone in (copy.copy(error), copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert (clone.field, clone.expected, str(clone)) == (error.field, error.expected, str(error))


def test_user_parquet_columns_match_by_name(tmp_path) -> None:
    source = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 6.0, 7.0, 8.0], "label": [0, 1, 0, 1]})
    source.to_parquet(tmp_path / "src.parquet")
    source[["label", "b", "a"]].to_parquet(tmp_path / "reordered.parquet")
    task = data.load_user_task(str(tmp_path / "src.parquet"), str(tmp_path / "reordered.parquet"), preprocess="none")
    np.testing.assert_array_equal(task.target_val.x.numpy(), source[["a", "b"]].to_numpy(np.float32))

    many = {f"f{i}": [0.0, 1.0] for i in range(8)}
    pd.DataFrame({**many, "label": [0, 1]}).to_parquet(tmp_path / "many.parquet")
    pd.DataFrame({f"g{i}": [0.0, 1.0] for i in range(8)}).to_parquet(tmp_path / "renamed.parquet")
    with pytest.raises(InputError) as error:
        data.load_user_task(str(tmp_path / "many.parquet"), str(tmp_path / "renamed.parquet"))
    assert error.value.field == "target"
    assert "missing f0, f1, f2, f3, f4 and 3 more; extra g0, g1, g2, g3, g4 and 3 more" in str(error.value)


def test_npz_features_match_by_position(tmp_path) -> None:
    source = write_npz(tmp_path / "src.npz", np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1]))
    pd.DataFrame({"b": [1.0, 3.0], "a": [0.0, 2.0]}).to_parquet(tmp_path / "tgt.parquet")
    task = data.load_user_task(source, str(tmp_path / "tgt.parquet"), preprocess="none")
    assert task.target_val.x.tolist() == [[1.0, 0.0], [3.0, 2.0]]  # no names on one side: positions count


@pytest.mark.parametrize("pixels", [1200, 2600])  # above the limit PIL warns, above twice the limit it refuses
def test_image_past_the_decompression_bomb_limit(tmp_path, monkeypatch, pixels) -> None:
    write_images(tmp_path / "src", [f"{c}/{i}.png" for c in ("x", "y") for i in range(2)])
    write_images(tmp_path / "tgt", ["a.png"])
    write_images(tmp_path / "tgt", ["big.png"], size=(pixels // 20, 20))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError) as error:
        data.load_user_task(str(tmp_path / "src"), str(tmp_path / "tgt"), image_size=8)
    message = str(error.value)
    assert error.value.field == "target" and "\n" not in message, message
    assert f"image {tmp_path / 'tgt' / 'big.png'} is too large" in message and "at most 1000 pixels" in message


def test_builtin_source_splits_pass_the_class_check() -> None:
    data._check_source_labels(np.repeat(np.arange(10), 2), data.DIGIT_CLASSES, "digits")
    with pytest.raises(InputError, match="class 9 has 0"):
        data._check_source_labels(np.repeat(np.arange(9), 2), data.DIGIT_CLASSES, "digits")


def test_with_fewshot_leaves_every_class_in_the_oracle(blobs_task):
    from adaptune.algorithms.domains import with_fewshot

    smallest = int(torch.bincount(blobs_task.target_oracle).min())
    assert len(with_fewshot(blobs_task, smallest - 1).target_oracle.unique()) == blobs_task.num_classes
    for k in (smallest, 100000):
        with pytest.raises(InputError) as error:
            with_fewshot(blobs_task, k)
        assert error.value.field == "fewshot_k"
        assert f"expected at most {smallest - 1} per class" in str(error.value) and f"got {k}" in str(error.value)
    with pytest.raises(InputError, match="no target labels"):
        with_fewshot(dataclasses.replace(blobs_task, target_oracle=None), 1)


def test_target_labels_may_cover_some_source_classes(tmp_path) -> None:
    # Partial adaptation: the target shows classes 0 and 2 of the source's 0-3; the oracle scores them and
    # fewshot samples come from the classes the target has.
    from adaptune.algorithms.domains import with_fewshot

    rng = np.random.default_rng(3)
    source = write_npz(tmp_path / "s.npz", rng.normal(size=(40, 4)), np.arange(40) % 4)
    target = write_npz(tmp_path / "t.npz", rng.normal(size=(12, 4)), np.array([0, 2] * 6))
    task = data.load_user_task(source, target)
    assert task.num_classes == 4 and task.classes == ("0", "1", "2", "3")
    assert sorted(task.target_oracle.unique().tolist()) == [0, 2]
    few = with_fewshot(task, 2, seed=0)
    assert sorted(few.target_fewshot.y.tolist()) == [0, 0, 2, 2]
    assert sorted(few.target_oracle.unique().tolist()) == [0, 2]
    with pytest.raises(InputError, match="expected at most 5 per class"):
        with_fewshot(task, 6)
