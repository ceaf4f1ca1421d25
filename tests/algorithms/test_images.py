"""Image folders stream from disk: a file index in every process, images decoded batch by batch."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from adaptune.algorithms import data
from adaptune.algorithms.features import MemoryStore
from adaptune.algorithms.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFiles,
    Loading,
    eval_batches,
    input_batches,
    list_image_folder,
)
from adaptune.algorithms.loop import TrialSpec, run_trial


def write_folder(root, classes=("a", "b"), per_class=6, size=(20, 20), seed=0):
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (*size[::-1], 3), dtype=np.uint8) + np.uint8(120 * c)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return str(root)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return write_folder(root / "src"), write_folder(root / "tgt", seed=1)


def test_a_folder_is_indexed_not_decoded(folders):
    task = data.load_user_task(*folders, image_size=12)
    x = task.source_train.x
    assert isinstance(x, ImageFiles) and isinstance(task.target_val.x, ImageFiles)
    assert task.input_shape == (3, 12, 12) and task.input_kind == "images"
    assert len(task.source_train) + len(task.source_val) == 12
    # Subsets by slice, index array and mask are file lists too; pickling carries the names only.
    assert x[1:3].files == x.files[1:3]
    assert x[np.array([2, 0])].files == (x.files[2], x.files[0])
    assert x[torch.tensor([True] + [False] * (len(x) - 1))].files == x.files[:1]
    x.fingerprint()
    assert len(pickle.dumps(x)) < 200 * len(x) and pickle.loads(pickle.dumps(x)).files == x.files


def test_evaluation_transform_resizes_a_square_image_whole(tmp_path):
    write_folder(tmp_path / "f", per_class=1, size=(40, 40))
    files, _ = list_image_folder(str(tmp_path / "f"), "source", 8)
    with Image.open(files.files[0]) as image:
        expected = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32)
    expected = (torch.from_numpy(expected / 255).permute(2, 0, 1) - torch.tensor(IMAGENET_MEAN)[:, None, None]) \
        / torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(files.load([0])[0], expected, atol=1e-5)


def test_a_wide_image_is_cropped_not_distorted(tmp_path):
    (tmp_path / "f").mkdir()
    left_red_right_blue = np.zeros((10, 30, 3), dtype=np.uint8)
    left_red_right_blue[:, :10, 0] = 255
    left_red_right_blue[:, 20:, 2] = 255
    Image.fromarray(left_red_right_blue).save(tmp_path / "f" / "wide.png")
    files, labels = list_image_folder(str(tmp_path / "f"), "target", 6)
    assert labels is None
    red = files.load()[0][0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    assert red.shape == (6, 6) and red.max() < 0.2  # the centre third only: the red left third is cut away


def test_training_batches_are_augmented_reproducibly(folders):
    files, _ = list_image_folder(folders[0], "source", 12)
    # 5 and 0 drawn twice (a second pass within an epoch): each draw gets its own crop, in any worker
    batches = [torch.tensor([0, 3, 5]), torch.tensor([5, 1, 0])]
    device = torch.device("cpu")

    def run(seed, loading):
        return torch.cat(list(input_batches(files, batches, device, loading, seed)))

    crops = run(3, Loading(workers=0, augment="crop-flip"))
    assert crops.shape == (6, 3, 12, 12)
    assert torch.equal(crops, run(3, Loading(workers=0, augment="crop-flip")))
    assert not torch.equal(crops, run(4, Loading(workers=0, augment="crop-flip")))
    # Worker processes draw the same crops; "none" is the evaluation transform.
    assert torch.equal(crops, run(3, Loading(workers=2, augment="crop-flip")))
    plain = run(3, Loading(workers=2, augment="none"))
    assert torch.equal(plain, files.load([0, 3, 5, 5, 1, 0]))
    assert not torch.equal(crops[2], crops[3]) and not torch.equal(crops[0], crops[5])
    assert torch.equal(torch.cat(list(eval_batches(files, 5, device, Loading(workers=1, image_batch=4)))), files.load())


def test_fingerprint_follows_the_files(tmp_path):
    root = write_folder(tmp_path / "f", per_class=2)
    files, _ = list_image_folder(root, "source", 8)
    before = files.fingerprint()
    assert list_image_folder(root, "source", 8)[0].fingerprint() == before
    assert list_image_folder(root, "source", 9)[0].fingerprint() != before  # another decoded size
    Image.new("RGB", (21, 20), (9, 9, 9)).save(files.files[1])
    os.utime(files.files[1], ns=(1, 1))
    assert list_image_folder(root, "source", 8)[0].fingerprint() != before


def test_a_storage_uri_is_read_through_pyarrow(folders):
    local, _ = list_image_folder(folders[0], "source", 8)
    remote, labels = list_image_folder("file://" + folders[0], "source", 8)
    assert remote.storage is not None and len(remote) == len(local) and sorted(set(labels)) == ["a", "b"]
    assert torch.equal(remote.load([0, 5]), local.load([0, 5]))
    assert remote.fingerprint() != local.fingerprint()


def test_a_corrupt_image_body_fails_the_batch_that_reads_it(tmp_path):
    root = write_folder(tmp_path / "f", per_class=3, size=(40, 40))
    broken = tmp_path / "f" / "b" / "2.png"
    broken.write_bytes(broken.read_bytes()[:60])  # the header survives: listing passes, decoding does not
    task = data.load_user_task(root, root, image_size=8)
    with pytest.raises(OSError, match="cannot decode image .*2.png"):
        task.target_val.x.load()


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("weights") / "resnet18.pt")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("method", "hparams", "backbone", "features"),
    [
        ("source_only", {"freeze_depth": 0}, "lenet", None),  # fine-tuning on augmented batches from workers
        ("dann", {"freeze_depth": 2}, "resnet18", None),  # the frozen stages run on every batch
        ("linear_probe", {}, "resnet18", 512),  # whole backbone frozen: outputs computed once, then a closed form
        ("coral", {}, "lenet", 500),  # feature extraction through a random-init backbone: pixels never held whole
    ],
)
def test_trials_train_on_streamed_folders(folders, resnet_weights, method, hparams, backbone, features):
    task = data.load_user_task(*folders, image_size=28)
    spec = TrialSpec(method=method, hparams=hparams, backbone=backbone, epochs=2, batch_size=4, steps_per_epoch=3,
                     weights=resnet_weights if backbone == "resnet18" else None, loader_workers=1)
    reports = []
    store = MemoryStore()
    metrics = run_trial(task, spec, lambda m, state: reports.append((m, state())), store=store)
    assert 0.0 <= metrics["target_acc"] <= 1.0 and np.isfinite(metrics["proxy_source_acc"])
    assert reports[-1][1]["target_probs"].shape == (len(task.target_val), 2)
    if features is None:  # trained image networks run channels last on the CPU too (channels_last_cpu.md)
        kernels = [v for v in reports[-1][1]["model"].values() if v.dim() == 4 and v.shape[1] > 1]
        assert kernels and all(v.is_contiguous(memory_format=torch.channels_last) for v in kernels)
    cached = [tuple(v.shape) for v in store._items.values()]
    # One entry per distinct content: the transductive target (target_train = target_val) is encoded once.
    assert sorted(cached) == (sorted({(n, features) for n in task.sizes().values()}) if features else [])
    assert len(cached) == (3 if features else 0)


def test_a_timm_backbone_brings_its_own_normalisation(folders):
    from adaptune.algorithms.loop import build
    from adaptune.algorithms.methods import get_method

    task = data.load_user_task(*folders, image_size=32)
    spec = TrialSpec(method="source_only", hparams={}, backbone="timm:tf_efficientnet_lite0", epochs=1)
    built, _, _ = build(task, spec, get_method("source_only"), {"freeze_depth": 0}, MemoryStore(),
                        torch.device("cpu"))
    x = built.source_train.x
    assert (x.mean, x.std) == ((0.5,) * 3, (0.5,) * 3)  # TensorFlow-ported weights: inputs in [-1, 1]
    assert x.fingerprint() != task.source_train.x.fingerprint()
    assert x.load([0]).min() >= -1.0 and task.source_train.x.load([0]).min() < -1.5
    # The transductive target's train and val share their files, and still do renormalised: one fingerprint.
    assert built.target_train.x is built.target_val.x
    assert pickle.loads(pickle.dumps(x)).fingerprint() == x.fingerprint()


def test_mixval_pairs_are_decoded_by_the_loader_workers(folders):
    from adaptune.algorithms.images import gather, pair_batches

    files, _ = list_image_folder(folders[0], "source", 8)
    i, j = torch.tensor([0, 4, 7, 2, 9]), torch.tensor([3, 3, 1, 8, 0])
    pairs = list(pair_batches(files, i, j, 64, torch.device("cpu"), Loading(workers=1, image_batch=4)))
    assert [len(a) for a, _ in pairs] == [2, 2, 1]  # image_batch bounds the decoded images of both sides
    assert torch.equal(torch.cat([a for a, _ in pairs]), gather(files, i))
    assert torch.equal(torch.cat([b for _, b in pairs]), gather(files, j))
