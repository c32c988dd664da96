"""Fine-tuning's parts of the loop: the head trained alone first, and frozen batch norms kept as trained."""
from __future__ import annotations

from torch import nn


class HeadFirst:
    """Freeze-then-unfreeze fine-tuning: only the head trains for the first `epochs` epochs, then everything.
    The optimizer holds every tensor from the start; a frozen one gets no gradient, so AdamW leaves it alone."""

    def __init__(self, model: nn.Module, epochs: int) -> None:
        self.model, self.epochs, self.frozen = model, epochs, False

    def update(self, epoch: int) -> bool:
        """Set what trains in `epoch`; True when that changed."""
        from lowdata.models.weights import freeze_all_but_head

        freeze = epoch < self.epochs
        if freeze == self.frozen:
            return False
        if freeze:
            freeze_all_but_head(self.model)
        else:
            self.model.requires_grad_(True)
        self.frozen = freeze
        return True


def hold_frozen_batch_norms(model: nn.Module) -> None:
    """Batch norms whose weights are frozen (linear probe, head-first epochs) keep their running statistics:
    in train mode those would drift to the new data while the weights stay fixed, shifting the features the
    head learns on. A norm without weights (affine=False) is left training."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            weights = list(module.parameters(recurse=False))
            if weights and not any(p.requires_grad for p in weights):
                module.eval()
