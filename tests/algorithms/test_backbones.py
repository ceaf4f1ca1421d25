import pytest
import torch

from adaptune.algorithms.backbones import build_backbone
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
