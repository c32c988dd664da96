"""A diverged run is a failed run: a non-finite loss stops training at once, no NaN weights are checkpointed,
the last good checkpoint stays, and the command exits 1 with one line naming the step."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lowdata.errors import Failed

# Under a dynamic loss scale (fp16 on a GPU) a step whose gradients overflow is skipped and the scale lowered, as
# the grad scaler does; a run of this many non-finite losses in a row is divergence all the same.
SCALER_PATIENCE = 20


class Diverged(Failed):
    """Training produced a non-finite loss or weights."""


class DivergenceGuard:
    def __init__(self, run_dir: Path, scaler_enabled: bool, lr: float) -> None:
        self.run_dir, self.lr = run_dir, lr
        self.patience = SCALER_PATIENCE if scaler_enabled else 0
        self.bad_steps = 0

    def after_step(self, loss: torch.Tensor, step: int, epoch: int) -> None:
        """Raise Diverged when the step's loss is NaN or infinite (past the grad scaler's patience)."""
        if bool(torch.isfinite(loss.detach()).all()):
            self.bad_steps = 0
            return
        self.bad_steps += 1
        if self.bad_steps > self.patience:
            self.fail(f"the loss is {loss.detach().float().item()} at step {step} (epoch {epoch + 1})")

    def before_checkpoint(self, model: nn.Module, step: int, epoch: int) -> None:
        """Weights that went non-finite in a step whose loss was still finite are never checkpointed."""
        from lowdata.models.strict import first_non_finite

        bad = first_non_finite(model)
        if bad is not None:
            self.fail(f"the weights ({bad}) are NaN or infinite after step {step} (epoch {epoch})")

    def fail(self, what: str) -> None:
        from lowdata.rundir import checkpoint_dir

        kept = checkpoint_dir(self.run_dir)
        saved = f"the last good checkpoint is kept in {kept}, no model was written" if kept else \
            "no checkpoint and no model were written"
        raise Diverged(f"training diverged: {what}; {saved}: start again with a lower "
                       f"lr (now {self.lr:g}) or with clip_grad, in another --out")
