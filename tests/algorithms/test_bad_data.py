"""Bad user data ends `adaptune search` with one error line and exit code 2, before Ray starts."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from adaptune.search import cli


@pytest.fixture
def search(monkeypatch, tmp_path, capsys):
    """Run ``adaptune search ARGS`` in-process; returns the one stderr line it fails with."""

    def never_started(*_, **__):
        raise AssertionError("the config passed validation and the search would have started Ray")

    monkeypatch.setattr("adaptune.search.run.run_search", never_started)
    for name in ("RAY_USAGE_STATS_ENABLED", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S",
                 "RAY_AIR_NEW_OUTPUT"):
        monkeypatch.setenv(name, "0")  # what main sets, undone after the test

    def run(*args: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            cli.main(["search", *args, "--out", str(tmp_path / "run"), "--quiet"])
        assert exit_.value.code == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("adaptune: error: "), captured.err
        return lines[0].removeprefix("adaptune: error: ")

    return run


def npz(path, x, y=None) -> str:
    np.savez(path, x=x, **({} if y is None else {"y": y}))
    return str(path)


@pytest.fixture
def features(tmp_path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    return {
        "source": npz(tmp_path / "src.npz", rng.normal(size=(40, 4)), np.arange(40) % 2),
        "target": npz(tmp_path / "tgt.npz", rng.normal(size=(10, 4)), np.arange(10) % 2),
        "one_each": npz(tmp_path / "one_each.npz", rng.normal(size=(3, 4)), np.array([0, 1, 3])),
        "one_class": npz(tmp_path / "one_class.npz", rng.normal(size=(8, 4)), np.zeros(8, int)),
        "no_features": npz(tmp_path / "no_features.npz", np.zeros((8, 0)), np.arange(8) % 2),
        "unlabeled": npz(tmp_path / "unlabeled.npz", rng.normal(size=(10, 4))),
    }


def test_source_without_a_validation_split(search, features):
    line = search("--source", features["one_each"], "--target", features["unlabeled"])
    assert line == (f"source: {features['one_each']}: expected at least 2 labeled samples per class to hold out a "
                    "validation split, class 0 has 1")


def test_fewshot_k_larger_than_the_target_classes(search, features):
    line = search("--source", features["source"], "--target", features["target"], "--fewshot-k", "100000")
    assert line == "fewshot_k: expected at most 4 per class (the smallest target class, 0, has 5 samples), got 100000"


@pytest.mark.parametrize("case, field, phrase", [
    ("one_class", "source", "expected labeled samples of at least 2 classes, found only class 0"),
    ("no_features", "source", "which hold no values"),
])
def test_degenerate_source(search, features, case, field, phrase):
    line = search("--source", features[case], "--target", features["unlabeled"])
    assert line.startswith(f"{field}: ") and phrase in line


def test_target_without_features(search, features):
    line = search("--source", features["source"], "--target", features["no_features"])
    assert line.startswith(f"target: {features['no_features']} has samples of shape (0,)")


def test_parquet_target_with_renamed_columns(search, tmp_path):
    frame = pd.DataFrame({"width": np.arange(20.0), "height": np.arange(20.0) % 3, "label": np.arange(20) % 2})
    frame.to_parquet(tmp_path / "src.parquet")
    frame.rename(columns={"height": "depth"}).to_parquet(tmp_path / "tgt.parquet")
    line = search("--source", str(tmp_path / "src.parquet"), "--target", str(tmp_path / "tgt.parquet"))
    assert line.startswith(f"target: feature columns of {tmp_path / 'tgt.parquet'} do not match the source: "
                           "missing height; extra depth")


def test_decompression_bomb_in_an_image_folder(search, tmp_path, monkeypatch):
    for name in ("a/0.png", "a/1.png", "b/0.png", "b/1.png", "b/big.png"):
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (60, 50) if "big" in name else (8, 8)).save(tmp_path / "src" / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3000 pixels: past twice the limit, PIL refuses
    line = search("--source", str(tmp_path / "src"), "--target", str(tmp_path / "src"))
    assert line.startswith(f"source: image {tmp_path / 'src' / 'b' / 'big.png'} is too large to decode safely")


@pytest.fixture
def images(tmp_path) -> str:
    return npz(tmp_path / "rgb.npz", np.zeros((8, 3, 32, 32), np.float32), np.arange(8) % 2)


@pytest.mark.parametrize("backbone", ["mlp", "lenet"])
def test_weights_for_a_backbone_without_pretrained_weights(search, features, tmp_path, backbone):
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    grey = npz(tmp_path / "grey.npz", np.zeros((8, 28, 28), np.uint8), np.arange(8) % 2)
    data = features["source"] if backbone == "mlp" else grey
    line = search("--source", data, "--target", data, "--backbone", backbone, "--weights", str(tmp_path / "w.pt"))
    assert line == (f"weights: expected no weights for the {backbone} backbone; pretrained weights exist for "
                    "resnet18, resnet50, torchvision:NAME and timm:NAME")


class Payload:
    pass


@pytest.mark.parametrize("content", ["pickle", "random", "list"])
def test_weights_file_that_is_not_a_state_dict(search, images, tmp_path, content):
    path = tmp_path / "weights.pt"
    if content == "pickle":
        path.write_bytes(pickle.dumps(Payload(), protocol=2))
    elif content == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    else:
        torch.save([torch.zeros(2)], path)
    line = search("--source", images, "--target", images, "--backbone", "resnet18", "--weights", str(path))
    assert line.startswith(f"weights: expected a PyTorch state dict (.pt/.pth) for resnet18, {path} is not one (")


def test_weights_of_the_wrong_shapes(search, images, tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pt")
    line = search("--source", images, "--target", images, "--backbone", "resnet18", "--weights",
                  str(tmp_path / "r50.pt"))
    assert line.startswith(f"weights: weights in {tmp_path / 'r50.pt'} do not fit resnet18: ")


def test_bare_weights_name_not_in_the_cache(search, images, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    line = search("--source", images, "--target", images, "--backbone", "resnet18", "--weights", "IMAGENET1K_V1")
    assert line.startswith("weights: IMAGENET1K_V1 is not in the local cache (")
    assert "resnet18-f37072fd.pth" in line and "never downloads" in line
    assert not (tmp_path / "torch").exists()
