import pytest
import torch
import torch.nn.functional as F

from adaptune.algorithms.errors import InputError
from adaptune.algorithms.hparams import ADV_WEIGHT, FREEZE_DEPTH, LR
from adaptune.algorithms.methods import METHODS, Batch, Method, get_method, register
from adaptune.algorithms.methods.adversarial import DANN
from adaptune.algorithms.methods.losses import grl_ramp, reverse_gradient


def _batch(seed=0, progress=0.5):
    g = torch.Generator().manual_seed(seed)
    fs, ft = torch.randn(16, 8, generator=g, requires_grad=True), torch.randn(16, 8, generator=g) + 2.0
    ft.requires_grad_(True)
    head = torch.nn.Linear(8, 3)
    return Batch(fs, head(fs), torch.randint(0, 3, (16,), generator=g), ft, head(ft), progress)


def test_registry_has_skeleton_methods():
    assert {"source_only", "dann"} <= set(METHODS)
    with pytest.raises(InputError) as error:
        get_method("nope")
    assert error.value.field == "methods" and "dann" in str(error.value)


def test_params_with_one_name_share_one_distribution():
    seen = {}
    for cls in METHODS.values():
        for p in cls.params:
            assert seen.setdefault(p.name, p) == p, f"{p.name} declared twice with different ranges"


def test_reverse_gradient_flips_and_scales():
    x = torch.ones(3, requires_grad=True)
    reverse_gradient(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -0.5))
    assert grl_ramp(0.0) == 0.0 and grl_ramp(1.0) > 0.99


def test_dann_adversarial_term_changes_feature_gradients():
    torch.manual_seed(0)
    grads = {}
    for weight in (0.0, 1.0):
        batch = _batch()
        method = DANN({"adv_weight": weight, "disc_hidden": 256}, 8, 3)
        loss, logs = method.loss(batch)
        loss.backward()
        grads[weight] = batch.target_features.grad
        assert set(logs) == {"cls_loss", "adv_loss", "domain_acc"}
    # with weight 0 the target features get no gradient at all; with weight > 0 the reversed one
    assert grads[0.0] is None or torch.count_nonzero(grads[0.0]) == 0
    assert torch.count_nonzero(grads[1.0]) > 0


def test_dann_weight_zero_equals_source_only_loss():
    batch = _batch()
    dann_loss, _ = DANN({"adv_weight": 0.0, "disc_hidden": 256}, 8, 3).loss(batch)
    source_loss, _ = get_method("source_only")({}, 8, 3).loss(batch)
    assert dann_loss.item() == pytest.approx(source_loss.item())
    assert source_loss.item() == pytest.approx(F.cross_entropy(batch.source_logits, batch.source_labels).item())


TRAINED = sorted(n for n, c in METHODS.items() if not c.feature_extraction)
CLOSED_FORM = sorted(n for n, c in METHODS.items() if c.feature_extraction)


@pytest.mark.parametrize("name", TRAINED)
def test_each_method_step_lowers_its_loss_on_a_tiny_problem(name, blobs_task):
    from adaptune.algorithms.loop import TrialSpec, run_trial

    losses = []
    run_trial(blobs_task, TrialSpec(name, {"lr": 0.01, "adv_weight": 0.1}, "mlp", epochs=4, batch_size=16),
              lambda metrics, state: losses.append(metrics["train_cls_loss"]))
    assert len(losses) == 4
    assert losses[-1] < losses[0] * 0.7


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_closed_form_methods_report_once_with_a_converged_head(name, blobs_task):
    """Feature-extraction methods fit their head to convergence: one report, as complete as a full trial, and a
    held-out source accuracy close to linear_probe's (a transform that destroys the source classes is a bug)."""
    from adaptune.algorithms.loop import TrialSpec, run_trial

    reports: dict[str, list] = {"linear_probe": [], name: []}
    for method, out in reports.items():
        run_trial(blobs_task, TrialSpec(method, {}, "mlp", epochs=5),
                  lambda metrics, state, out=out: out.append(metrics))
    assert len(reports[name]) == 1 and reports[name][0]["epoch"] == 5 and reports[name][0]["steps"] > 0
    assert reports[name][0]["source_acc"] >= reports["linear_probe"][0]["source_acc"] - 0.1


