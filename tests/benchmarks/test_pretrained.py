"""benchmarks.pretrained without the bench extra: the weight-name mapping on a synthetic checkpoint, the digit
folder writer, the search configs and the run reader."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import pretrained

# efficientnet_pytorch's module names, written out independently of the mapping under test.
TO_SOURCE_TOP = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1",
                 "classifier": "_fc"}
TO_SOURCE_SEPARABLE = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
TO_SOURCE_INVERTED = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                      "conv_pwl": "_project_conv", "bn3": "_bn2"}


@pytest.fixture(scope="module")
def timm_lite0():
    timm = pytest.importorskip("timm")
    return timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()


def as_efficientnet_pytorch(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A checkpoint in efficientnet_pytorch's names with ``model``'s shapes, as the bench extra's file would be:
    timm's own initialisation for the convolutions, random BatchNorm parameters and statistics (which stay near
    the identity, so a signal survives every block)."""
    generator = torch.Generator().manual_seed(0)
    flat = {}  # (stage, position) -> the flat block index efficientnet_pytorch numbers blocks by
    for stage, blocks in enumerate(model.blocks):
        for position in range(len(blocks)):
            flat[stage, position] = len(flat)
    state = {}
    for key, tensor in model.state_dict().items():
        parts = key.split(".")
        if parts[0] == "blocks":
            stage, position, module = int(parts[1]), int(parts[2]), parts[3]
            names = TO_SOURCE_SEPARABLE if stage == 0 else TO_SOURCE_INVERTED
            name = f"_blocks.{flat[stage, position]}.{names[module]}.{parts[4]}"
        else:
            name = f"{TO_SOURCE_TOP[parts[0]]}.{parts[1]}"
        if tensor.dtype == torch.long:  # num_batches_tracked
            state[name] = torch.tensor(7)
        elif parts[-2].startswith("bn") and parts[-1] == "running_var":
            state[name] = 0.5 + torch.rand(tensor.shape, generator=generator)
        elif parts[-2].startswith("bn"):  # weight, bias and running mean near the identity
            state[name] = (parts[-1] == "weight") + 0.1 * torch.randn(tensor.shape, generator=generator)
        else:  # convolutions and the classifier: timm's initialisation
            state[name] = tensor.clone()
    return state


def test_mapping_places_every_tensor_where_timm_expects_it(timm_lite0):
    source = as_efficientnet_pytorch(timm_lite0)
    mapped = pretrained.map_efficientnet_pytorch(source, [len(stage) for stage in timm_lite0.blocks])
    assert set(mapped) == set(timm_lite0.state_dict())
    # Spot checks written from the two naming schemes, not from the code under test.
    assert mapped["blocks.0.0.conv_pw.weight"] is source["_blocks.0._project_conv.weight"]
    assert mapped["blocks.1.0.conv_pw.weight"] is source["_blocks.1._expand_conv.weight"]
    assert mapped["blocks.1.0.bn3.running_var"] is source["_blocks.1._bn2.running_var"]
    assert mapped["blocks.6.0.conv_pwl.weight"] is source["_blocks.15._project_conv.weight"]
    assert mapped["bn2.running_mean"] is source["_bn1.running_mean"]
    assert mapped["classifier.bias"] is source["_fc.bias"]
    timm_lite0.load_state_dict(mapped, strict=True)


