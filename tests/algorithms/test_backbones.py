import re
import socket
import sys

import pytest
import torch
from torch import nn

from adaptune.algorithms.backbones import BackboneNotice, build_backbone, pretrained_backbones
from adaptune.algorithms.errors import InputError

# Checkpoints of torchvision models carry a 1000-class classifier, which the backbone leaves out with a notice.
IMAGENET_HEAD = r"classifier for 1000 classes not used; adaptune trains a new head"


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
    with pytest.warns(BackboneNotice, match=IMAGENET_HEAD):
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
                                "for resnet18, resnet50, torchvision:NAME and timm:NAME")
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
    (tmp_path / "junk.safetensors").write_bytes(bytes(range(256)))
    return [
        ("object.pt", "is not one (Unsupported"),
        ("random.pth", "is not one ("),
        ("list.pt", "is not one (it holds a list)"),
        ("nested.pt", "is not one (it holds a mapping, but not one of parameter names to tensors)"),
        ("one_channel.pt", "do not fit resnet18: conv1.weight has shape (64, 1, 7, 7), expected (64, 3, 7, 7)"),
        ("other_model.pt", "do not fit resnet18: 100 tensors missing (conv1.weight, bn1.weight, bn1.bias, ...); "
                           "1 unexpected (encoder.weight)"),
        ("junk.safetensors", "expected a safetensors file of tensors for resnet18, "),
    ]


def test_unusable_weights_files_are_one_line_errors(tmp_path):
    for filename, phrase in _bad_weights(tmp_path):
        path = str(tmp_path / filename)
        with pytest.raises(InputError) as error:
            build_backbone("resnet18", (3, 32, 32), weights=path)
        message = str(error.value)
        assert error.value.field == "weights" and "\n" not in message and path in message, message
        assert phrase in message, message
        if "is not one" in phrase and not filename.endswith(".safetensors"):
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
        with pytest.warns(BackboneNotice, match=IMAGENET_HEAD):
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


# --- torchvision: and timm: backbones ------------------------------------------------------------------------------

# name, input side, stages. vit_tiny's checkpoint is for 224x224 inputs; the mobilenet has no stage cut (one stage).
FAMILIES = [
    ("resnet18", 64, 6),
    ("timm:efficientnet_lite0", 64, 9),
    ("timm:convnext_atto", 64, 6),
    ("timm:vit_tiny_patch16_224", 224, 6),
    ("timm:mobilenetv3_small_050", 64, 1),
]
# How each source model's checkpoint is written: a plain state dict unless named here.
SAVED_AS = {"timm:efficientnet_lite0": "safetensors", "timm:convnext_atto": "model", "resnet18": "state_dict"}


def _source_model(name: str, num_classes: int) -> nn.Module:
    """The model a user trained: random weights (every float tensor scaled at random, BatchNorm statistics
    included, so nothing matches a fresh init) and a classifier for ``num_classes``."""
    if name.startswith("timm:"):
        import timm

        model = timm.create_model(name.removeprefix("timm:"), pretrained=False, num_classes=num_classes)
    else:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(torch.empty_like(tensor).uniform_(0.5, 1.5))
    return model.eval()


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What a backbone should output: the model's pooled features without its classifier."""
    with torch.no_grad():
        if hasattr(model, "forward_head"):  # timm
            return model.forward_head(model.forward_features(x), pre_logits=True)
        return nn.Sequential(*list(model.children())[:-1])(x).flatten(1)  # torchvision ResNet: all but fc


def _save(model: nn.Module, path, saved_as: str = "plain") -> None:
    state = model.state_dict()
    if saved_as == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state if saved_as == "plain" else {"epoch": 3, saved_as: state}, path)


@pytest.mark.parametrize(("name", "side", "depth"), FAMILIES)
def test_weights_file_gives_the_source_models_features(tmp_path, name, side, depth):
    source = _source_model(name, num_classes=7)
    saved_as = SAVED_AS.get(name, "plain")
    path = tmp_path / ("weights.safetensors" if saved_as == "safetensors" else "weights.pth")
    _save(source, path, saved_as)
    notice = rf"weights {re.escape(str(path))}: classifier for 7 classes not used; adaptune trains a new head"
    with pytest.warns(BackboneNotice, match=notice):
        backbone = build_backbone(name, (3, side, side), weights=str(path))
    x = torch.randn(2, 3, side, side)
    expected = _features(source, x)
    assert backbone.depth == depth and backbone.out_features == expected.shape[1] and backbone.weights == str(path)
    with torch.no_grad():
        assert torch.allclose(backbone.blocks.eval()(x), expected, atol=1e-5)


