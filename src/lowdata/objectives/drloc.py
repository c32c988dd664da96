"""Dense relative localisation (DRLoc; Liu et al., NeurIPS 2021, arXiv 2106.03746): from the embeddings of two
positions of the model's final grid, a small MLP regresses how far apart they are; no labels are read.

    loss += weight * mean over images, pairs (a, b) and both axes of |head([e_a, e_b]) - delta_ab|
    delta_ab = ((col_a - col_b) / W, (row_a - row_b) / H)      on the final H x W grid

The grid is a ViT-family model's final tokens after its last norm (prefix tokens dropped) or a CNN's last
feature map (what its global pooling reads), so the CNN can take the same lever. Each image gets `pairs` pairs
drawn uniformly from the term's own random stream (`drloc`), so a resumed run draws what it would have drawn.
The head is the paper's three-layer MLP at `hidden` width (the paper's 512 costs about 75 % of a CCT-2/3x2
forward pass; 128 about 5 %): trained beside the model, checkpointed, never exported.

An auxiliary term (objectives/terms.py): supervised, distill and the EMA teacher carry it, on the labelled
images, the pool's or both (`images`), its weight rising linearly over `warmup_epochs`.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.errors import UsageError
from lowdata.objectives.terms import APPLIES_TO, ImageTerm, register_term, require_pool
from lowdata.sections import setting

@dataclass(frozen=True)
class DrlocSettings:
    weight: float = setting(0.5, "λ, the term's weight (the paper's configurations: 0.2-0.5)", low=0)
    pairs: int = setting(32, "position pairs per image (the paper's: 32-64)", low=1)
    hidden: int = setting(128, "the offset head's width (the paper's: 512, about 15x the cost)", low=1)
    images: str = setting("both", "the images it reads: labelled, pool or both", choices=APPLIES_TO)
    warmup_epochs: int = setting(0, "epochs over which its weight rises linearly from 0", low=0)


def grid_offsets(first: torch.Tensor, second: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(..., 2) offsets (dx / W, dy / H) from flat row-major grid indices `second` to `first`."""
    rows, cols = grid
    dx = (first % cols - second % cols).float() / cols
    dy = torch.div(first, cols, rounding_mode="floor").sub(torch.div(second, cols, rounding_mode="floor"))
    return torch.stack([dx, dy.float() / rows], dim=-1)


def localisation_loss(embeddings: torch.Tensor, grid: tuple[int, int], head: nn.Module, pairs: int,
                      generator: torch.Generator) -> torch.Tensor:
    """DRLoc's L1 loss for (N, H*W, D) grid embeddings, `pairs` position pairs per image from `generator`."""
    count, positions, width = embeddings.shape
    drawn = torch.randint(positions, (2, count, pairs), generator=generator, device=generator.device)
    drawn = drawn.to(embeddings.device)
    first, second = (embeddings.gather(1, index[..., None].expand(-1, -1, width)) for index in drawn)
    predicted = head(torch.cat([first, second], dim=-1)).float()
    return F.l1_loss(predicted, grid_offsets(drawn[0], drawn[1], grid))


def offset_head(width: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(2 * width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 2))


def final_grid(model: nn.Module) -> tuple[nn.Module, bool, int]:
    """The module whose output (a ViT's final norm: tokens) or input (a CNN's global pooling: a map) is the
    model's final grid, whether it is a map, and the grid's width."""
    if hasattr(model, "patch_embed") and isinstance(getattr(model, "norm", None), nn.Module):
        if getattr(getattr(model, "patch_drop", None), "prob", 0.0):
            raise UsageError("dense relative localisation reads every position of the final grid; "
                             "model_args.patch_drop_rate drops tokens in training steps: use one of the two")
        return model.norm, False, model.embed_dim
    pool = getattr(model, "global_pool", None)
    if isinstance(pool, nn.Module) and hasattr(model, "num_features"):
        return pool, True, model.num_features
    raise UsageError(f"dense relative localisation reads a model's final token grid or feature map; "
                     f"{type(model).__name__} shows neither: use a ViT-family preset or a timm CNN")


class RelativeLocalisation(ImageTerm):
    state_name, setup_name = "drloc_head", "drloc"
    streams = ("drloc",)

    def __init__(self, model: nn.Module, settings: DrlocSettings) -> None:
        super().__init__(settings)
        self.student = [model]  # a list: not a submodule of the term
        self.source, self.is_map, width = final_grid(model)
        self.head = offset_head(width, settings.hidden)
        self.captured: torch.Tensor | None = None

    def trainable_extras(self) -> nn.Module:
        return self.head

    @contextmanager
    def capturing(self) -> Iterator[None]:
        def keep_output(module, inputs, output):
            self.captured = output

        def keep_input(module, inputs):
            self.captured = inputs[0]

        handle = (self.source.register_forward_pre_hook(keep_input) if self.is_map
                  else self.source.register_forward_hook(keep_output))
        try:
            yield
        finally:
            handle.remove()

    def grid_embeddings(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if self.is_map:  # (N, C, H, W) -> (N, H*W, C), row-major
            return features.flatten(2).transpose(1, 2), tuple(features.shape[-2:])
        grid = tuple(self.student[0].patch_embed.grid_size)
        return features[:, features.shape[1] - grid[0] * grid[1]:], grid

    def loss(self, model_input: torch.Tensor, labelled: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features, self.captured = self.captured, None
        embeddings, grid = self.grid_embeddings(self.rows(features, labelled))
        if len(embeddings) == 0:
            return features.new_zeros((), dtype=torch.float32), {}
        term = localisation_loss(embeddings, grid, self.head, self.settings.pairs, self.generator)
        return self.weighted(term), {"drloc_loss": term.detach()}

    def cost_parts(self, example: torch.Tensor) -> list:
        """The head on each image's pairs, forward and backward (the grid comes from the model's own pass)."""
        from lowdata.objectives.cost import TRAINED, CostPart, flops_of

        pairs = torch.zeros(1, self.settings.pairs, self.head[0].in_features, device=example.device)
        return [CostPart("drloc_head", TRAINED * flops_of(lambda: self.head(pairs), self.head),
                         self.settings.images)]

    def summary(self) -> dict[str, Any]:
        s = self.settings
        return {"drloc": {"weight": s.weight, "pairs": s.pairs, "hidden": s.hidden, "images": s.images,
                          "warmup_epochs": s.warmup_epochs, "grid": "feature map" if self.is_map else "tokens"}}


@register_term("drloc", settings=DrlocSettings)
def build_drloc(settings: DrlocSettings, config, model: nn.Module, data, device, autocast) -> ImageTerm:
    """Dense relative localisation (DRLoc, Liu et al. 2021): the final grid's embeddings say how far apart."""
    require_pool("drloc", settings, data)
    return RelativeLocalisation(model, settings).to(device)
