"""Fine-tuning family: train on labeled source only (``freeze_depth`` decides how much is fine-tuned)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import Batch, Method, register


@register
class SourceOnly(Method):
    """Plain supervised fine-tuning on the source domain: the no-adaptation baseline every method must beat."""

    name = "source_only"
    family = "finetune"
    summary = "fine-tuning on labeled source (no adaptation term)"
    uses_target = False

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = F.cross_entropy(batch.source_logits, batch.source_labels)
        return loss, {"cls_loss": loss.detach()}
