"""Feature guidance (locality guidance, Li et al. 2022, arXiv 2207.10026): while it learns the labels, the
transformer student's tokens imitate a small CNN's intermediate feature maps.

    loss += weight * sum over pairs (block b, stage s) of
            mean((interpolate(proj_b(tokens_b on the token grid)) - interpolate(normalise(guide stage s)))^2)

The student's tokens after block b (prefix tokens dropped) are laid out on their token grid, pass a 1x1
convolution to the stage's width (the light learned projection), and both maps are resized to the larger of
the two grids, as the paper's code does. The guide's maps are standardised per image (zero mean, unit
variance over channels and positions), so the target's scale does not depend on the CNN. The guide is frozen,
runs without gradients under the run's autocast and reads no labels, so guidance on unlabelled pool images
cannot copy a teacher's mistakes about classes.

An auxiliary term (objectives/terms.py): any method whose model reads the step's images carries it, the plain
supervised one included, over the labelled images, the pool's or both (`on`).
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.errors import UsageError, shown
from lowdata.models.frozen import freeze
from lowdata.objectives.terms import APPLIES_TO, Term, register_term, step_rows
from lowdata.sections import setting



@dataclass(frozen=True)
class GuidanceSettings:
    guide: str = setting(doc="the CNN whose feature maps the tokens imitate: a lowdata run directory (e.g. a "
                             "resnet20 run on the same data)")
    weight: float = setting(2.5, "weight of the guidance term (the paper's)", low=0)
    blocks: str | None = setting(None, "guided student blocks, e.g. 0,4,8; none: one per guide stage, evenly "
                                       "spaced")
    images: str = setting("both", "the images guided: labelled, pool or both", choices=APPLIES_TO)


class FeatureGuidance(Term):
    state_name, setup_name = "projections", "guide"

    def __init__(self, student: nn.Module, guide: nn.Module, blocks: list[int], stages: list[int],
                 channels: list[int], weight: float, applies_to: str = "both") -> None:
        super().__init__()
        if applies_to not in APPLIES_TO:
            raise UsageError(f"guide_on must be one of {', '.join(APPLIES_TO)}, got {shown(applies_to)}")
        self.student, self.blocks, self.stages = [student], blocks, stages  # a list: not a submodule of ours
        self.guide = guide.eval().requires_grad_(False)
        self.weight, self.applies_to = weight, applies_to
        # the light learned projection of each guided block to its stage's width
        self.projections = nn.ModuleList(nn.Conv2d(student.embed_dim, width, 1) for width in channels)
        self.captured: dict[int, torch.Tensor] = {}

    @property
    def reads_pool(self) -> bool:
        return self.applies_to != "labelled"

    def trainable_extras(self) -> nn.Module:
        return self.projections

    def cost_parts(self, example: torch.Tensor) -> list:
        """The guide's forward pass on the images it guides."""
        from lowdata.objectives.cost import FORWARD, network_part

        return [network_part("guide", self.guide, example, FORWARD, self.applies_to)]

    def summary(self) -> dict[str, Any]:
        return {"guide_blocks": self.blocks, "guide_stages": self.stages, "guide_weight": self.weight,
                "guide_on": self.applies_to, "guide_layout": self.guide.layout.name}

    def train(self, mode: bool = True) -> "FeatureGuidance":
        super().train(mode)
        self.guide.eval()  # the guide's batch-norm statistics stay as trained
        return self

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """While inside, the student's forward leaves the guided blocks' outputs in `captured` (hooks only for
        that forward pass, so a copied or exported student carries none)."""
        student = self.student[0]

        def keep(index: int):
            return lambda module, inputs, output: self.captured.__setitem__(index, output)

        handles = [student.blocks[b].register_forward_hook(keep(b)) for b in self.blocks]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def loss(self, images: torch.Tensor, labelled: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The guidance term for the student input `images` (its first `labelled` rows are labelled images,
        the rest pool images), from the tokens the last captured forward pass left, and its log."""
        guided = self.distance(images, labelled)
        return guided, {"guide_loss": guided.detach()}

    def distance(self, images: torch.Tensor, labelled: int) -> torch.Tensor:
        rows = step_rows(self.applies_to, labelled)
        images = images[rows]
        if len(images) == 0:
            self.captured.clear()
            return images.new_zeros(())
        with torch.no_grad():
            targets = self.guide.forward_intermediates(images, indices=self.stages, intermediates_only=True)
        student = self.student[0]
        grid = student.patch_embed.dynamic_feat_size(tuple(images.shape[-2:]))
        total = images.new_zeros((), dtype=torch.float32)
        for block, projection, target in zip(self.blocks, self.projections, targets):
            tokens = self.captured.pop(block)[rows]
            tokens = tokens[:, tokens.shape[1] - grid[0] * grid[1]:]  # without prefix tokens (a block may have none)
            maps = tokens.transpose(1, 2).reshape(len(images), -1, *grid)
            total = total + map_distance(projection(maps), target)
        return self.weight * total


def map_distance(student: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of a projected student map and a standardised guide map, both resized to the
    larger grid (bilinear)."""
    guide = F.layer_norm(guide.float(), guide.shape[1:])  # per image: zero mean, unit variance
    size = (max(student.shape[-2], guide.shape[-2]), max(student.shape[-1], guide.shape[-1]))
    student = F.interpolate(student.float(), size, mode="bilinear", align_corners=False)
    guide = F.interpolate(guide, size, mode="bilinear", align_corners=False)
    return (student - guide).pow(2).mean()


@register_term("guidance", settings=GuidanceSettings)
def build_guidance(settings: GuidanceSettings, config, student: nn.Module, data, device: torch.device,
                   autocast=nullcontext) -> FeatureGuidance:
    """Feature guidance (Li et al. 2022): a ViT's tokens imitate a frozen CNN's feature maps.

    The guide run's CNN, in its faster memory layout under the run's `autocast` (models/frozen.py), paired with
    the student's blocks: one block per guide stage, evenly spaced over the student's depth (or `blocks`), with
    the guide's last stages."""
    if not (hasattr(student, "blocks") and hasattr(student, "patch_embed") and hasattr(student, "num_prefix_tokens")):
        raise UsageError(f"feature guidance guides a ViT-family student's tokens; {shown(config.model)} has none: "
                         "use a ViT preset (vit-tiny, cct-2/3x2, vit-tiny-convstem, ...)")
    info = data.info
    guide = load_guide(settings.guide, data, device)
    stages, channels = guide_stages(guide, info, settings.guide)
    depth = len(student.blocks)
    blocks = parse_blocks(settings.blocks, depth) if settings.blocks else evenly(depth, len(stages))
    if len(blocks) > len(stages):
        raise UsageError(f"guide_blocks names {len(blocks)} blocks but the guide {settings.guide} has {len(stages)} "
                         "feature stages; name at most that many")
    stages, channels = stages[len(stages) - len(blocks):], channels[len(channels) - len(blocks):]
    guide = freeze(guide, (info.channels, *info.image_size), device, autocast)
    return FeatureGuidance(student, guide, blocks, stages, channels, settings.weight, settings.images).to(device)


def load_guide(source: str, data, device: torch.device) -> nn.Module:
    """The guide run's model with its own head (a guide trained on other classes is fine: it gives features);
    its input channels and size must be the student's."""
    from pathlib import Path

    from lowdata.models.loading import load_trained_model
    from lowdata.rundir import read_summary

    info = data.info
    if data.network_loader is not None:  # a study's plan: an untrained stand-in of the linked recipe's model
        return data.trained_network(source, "guide")[0].to(device)
    summary = (read_summary(Path(source)) or {}) if Path(source).is_dir() else {}
    spec = summary.get("input") or {}
    size, wanted = "x".join(map(str, spec.get("image_size", []))), "x".join(map(str, info.image_size))
    if spec and (spec.get("channels") != info.channels or size != wanted):
        raise UsageError(f"the guide {source} was trained on {spec.get('channels')}-channel {size} images, the "
                         f"student gets {info.channels}-channel {wanted} ones; guide with a CNN trained at the "
                         "student's input")
    classes = summary.get("num_classes", info.num_classes)
    guide, _ = load_trained_model(source, classes, info.channels, info.image_size, what="guide")
    return guide.to(device)


def guide_stages(guide: nn.Module, info, source: str) -> tuple[list[int], list[int]]:
    """The guide's spatial feature stages (indices for forward_intermediates, skipping its stem) and widths."""
    try:
        with torch.no_grad():
            maps = guide.eval().forward_intermediates(torch.zeros(1, info.channels, *info.image_size,
                                                                  device=next(guide.parameters()).device),
                                                      intermediates_only=True)
    except (AttributeError, TypeError, RuntimeError, NotImplementedError):
        maps = []
    maps = maps[:len(getattr(guide, "feature_info", maps))]  # timm's declared stages (lowdata's 3-stage ResNets
    # replace a 4th stage with nn.Identity, whose map repeats the 3rd)
    stages = [i for i, m in enumerate(maps) if m.ndim == 4][1:]  # the stem's map is not a stage
    if not stages:
        raise UsageError(f"the guide {source} gives no spatial feature maps (it needs a CNN such as resnet20)")
    return stages, [maps[i].shape[1] for i in stages]


def evenly(depth: int, stages: int) -> list[int]:
    """One block per stage, spread from the first block to the last (the paper: 0, 6, 11 of 12)."""
    count = min(depth, stages)
    return [round(i * (depth - 1) / max(count - 1, 1)) for i in range(count)] if count > 1 else [depth - 1]


def parse_blocks(text: str, depth: int) -> list[int]:
    try:
        blocks = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        blocks = []
    if not blocks or any(not 0 <= b < depth for b in blocks) or blocks != sorted(set(blocks)):
        raise UsageError(f"guide_blocks must list increasing block indices from 0 to {depth - 1}, e.g. 0,{depth - 1}; "
                         f"got {text!r}")
    return blocks