def test_timm_tf_lite0_with_mapped_weights_matches_the_reference_forward(timm_lite0):
    """The reference pass reads efficientnet_pytorch names: a misplaced tensor of the right shape changes logits."""
    source = as_efficientnet_pytorch(timm_lite0)
    timm_lite0.load_state_dict(pretrained.map_efficientnet_pytorch(source, [len(s) for s in timm_lite0.blocks]))
    x = torch.randn(2, 3, 33, 33, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, ours = pretrained.reference_logits(source, x), timm_lite0(x)
    assert not torch.allclose(reference[0], reference[1], atol=1e-2)  # the inputs still matter at the logits
    assert torch.allclose(ours, reference, atol=1e-4 * float(reference.abs().max()))
    swapped = dict(source)
    swapped["_blocks.2._bn0.running_var"], swapped["_blocks.2._bn1.running_var"] = (
        source["_blocks.2._bn1.running_var"], source["_blocks.2._bn0.running_var"])
    with torch.no_grad():
        assert not torch.allclose(pretrained.reference_logits(swapped, x), ours, atol=1e-3)


def test_mapping_refuses_a_checkpoint_of_another_depth(timm_lite0):
    source = as_efficientnet_pytorch(timm_lite0)
    lengths = [len(stage) for stage in timm_lite0.blocks]
    with pytest.raises(ValueError, match="expected blocks 0..14"):
        pretrained.map_efficientnet_pytorch(source, [*lengths[:-1], 0])
    with pytest.raises(ValueError, match="unexpected key"):
        pretrained.map_efficientnet_pytorch({**source, "_swish.weight": torch.zeros(1)}, lengths)


def test_folding_the_epsilon_keeps_what_batchnorm_computes():
    state = {"bn.running_var": torch.tensor([0.0, 2.0]), "bn.weight": torch.tensor([1.0, 1.0])}
    folded = pretrained.fold_bn_eps(state, 1e-3, 1e-5)
    assert torch.allclose(folded["bn.running_var"] + 1e-5, state["bn.running_var"] + 1e-3)
    assert folded["bn.weight"] is state["bn.weight"]


def test_stratified_subsample_keeps_class_shares_and_is_fixed():
    y = np.repeat(np.arange(10), [50, 100, 50, 100, 50, 100, 50, 100, 50, 100])
    chosen = pretrained.stratified_subsample(y, 150)
    assert len(chosen) == 150 and np.array_equal(chosen, pretrained.stratified_subsample(y, 150))
    assert np.bincount(y[chosen], minlength=10).tolist() == [10, 20] * 5
    assert len(pretrained.stratified_subsample(y, 10_000)) == len(y)


def test_folder_writer_makes_grey_rgb_pngs_in_class_subfolders(tmp_path):
    from PIL import Image

    images = np.zeros((5, 16, 16), dtype=np.uint8)
    images[:, 4:12, 6:10] = np.arange(1, 6, dtype=np.uint8)[:, None, None] * 40
    labels = np.array([3, 1, 3, 0, 1])
    folder = tmp_path / "usps"
    assert pretrained.write_image_folder(images, labels, str(folder), 32) == 5
    assert sorted(p.name for p in folder.iterdir()) == ["0", "1", "3"]
    assert sorted(p.name for p in (folder / "3").iterdir()) == ["00000.png", "00002.png"]
    with Image.open(folder / "3" / "00002.png") as image:
        assert image.mode == "RGB" and image.size == (32, 32)
        pixels = np.asarray(image)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert pixels.max() == 120 and pixels[0, 0, 0] == 0  # the third image's stroke, on black
    assert not (tmp_path / "usps.partial").exists()


def test_search_configs_pin_the_freeze_depth():
    settings = {s.name: s for s in pretrained.settings(9)}
    assert [s.freeze_depth for s in settings.values()] == [9, 5, 0, None]
    plan = pretrained.QUICK_PLAN
    config = pretrained.search_config(settings["partial"], plan, "/d/mnist", "/d/usps", "/w.safetensors")
    assert config["search_space"] == {"freeze_depth": [5, 5]}
    assert config["backbone"] == "timm:tf_efficientnet_lite0" and config["weights"] == "/w.safetensors"
    assert config["image_size"] == 64 and config["augment"] == "none"
    lenet = pretrained.search_config(settings["lenet"], plan, "/d/mnist", "/d/usps", "/w.safetensors")
    assert lenet["image_size"] == 28 and "weights" not in lenet and "search_space" not in lenet
    assert lenet["source"] == "/d/mnist"


def test_outcome_reads_best_by_proxy_oracle_and_ensemble(tmp_path):
    import pandas as pd

    from adaptune.reports.run_dir import RunDir

    run = RunDir(str(tmp_path))
    run.write_table(RunDir.LEADERBOARD, pd.DataFrame([
        {"trial_id": "a", "status": "completed", "method": "dann", "freeze_depth": 5, "lr": 0.01, "rank": 1,
         "target_acc": 0.70},
        {"trial_id": "b", "status": "stopped", "method": "source_only", "freeze_depth": 5, "lr": 0.003, "rank": 2,
         "target_acc": 0.80},
        {"trial_id": "c", "status": "completed", "method": "linear_probe", "freeze_depth": None, "lr": math.nan,
         "rank": 3, "target_acc": 0.60},
        {"trial_id": "d", "status": "error", "method": "mcc", "freeze_depth": 5, "lr": 0.1, "rank": None,
         "target_acc": 0.99},
        {"trial_id": "ensemble-top3", "status": "ensemble", "method": "ensemble", "freeze_depth": None,
         "lr": math.nan, "rank": None, "target_acc": 0.75},
    ]))
    run.write_summary({"steps_used": 420, "recommendation": {"kind": "ensemble", "target_acc": 0.75}})
    outcome = pretrained.read_outcome(str(tmp_path), 12.0)
    assert outcome.best_by_proxy == {"method": "dann", "freeze_depth": "5", "lr": "0.01", "target_acc": 70.0}
    assert outcome.best_by_oracle["method"] == "source_only"  # the errored trial's accuracy does not count
    assert outcome.ensemble_acc == pytest.approx(75.0) and outcome.recommended == "ensemble 75.0"
    assert outcome.trials == 4 and outcome.steps == 420
    row = pretrained.outcome_row("M->U", pretrained.settings(9)[1], outcome)
    assert len(row) == len(pretrained.COLUMNS)
    page = pretrained.write_page(str(tmp_path / "page.md"), [row], [pretrained.Check("c", True, "ok")], {
        "settings": [("partial", "partial")], "per_domain": 10, "folder_size": 64, "sizes": "", "proxy": "bnm_ts",
        "plan": "1 trial"})
    text = open(page).read()
    assert "| M->U | partial | 4 | dann (fd 5, lr 0.01) | 70.0 |" in text and "python -m" in text
