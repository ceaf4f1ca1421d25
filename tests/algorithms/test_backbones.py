import pytest
import torch

from adaptune.algorithms.backbones import build_backbone, pretrained_backbones
from adaptune.algorithms.errors import InputError


def test_lenet_blocks_and_feature_width():
    backbone = build_backbone("lenet", (1, 28, 28))
    assert backbone.depth == 3 and backbone.out_features == 500
    assert backbone.blocks(torch.zeros(2, 1, 28, 28)).shape == (2, 500)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_split_freezes_exactly_the_prefix(depth):
    backbone = build_backbone("mlp", (8,))
    frozen, trainable = backbone.split(depth)
    assert len(frozen) == depth and len(trainable) == backbone.depth - depth
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in trainable.parameters())
    x = torch.randn(4, 8)
    backbone.blocks.eval(), trainable.eval()
    assert torch.allclose(trainable(frozen(x)), backbone.blocks(x))


def test_freeze_depth_out_of_range_is_an_input_error():
    with pytest.raises(InputError) as error:
        build_backbone("mlp", (8,)).split(5)
    assert error.value.field == "freeze_depth"


def test_resnet18_weights_from_a_local_file(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pt"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone("resnet18", (3, 64, 64), weights=str(path))
    assert backbone.depth == 6 and backbone.out_features == 512
    assert torch.equal(backbone.blocks[0][0].weight, reference.conv1.weight)


def test_torchvision_weights_name_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(InputError) as error:
        build_backbone("resnet18", (3, 64, 64), weights="ResNet18_Weights.IMAGENET1K_V1")
    assert error.value.field == "weights" and "never downloads" in str(error.value)
    assert not any(tmp_path.rglob("*.pth"))


def test_unknown_backbone():
    with pytest.raises(InputError) as error:
        build_backbone("vgg", (3, 32, 32))
    assert error.value.field == "backbone"


@pytest.mark.parametrize("name, shape", [("mlp", (8,)), ("lenet", (1, 28, 28))])
def test_weights_for_a_backbone_without_pretrained_weights(name, shape):
    with pytest.raises(InputError) as error:
        build_backbone(name, shape, weights="ResNet18_Weights.IMAGENET1K_V1")
    assert error.value.field == "weights"
    assert str(error.value) == (f"weights: expected no weights for the {name} backbone; pretrained weights exist "
                                "for resnet18, resnet50")
    assert pretrained_backbones() == ("resnet18", "resnet50")


class _NotAStateDict:
    pass


def _bad_weights(tmp_path):
    import pickle

    import torchvision

    (tmp_path / "object.pt").write_bytes(pickle.dumps(_NotAStateDict()))
    (tmp_path / "random.pth").write_bytes(bytes(range(256)) * 4)
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    torch.save({"epoch": 3, "state_dict": {}}, tmp_path / "nested.pt")
    wrong = torchvision.models.resnet18(weights=None, num_classes=10).state_dict()
    wrong["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(wrong, tmp_path / "one_channel.pt")
    torch.save({"encoder.weight": torch.zeros(2)}, tmp_path / "other_model.pt")
    return [
        ("object.pt", "is not one (Unsupported"),
        ("random.pth", "is not one ("),
        ("list.pt", "is not one (it holds a list)"),
        ("nested.pt", "is not one (it holds a mapping, but not one of parameter names to tensors)"),
        ("one_channel.pt", "do not fit resnet18: conv1.weight has shape (64, 1, 7, 7), expected (64, 3, 7, 7)"),
        ("other_model.pt", "do not fit resnet18: 100 tensors missing (conv1.weight, bn1.weight, bn1.bias, ...)"),
    ]


def test_unusable_weights_files_are_one_line_errors(tmp_path):
    for filename, phrase in _bad_weights(tmp_path):
        path = str(tmp_path / filename)
        with pytest.raises(InputError) as error:
            build_backbone("resnet18", (3, 32, 32), weights=path)
        message = str(error.value)
        assert error.value.field == "weights" and "\n" not in message and path in message, message
        assert phrase in message, message
        if "is not one" in phrase:
            assert f"expected a PyTorch state dict (.pt/.pth) for resnet18, {path} is not one" in message


def test_bare_torchvision_weights_name_resolves_in_the_local_cache(tmp_path, monkeypatch):
    import torchvision
    from torchvision.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    reference = torchvision.models.resnet18(weights=None)
    assert ResNet18_Weights.IMAGENET1K_V1.url.endswith("/resnet18-f37072fd.pth")
    torch.save(reference.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    for name in ("IMAGENET1K_V1", "DEFAULT", "ResNet18_Weights.IMAGENET1K_V1"):
        backbone = build_backbone("resnet18", (3, 32, 32), weights=name)
        assert backbone.weights == name and torch.equal(backbone.blocks[0][0].weight, reference.conv1.weight)

    with pytest.raises(InputError) as error:  # resnet50's cache file is absent: still never downloaded
        build_backbone("resnet50", (3, 32, 32), weights="IMAGENET1K_V2")
    assert "resnet50-11ad3fa6.pth" in str(error.value) and "never downloads" in str(error.value)
    for name, phrase in (("IMAGENET1K_V9", "IMAGENET1K_V1, DEFAULT"),
                         ("ResNet50_Weights.IMAGENET1K_V1", "weights of another architecture")):
        with pytest.raises(InputError) as error:
            build_backbone("resnet18", (3, 32, 32), weights=name)
        assert error.value.field == "weights" and phrase in str(error.value), str(error.value)
    assert sorted(p.name for p in tmp_path.rglob("*.pth")) == ["resnet18-f37072fd.pth"]