def _gradients(task, name, hparams, seed=0):
    from adaptune.algorithms.features import MemoryStore
    from adaptune.algorithms.loop import TrainStep, TrialSpec, build

    torch.manual_seed(seed)
    cls = get_method(name)
    spec = TrialSpec(name, hparams, "mlp", epochs=1)
    full = {**cls.defaults(), **hparams}
    data, classifier, method = build(task, spec, cls, full, MemoryStore(), torch.device("cpu"))
    step = TrainStep(classifier, method)
    xs, ys, xt = data.source_train.x[:32], data.source_train.y[:32], data.target_train.x[:32]
    torch.manual_seed(seed + 1)
    loss, _ = step(xs, ys, xt if method.uses_target else None, torch.arange(32), 0.5)
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in step.named_parameters()}


ADAPTIVE = sorted(n for n, c in METHODS.items() if c.adaptation_weight)


def test_every_adaptive_method_names_its_weight():
    plain = {n for n, c in METHODS.items() if not c.adaptation_weight and not c.feature_extraction}
    assert plain == {"source_only"}, plain


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptation_term_changes_the_update(name, blobs_task):
    """Fails if a method's adaptation term does nothing: weight 0 and weight > 0 must give different gradients."""
    weight = METHODS[name].adaptation_weight.name
    extra = {"threshold": 0.0} if name == "self_training" else {}  # untrained predictions are not confident
    off = _gradients(blobs_task, name, {weight: 0.0, **extra})
    on = _gradients(blobs_task, name, {weight: 1.0, **extra})
    differs = [n for n in on if not torch.allclose(on[n], off[n], atol=1e-7)]
    assert differs, f"{name}: {weight} had no effect on any gradient"


def test_the_base_composes_source_loss_plus_weight_times_term():
    batch = _batch()
    method = DANN({"adv_weight": 0.3, "disc_hidden": 256}, 8, 3)
    total, logs = method.loss(batch)
    term, _ = method.adaptation(batch)
    source = F.cross_entropy(batch.source_logits, batch.source_labels)
    assert total.item() == pytest.approx((source + 0.3 * term).item())
    assert list(logs) == ["cls_loss", "adv_loss", "domain_acc"]


def test_a_new_method_is_one_class_and_its_space_is_checked():
    class Toy(Method):
        """Adds a constant term, to show what the base does with it."""

        name, family = "toy", "test"
        params = (LR, FREEZE_DEPTH, ADV_WEIGHT)
        adaptation_weight = ADV_WEIGHT

        def adaptation(self, batch):
            return torch.tensor(2.0), {"toy": torch.tensor(2.0)}

    try:
        assert register(Toy) is Toy and get_method("toy") is Toy and Toy.defaults() == {
            "lr": 0.01, "freeze_depth": 0, "adv_weight": 1.0}
        batch = _batch()
        loss, logs = Toy({"adv_weight": 0.5}, 8, 3).loss(batch)
        source = F.cross_entropy(batch.source_logits, batch.source_labels)
        assert loss.item() == pytest.approx(source.item() + 1.0) and list(logs) == ["cls_loss", "toy"]
    finally:
        METHODS.pop("toy", None)
    for params, missing in (((FREEZE_DEPTH, ADV_WEIGHT), "lr"), ((LR, FREEZE_DEPTH), "adv_weight")):
        broken = type("Broken", (Toy,), {"name": "broken", "params": params})
        with pytest.raises(TypeError, match=missing):
            register(broken)
    with pytest.raises(TypeError, match="twice"):
        register(type("Twice", (Toy,), {"name": "twice", "params": (LR, LR, ADV_WEIGHT)}))
    assert not {"broken", "twice"} & set(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_space_lists_the_knob_the_loop_reads_first(name):
    """Trained methods search the learning rate first, then the frozen depth; closed-form ones the head's C."""
    cls = METHODS[name]
    names = [p.name for p in cls.params]
    assert names[:1] == (["head_l2"] if cls.feature_extraction else ["lr"])
    assert cls.feature_extraction or names[1] == "freeze_depth"
