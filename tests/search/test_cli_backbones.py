"""`adaptune backbones`, and torchvision:/timm: backbones through `adaptune search` up to the point where Ray would
start: in-process, Ray never started."""

import sys

import numpy as np
import pytest
import torch

from adaptune.search.cli import main


class _Accepted(Exception):
    """The config passed every check: the search was about to start."""


@pytest.fixture(autouse=True)
def prepared(monkeypatch):
    """What ``prepare`` handed to the search, for a test to look at; the search itself never runs."""
    seen = []

    def reached(prepared, *args, **kwargs):
        seen.append(prepared)
        raise _Accepted

    monkeypatch.setattr("adaptune.search.run.run_search", reached)
    return seen


@pytest.fixture
def images(tmp_path) -> str:
    path = tmp_path / "rgb.npz"
    np.savez(path, x=np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32), y=np.arange(8) % 2)
    return str(path)


def _error_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1, err
    return err[0]


def _rows(out: str) -> dict[str, list[str]]:
    """The table of `adaptune backbones`: backbone name -> stages, features, weights accepted."""
    lines = out.split("\n\n")[0].splitlines()[1:]
    return {line.split()[0]: line.split()[1:4] for line in lines}


def test_backbones_lists_stages_width_and_weights(capsys):
    import timm

    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["lenet"] == ["3", "500", "none"] and rows["mlp"] == ["2", "256", "none"]
    assert rows["resnet18"] == ["6", "512", "file"] and rows["resnet50"][:2] == ["6", "2048"]
    assert rows["timm:convnext_tiny"] == ["6", "768", "file"]
    assert rows["timm:vit_small_patch16_224"] == ["6", "384", "file"]
    assert rows["timm:efficientnet_lite0"] == ["9", "1280", "file"]
    assert rows["timm:resnet50"] == ["6", "2048", "file"]
    assert rows["timm:mobilenetv3_large_100"][0] == "1"  # a family without a stage cut
    assert f"models of timm {timm.__version__}" in out and "timm.list_models(" in out
    assert len(out.splitlines()) <= 16 and "never downloads" in out


def test_backbones_without_timm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # what `import timm` meets where timm is not installed
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "timm:NAME  needs timm: pip install 'timm>=1.0,<2'" in out
    assert not any(name.startswith("timm:") for name in _rows(out)) and "resnet18" in _rows(out)


def test_timm_backbone_with_weights_reaches_the_search(capsys, images, tmp_path, prepared):
    import timm

    weights = tmp_path / "convnext.pt"
    torch.save(timm.create_model("convnext_atto", pretrained=False, num_classes=7).state_dict(), weights)
    with pytest.raises(_Accepted):
        main(["search", "--source", images, "--target", images, "--backbone", "timm:convnext_atto", "--weights",
              str(weights), "--out", str(tmp_path / "run"), "--quiet"])
    assert prepared[0].backbone == "timm:convnext_atto"
    assert prepared[0].ranges["freeze_depth"] == (0, 6)  # pretrained: every stage may be frozen
    notices = [line for line in capsys.readouterr().err.splitlines() if "classifier" in line]
    assert notices == [f"adaptune: weights {weights}: classifier for 7 classes not used; adaptune trains a new "
                       "head for the task's classes"]


def test_unknown_timm_model(capsys, images, tmp_path):
    line = _error_line(capsys, ["search", "--source", images, "--target", images, "--backbone",
                                "timm:convnext_tinyy", "--out", str(tmp_path / "run")])
    assert line.startswith("adaptune: error: backbone: unknown timm model 'convnext_tinyy'; did you mean ")


def test_timm_not_installed(capsys, images, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    line = _error_line(capsys, ["search", "--source", images, "--target", images, "--backbone", "timm:resnet18",
                                "--out", str(tmp_path / "run")])
    assert line == "adaptune: error: backbone: timm: backbones need the timm package (pip install 'timm>=1.0,<2')"


def test_weights_for_another_architecture(capsys, images, tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pt")
    line = _error_line(capsys, ["search", "--source", images, "--target", images, "--backbone",
                                "timm:convnext_atto", "--weights", str(tmp_path / "r18.pt"),
                                "--out", str(tmp_path / "run")])
    assert line.startswith(f"adaptune: error: weights: weights in {tmp_path / 'r18.pt'} do not fit "
                           "timm:convnext_atto: ")
    assert not (tmp_path / "run").exists()


def test_an_image_folder_search_starts_without_decoding_the_folder(tmp_path, prepared):
    from PIL import Image

    for name in ("a/0.png", "a/1.png", "b/0.png", "b/1.png", "b/2.png"):
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "src" / name)
    # Only the header of b/2.png survives: a driver that decoded the folder would fail on it.
    body = tmp_path / "src" / "b" / "2.png"
    body.write_bytes(body.read_bytes()[:60])
    with pytest.raises(_Accepted):
        main(["search", "--source", str(tmp_path / "src"), "--target", str(tmp_path / "src"), "--image-size", "32",
              "--augment", "crop", "--backbone", "resnet18", "--out", str(tmp_path / "run"), "--quiet"])
    c = prepared[0].config
    assert (c.image_size, c.augment) == (32, "crop") and prepared[0].task.input_shape == (3, 32, 32)
    assert "image_size" in c.identity() and "augment" in c.identity()


def test_unknown_augmentation(capsys, tmp_path):
    line = _error_line(capsys, ["search", "--task", "mnist->usps", "--augment", "mixup", "--out", str(tmp_path / "r")])
    assert line == "adaptune: error: augment: expected one of crop-flip, crop, none, got 'mixup'"
