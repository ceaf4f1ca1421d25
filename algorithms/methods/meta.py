"""Meta-learning family: learn parameters that still work after a step taken on a different sub-domain."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..hparams import FREEZE_DEPTH, LR, Param
from .base import Batch, Logs, Method, register

META_WEIGHT = Param("meta_weight", 1.0, 0.1, 3.0, log=True, help="weight beta of the meta-test loss")


@register
class MLDG(Method):
    """Meta-Learning Domain Generalization (Li, Yang, Song, Hospedales, AAAI 2018), first-order.

    Each step splits the source batch into a meta-train and a meta-test virtual sub-domain. The model takes
    one inner SGD step (``meta_step``) on meta-train, and the meta-test loss is evaluated with those updated
    parameters; the objective ``L_train(θ) + meta_weight · L_test(θ - α ∇L_train)`` favours directions that
    improve both sub-domains, i.e. features that transfer rather than memorise one part of the source.
    The source carries no sub-domain labels here, so the split is random per batch (a weaker signal than
    MLDG's real source domains); the target domain is not used for training.
    """

    name = "meta"
    family = "meta"
    summary = "MLDG meta-train/meta-test over source sub-domains (first-order)"
    uses_target = False
    params = (LR, FREEZE_DEPTH,
              Param("meta_step", 0.1, 0.001, 1.0, log=True, help="inner SGD step size alpha on meta-train"),
              META_WEIGHT)
    adaptation_weight = META_WEIGHT

    @staticmethod
    def meta_train_loss(batch: Batch) -> torch.Tensor:
        """Cross-entropy on the first half of the source batch, the meta-train sub-domain."""
        half = len(batch.source_labels) // 2
        return F.cross_entropy(batch.source_logits[:half], batch.source_labels[:half])

    def source_loss(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        loss = self.meta_train_loss(batch)
        return loss, {"cls_loss": loss.detach()}

    def adaptation(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """The meta-test loss on the second half, after one inner step along the meta-train gradient."""
        half = len(batch.source_labels) // 2
        classifier = batch.classifier
        trainable = {name: p for name, p in classifier.named_parameters() if p.requires_grad}
        grads = torch.autograd.grad(self.meta_train_loss(batch), list(trainable.values()), retain_graph=True,
                                    allow_unused=True)
        # First-order MLDG: the inner gradient is a constant, so no second-order terms are needed.
        adapted = {name: p - self.hparams["meta_step"] * g.detach() if g is not None else p
                   for (name, p), g in zip(trainable.items(), grads)}
        state = {**dict(classifier.named_parameters()), **dict(classifier.named_buffers()), **adapted}
        _, test_logits = functional_call(classifier, state, (batch.source_inputs[half:],))
        test_loss = F.cross_entropy(test_logits, batch.source_labels[half:])
        return test_loss, {"meta_test_loss": test_loss.detach()}
