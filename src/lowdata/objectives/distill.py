"""Knowledge distillation from a frozen teacher (DeiT's `DistillationLoss`, in one small objective).

    loss = (1 - alpha) * CE(class head, targets) + alpha * distillation(dist head, teacher)

`hard`: cross-entropy against the teacher's argmax (DeiT's choice). `soft`: KL divergence between the
temperature-softened distributions, times tau^2 (Hinton), averaged over images. `none`: the supervised loss
alone. A student with a distillation token (timm's `VisionTransformerDistilled`) returns two heads in training:
the class head learns from the targets and the distillation head from the teacher; at inference the model
averages them itself. A student without one uses its single head for both terms.

The teacher sees exactly the student's input (after augmentation and Mixup/CutMix), under the same autocast,
in eval mode without gradients; its weights never change.

With the unlabelled pool (`pool=(student view, teacher view)` each step; FixMatch / Noisy Student):

    loss += pool_weight * mean over pool images of [teacher confident] * distillation(student, teacher)

the teacher reading its weak view, the student its strong one, in the same forward pass as the labelled
images (one batch, so batch-norm statistics see both). Pool images have no labels, and take none: only the
teacher speaks about them, through the distillation head when the student has a distillation token.

With `split_backward`, the labelled images' loss goes through its backward pass before the pool's forward pass
is built (two passes, one optimiser step: the same gradients for a model without batch norm, fewer activations
held at once; 5-12 % faster pooled steps for cct-2/3x2 on AVX512, benchmarks/cure_steps.py). A batch-norm
student then normalises each half by its own statistics; under torchrun each pass reduces its gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.objectives.base import Objective, StepOutput, register_method
from lowdata.objectives.pool import POOL_AUGMENT, PoolFeed, ReadsPool, pool_feed
from lowdata.sections import setting

MODES = ("hard", "soft", "none")


@dataclass(frozen=True)
class DistillSettings:
    mode: str = setting("hard", "hard (DeiT: the teacher's argmax), soft (KL x tau^2) or none (the label loss alone, "
                                "the teacher still reported)", choices=MODES)
    alpha: float = setting(0.5, "weight of the distillation term; the label term gets 1 - alpha", low=0, high=1)
    tau: float = setting(1.0, "temperature of the soft mode", low=0, low_in=False)
    pool_threshold: float = setting(0.0, "keep a pool image only where the teacher's top probability reaches this",
                                    low=0, high=1)
    pool_weight: float = setting(1.0, "weight of the pool term beside the labelled loss", low=0)
    pool_augment: str = setting("strong", POOL_AUGMENT)
    teacher_cache: bool = setting(False, "the pool's teacher outputs on one fixed view of each image, computed once "
                                         "and cached (objectives/teacher_cache.py), not a forward pass per step")
    split_backward: bool = setting(False, "with a pool: the labelled images' backward pass before the pool's forward "
                                          "(two passes, one optimiser step) instead of one pass over both")


class Distill(ReadsPool, Objective):
    carries_terms = True

    def __init__(self, model: nn.Module, teacher: nn.Module, mode: str = "hard", alpha: float = 0.5,
                 tau: float = 1.0, label_smoothing: float = 0.0, pool_threshold: float = 0.0,
                 pool_weight: float = 1.0, feed: PoolFeed | None = None,
                 pool_logits: torch.Tensor | None = None, split_backward: bool = False) -> None:
        super().__init__()
        self.split_backward = split_backward and feed is not None
        self.pool_logits = pool_logits  # the teacher's cached outputs for each pool image, or None: live
        # the unlabelled pool this objective reads on each training step (its own stream, its own share)
        self.feed, self.streams = feed, ("pool",) if feed is not None else ()
        if mode not in MODES:
            raise ValueError(f"distillation mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0 <= alpha <= 1 or tau <= 0:
            raise ValueError(f"distillation needs 0 <= alpha <= 1 and tau > 0, got alpha={alpha}, tau={tau}")
        self.model, self.teacher = model, teacher.eval().requires_grad_(False)
        if not 0 <= pool_threshold <= 1 or pool_weight < 0:
            raise ValueError(f"the pool needs 0 <= pool_threshold <= 1 and pool_weight >= 0, got "
                             f"pool_threshold={pool_threshold}, pool_weight={pool_weight}")
        self.mode, self.alpha, self.tau, self.label_smoothing = mode, alpha, tau, label_smoothing
        self.pool_threshold, self.pool_weight = pool_threshold, pool_weight
        if hasattr(model, "set_distilled_training"):
            model.set_distilled_training(True)

    def train(self, mode: bool = True) -> "Distill":
        super().train(mode)
        self.teacher.eval()  # the teacher's dropout and batch-norm statistics stay as trained
        return self

    def cost_parts(self, example: torch.Tensor) -> list:
        from lowdata.objectives.cost import FORWARD, network_part

        reads = "labelled" if self.pool_logits is not None else "both"  # a cache answers for the pool
        return super().cost_parts(example) + [network_part("teacher", self.teacher, example, FORWARD, reads)]

    @property
    def pool_teacher(self) -> str:
        return f"the teacher ({self.mode})"

    def forward(self, images: torch.Tensor, targets: torch.Tensor,
                pool: tuple[torch.Tensor, torch.Tensor] | None = None) -> StepOutput:
        """`pool`: (student view, teacher view) of unlabelled images; in training drawn from the feed."""
        counts, cached = {}, None
        if pool is None and self.feed is not None:
            pool, cached, counts = self.draw_pool(images.device)
        out = self.loss(images, targets, pool, cached)
        out.counts = counts
        return out

    def draw_pool(self, device: torch.device) -> tuple[tuple, torch.Tensor | None, dict[str, int]]:
        """This step's pool images: (student view, teacher view or None), the cached teacher outputs or None."""
        cached = None
        with torch.autocast(device.type, enabled=False):  # the views at full precision, as the images
            if self.pool_logits is None:
                pool = self.feed.draw(self.pool_per_step, self.pool_stream, device)
            else:
                index = self.feed.pick(self.pool_per_step, self.pool_stream)
                pool = (self.feed.student_views(index, self.pool_stream, device), None)
                cached = self.pool_logits[index.to(self.pool_logits.device)]
        return pool, cached, {"pool_images_read": self.pool_per_step}

    def step(self, images: torch.Tensor, targets: torch.Tensor,
             backward: Callable[[torch.Tensor], None]) -> StepOutput:
        """With `split_backward`: the labelled loss's backward pass, then the pool's forward and backward (the
        pool drawn first, as the joint step draws it); else one pass over both (Objective.step)."""
        if not self.split_backward or self.mode == "none":
            return super().step(images, targets, backward)
        pool, cached, counts = self.draw_pool(images.device)
        out = self.loss(images, targets, None)
        backward(out.loss)  # the labelled images' activations are freed here
        outputs = self.model(pool[0])
        student = (outputs[1] if isinstance(outputs, tuple) else outputs).float()
        with torch.no_grad():
            teacher = cached.float() if cached is not None else self.teacher(pool[1]).float()
        pool_loss, kept = self.pool_term(student, teacher)
        backward(self.pool_weight * pool_loss)
        out.loss = out.loss.detach() + self.pool_weight * pool_loss.detach()
        out.logs.update(pool_loss=pool_loss.detach(), pool_kept=kept)
        out.counts, out.model_input = counts, None  # terms ride on the joint step only (WithTerms refuses this)
        return out

    def loss(self, images: torch.Tensor, targets: torch.Tensor, pool: tuple[torch.Tensor, torch.Tensor] | None,
             cached: torch.Tensor | None = None) -> StepOutput:
        """`cached`: the teacher's outputs for the pool images, in place of its view of them (pool[1])."""
        labelled = len(images)
        if pool is not None and self.mode == "none":
            raise ValueError("the pool is taught by the teacher alone: use distill=hard or soft with a pool")
        student_input = images if pool is None else torch.cat([images, pool[0]])
        outputs = self.model(student_input)
        class_all, dist_all = outputs if isinstance(outputs, tuple) else (outputs, outputs)
        class_logits, dist_logits = class_all[:labelled], dist_all[:labelled]
        base = F.cross_entropy(class_logits.float(), targets, label_smoothing=self.label_smoothing)
        logits = (class_logits + dist_logits) / 2  # what the model predicts at inference
        if self.mode == "none":
            return StepOutput(loss=base, logits=logits, logs={"base_loss": base.detach()}, model_input=student_input)
        # one forward pass over the labelled images and the pool's teacher views: nothing is computed twice
        with torch.no_grad():
            if cached is not None:
                teacher_all = torch.cat([self.teacher(images).float(), cached.float()])
            else:
                teacher_all = self.teacher(images if pool is None else torch.cat([images, pool[1]])).float()
        teacher_logits = teacher_all[:labelled]
        distill = distillation_loss(dist_logits.float(), teacher_logits, self.mode, self.tau)
        loss = (1 - self.alpha) * base + self.alpha * distill
        agreement = (dist_logits.argmax(1) == teacher_logits.argmax(1)).float().mean()
        logs = {"base_loss": base.detach(), "distill_loss": distill.detach(), "teacher_agreement": agreement}
        if pool is not None:
            pool_loss, kept = self.pool_term(dist_all[labelled:].float(), teacher_all[labelled:])
            loss = loss + self.pool_weight * pool_loss
            logs.update(pool_loss=pool_loss.detach(), pool_kept=kept)
        return StepOutput(loss=loss, logits=logits, logs=logs, model_input=student_input)

    def pool_term(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pool's distillation loss, averaged over every pool image (FixMatch's normalisation: dropped
        images count as zero), and the share the confidence threshold kept."""
        confident = (teacher_logits.softmax(dim=1).amax(dim=1) >= self.pool_threshold).float()
        per_image = distillation_loss(student_logits, teacher_logits, self.mode, self.tau, reduction="none")
        return (per_image * confident).mean(), confident.mean()


@register_method("distill", settings=DistillSettings)
def build_distill(config, settings: DistillSettings, model: nn.Module, data, device, autocast
                  ) -> tuple[Objective, dict]:
    """Knowledge distillation from a frozen teacher (DeiT), on the labels and the pool."""
    from lowdata.errors import UsageError

    teacher, teacher_summary = load_teacher(config, data, device, autocast)
    feed = pool_feed(settings.pool_augment, config.pool_ratio, data.info, data.pool_images, device)
    if feed is not None and settings.mode == "none":
        raise UsageError("the pool is taught by a teacher: give --teacher RUN_DIR and distill.mode=hard or soft with "
                         "--pool, or let the student's own average teach it with objective=ema-teacher (pool images "
                         "have no labels)")
    pool_logits, cache_summary = None, {}
    if settings.teacher_cache:
        if feed is None:
            raise UsageError("distill.teacher_cache=true caches the teacher's outputs on the pool: give --pool all "
                             "(or N), or drop it")
        if not data.planning:
            from lowdata.augment import Normalize
            from lowdata.objectives.teacher_cache import cached_teacher_logits

            pool_logits, cache_summary = cached_teacher_logits(teacher, data.pool_images,
                                                               Normalize(data.info).to(device), device, autocast)
            from lowdata import console

            console.say(f"teacher cache: {cache_summary['teacher_cache_read']:,} pool images' outputs read, "
                        f"{cache_summary['teacher_cache_computed']:,} computed"
                        + ("" if cache_summary["teacher_cache_saved"] else
                           f"; not saved ({cache_summary['teacher_cache']} is not lowdata's, or not writable)"))
    try:
        objective = Distill(model, teacher, settings.mode, settings.alpha, settings.tau, config.label_smoothing,
                            settings.pool_threshold, settings.pool_weight, feed, pool_logits,
                            settings.split_backward)
    except ValueError as err:
        raise UsageError(str(err)) from None
    split = {"split_backward": True} if objective.split_backward else {}
    return objective, {**teacher_summary, **cache_summary, "distill": settings.mode, **split}


def load_teacher(config, data, device: torch.device, autocast) -> tuple[nn.Module, dict]:
    """The configured teacher, frozen on `device` in its faster memory layout (models/frozen.py), and what the
    summary says of it (its test accuracy, its layout)."""
    from lowdata.augment import Normalize
    from lowdata.device import inference_autocast
    from lowdata.metrics import evaluate
    from lowdata.models.frozen import freeze

    info = data.info
    teacher, name = data.trained_network(config.teacher, "teacher", config.teacher_model, config.teacher_size)
    names = getattr(teacher, "weights_note", "by name")
    teacher = freeze(teacher, (info.channels, *info.image_size), device, autocast)
    if data.planning:  # counted, not run
        return teacher, {}
    # evaluated as the teacher's own run reports its accuracy (fp32)
    result = evaluate(teacher, data.test_images, data.test_labels, Normalize(info).to(device), device,
                      inference_autocast(device))
    side = teacher.input_size or tuple(info.image_size)
    return teacher, {"teacher": config.teacher, "teacher_model": name, "teacher_test_acc": result["acc"],
                     "teacher_input_size": f"{side[1]}x{side[0]}", "teacher_weights_matched": names,
                     "teacher_layout": teacher.layout.name, "teacher_layout_reason": teacher.layout.reason}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mode: str,
                      tau: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Mean over images, or one value per image with reduction="none"."""
    if mode == "hard":
        return F.cross_entropy(student_logits, teacher_logits.argmax(dim=1), reduction=reduction)
    # per image: the KL divergence summed over classes (batchmean). DeiT divides its sum by N x classes instead,
    # which only rescales alpha by 1/classes; the per-image form keeps alpha's meaning for 10 or 1,000 classes.
    per_image = F.kl_div(F.log_softmax(student_logits / tau, dim=1), F.log_softmax(teacher_logits / tau, dim=1),
                         reduction="none", log_target=True).sum(dim=1) * tau * tau
    return per_image if reduction == "none" else per_image.mean()