def test_timm_resnet_loads_a_torchvision_checkpoint(tmp_path):
    # timm's ResNet keeps torchvision's parameter names: torchvision checkpoints serve timm:resnet* as they are.
    source = _source_model("resnet18", num_classes=1000)
    _save(source, tmp_path / "r18.pt")
    with pytest.warns(BackboneNotice, match=IMAGENET_HEAD):
        backbone = build_backbone("timm:resnet18", (3, 64, 64), weights=str(tmp_path / "r18.pt"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(backbone.blocks.eval()(x), _features(source, x), atol=1e-5)


def test_vit_takes_any_image_size():
    backbone = build_backbone("timm:vit_tiny_patch16_224", (3, 64, 64)).blocks.eval()
    with torch.no_grad():
        for side in (64, 72):  # 72: not a multiple of the patch size, padded
            assert backbone(torch.randn(2, 3, side, side)).shape == (2, 192)


def test_checkpoint_with_a_missing_or_an_extra_backbone_tensor_is_refused(tmp_path):
    state = _source_model("timm:convnext_atto", num_classes=7).state_dict()
    del state["stages.2.blocks.0.conv_dw.weight"]
    state["projector.weight"] = torch.zeros(4, 320)
    path = tmp_path / "convnext.pt"
    torch.save(state, path)
    with pytest.raises(InputError) as error:
        build_backbone("timm:convnext_atto", (3, 64, 64), weights=str(path))
    assert str(error.value) == (f"weights: weights in {path} do not fit timm:convnext_atto: 1 tensor missing "
                                "(stages.2.blocks.0.conv_dw.weight); 1 unexpected (projector.weight)")


def test_weights_of_another_architecture_are_one_line(tmp_path):
    _save(_source_model("timm:convnext_atto", num_classes=7), tmp_path / "convnext.safetensors", "safetensors")
    with pytest.raises(InputError) as error:
        build_backbone("timm:efficientnet_lite0", (3, 64, 64), weights=str(tmp_path / "convnext.safetensors"))
    message = str(error.value)
    assert message.startswith(f"weights: weights in {tmp_path / 'convnext.safetensors'} do not fit "
                              "timm:efficientnet_lite0: ") and "\n" not in message
    # No classifier for this architecture's: convnext's head.fc is a tensor like any other here.
    assert re.search(r"tensors missing \(conv_stem.weight, bn1.weight, bn1.bias, ...\); \d+ unexpected "
                     r"\(head.fc.bias, head.fc.weight, head.norm.bias, ...\)$", message), message


def test_timm_weights_come_only_from_a_file(tmp_path):
    with pytest.raises(InputError) as error:
        build_backbone("timm:convnext_atto", (3, 64, 64), weights="in1k")
    assert str(error.value) == ("weights: expected a weights file (.pt, .pth, .safetensors) for timm:convnext_atto, "
                                "got 'in1k'; adaptune never downloads weights, so pretrained names are not looked up")


def test_building_never_reaches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a backbone reached for the network")

    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    # A name with a pretrained tag selects timm's config for those weights; the model is still random init.
    assert build_backbone("timm:convnext_atto.d2_in1k", (3, 64, 64)).out_features == 320


@pytest.mark.parametrize(("name", "expected"), [
    ("timm:convnext_tinyy", "backbone: unknown timm model 'convnext_tinyy'; did you mean convnext_tiny, "),
    ("timm:hf-hub:someone/model", "backbone: 'hf-hub:someone/model' is read from a hub or a folder; "),
    ("timm:convnext_atto.no_such_tag", "backbone: timm cannot create 'convnext_atto.no_such_tag' (Invalid "
                                       "pretrained tag (no_such_tag) for convnext_atto.)"),
    ("torchvision:vgg16", "backbone: torchvision:vgg16 is not a ResNet; torchvision backbones are its ResNets ("),
    ("torchvision:resnet19", "backbone: unknown torchvision model 'resnet19'; expected one of its ResNets: "),
    ("vgg", "backbone: unknown backbone 'vgg'; expected one of: lenet, mlp, resnet18, resnet50, torchvision:NAME, "
            "timm:NAME"),
])
def test_unknown_names_are_one_line(name, expected):
    with pytest.raises(InputError) as error:
        build_backbone(name, (3, 64, 64))
    assert str(error.value).startswith(expected) and "\n" not in str(error.value), str(error.value)


def test_timm_backbones_without_timm(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # what `import timm` meets where timm is not installed
    with pytest.raises(InputError) as error:
        build_backbone("timm:resnet18", (3, 64, 64))
    assert str(error.value) == "backbone: timm: backbones need the timm package (pip install 'timm>=1.0,<2')"


@pytest.mark.parametrize("name", ["timm:efficientnet_lite0", "timm:vit_tiny_patch16_224"])
def test_split_freezes_exactly_the_first_stages(name):
    backbone = build_backbone(name, (3, 64, 64))
    for depth in range(backbone.depth + 1):
        frozen, trainable = backbone.split(depth)
        assert [*frozen, *trainable] == [*backbone.blocks] and len(frozen) == depth
        assert not any(p.requires_grad for p in frozen.parameters())
        assert all(p.requires_grad for p in trainable.parameters())
    x = torch.randn(2, 3, 64, 64)
    frozen, trainable = backbone.split(2)
    with torch.no_grad():
        assert torch.allclose(trainable.eval()(frozen(x)), backbone.blocks.eval()(x), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "timm:efficientnet_lite0"])
def test_frozen_batchnorm_stays_in_eval_mode_in_training(name):
    backbone = build_backbone(name, (3, 64, 64))
    frozen, trainable = backbone.split(3)
    norms = [m for m in frozen.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    statistics = {k: v.clone() for k, v in frozen.state_dict().items()}
    # The loop puts the classifier around the trainable stages in train mode; a module that holds the frozen
    # stages too must not wake them either.
    nn.Sequential(trainable, nn.Linear(backbone.out_features, 3)).train()
    whole = nn.Sequential(frozen, trainable).train()
    whole(torch.randn(4, 3, 64, 64))
    assert norms and not any(m.training for m in frozen.modules())
    assert all(m.training for m in trainable.modules())
    assert all(torch.equal(statistics[k], v) for k, v in frozen.state_dict().items())
