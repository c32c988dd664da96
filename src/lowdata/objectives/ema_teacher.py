"""A teacher that improves with its student: the student's EMA labels the unlabelled pool (Semi-ViT, Cai et al.
2022, arXiv 2208.05688; FixMatch, Sohn et al. 2020, arXiv 2001.07685; per-class thresholds from FlexMatch,
Zhang et al. 2021, arXiv 2110.08263).

    loss = CE(student(labelled), targets)
         + pool_weight * mean over pool images of [confidence >= threshold of its class] * CE(student(strong), target)

Each step the teacher — an exponential moving average of the student's weights, in eval mode — reads a weak
view (crop, flip) of the drawn pool images and the student learns the teacher's targets on strong views
(RandAugment, erasing), in the same forward pass as the labelled images. The average is timm's ModelEmaV3 with
warm-up (decay 1 - (1 + step)^(-2/3), capped at `decay`): early on the teacher is nearly the student itself, as
in FixMatch, later a smoother average, as in Semi-ViT; a fixed 0.999 over a few hundred steps would stay at
the initial weights. The teacher starts from the run's initial weights (`--init`).

Targets: `hard` (the teacher's argmax, FixMatch) or `soft` (its distribution at `temperature`).
Thresholds: fixed, or per class (`adaptive`, FlexMatch with its threshold warm-up): class c's threshold is
threshold * M(beta_c), M(x) = x / (2 - x), beta_c = the pool images whose latest confident prediction was c,
over the largest such count (or over the pool images never confidently predicted, while those are more). A
class the model still learns gets a low threshold, so its pseudo-labels flow early.
Distribution alignment (`align`, ReMixMatch): the teacher's probabilities divided by their running mean over
the pool (times the uniform prior of a class-balanced budget) and renormalised, before thresholds and targets.
Pseudo-mixup (`mixup` = alpha, 0 off; Semi-ViT's probabilistic form): the pool images above their threshold are
mixed in random pairs with weight lam ~ Beta(alpha, alpha), their targets with lam * p_i / (lam * p_i +
(1 - lam) * p_j), p the teacher's confidence, so the surer teacher's label weighs more.
With `--teacher` (a CNN run) the CNN labels the pool for the first `handover_epochs`, then the EMA takes over.
Ramp-up (Mean Teacher, Tarvainen & Valpola 2017): the pool term's weight rises as exp(-5 (1 - t)^2) over the first
`rampup_epochs` (from scratch: half the run; 0 after `--init` or with a CNN's handover). A randomly initialised
teacher's labels are noise, and FlexMatch's thresholds stay near zero over a short run (few pool images reach
`threshold`, so the warm-up keeps every class's low): on digits (100 labels, 10 epochs, no ramp-up) the student
collapsed to 9.7 % against 51 % from labels alone. Measured there, the objective pays after `--init` from a
labels-only run (digits, 100 labels, resnet20 20 + 20 epochs: 94.7 % against 93.3 % for 20 more labelled
epochs), not from scratch (40 epochs: 90.5-92.2 % against 94.2 %).

Pool images have no labels here: the feed holds images only. Under torchrun each rank keeps the learning status
of the pool images it drew (the thresholds steer which targets count, never the weights' synchronisation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lowdata.objectives.base import Objective, StepOutput, register_method
from lowdata.objectives.pool import POOL_AUGMENT, PoolFeed, ReadsPool, pool_feed
from lowdata.sections import setting

TARGETS = ("hard", "soft")
RAMPUP_SHARE = 0.5  # from scratch, the pool term's weight ramps up over this share of the epochs


@dataclass(frozen=True)
class EmaTeacherSettings:
    decay: float = setting(0.999, "the moving average's decay (reached after timm's warm-up)", low=0, high=1,
                           high_in=False)
    threshold: float = setting(0.95, "the confidence a pseudo-label needs (per class with adaptive)", low=0, high=1)
    adaptive: bool = setting(True, "FlexMatch's per-class thresholds")
    targets: str = setting("hard", "hard (the teacher's argmax) or soft (its distribution at temperature)",
                           choices=TARGETS)
    temperature: float = setting(1.0, "the soft targets' temperature", low=0, low_in=False)
    mixup: float = setting(0.0, "pseudo-mixup's Beta alpha (Semi-ViT); 0: off", low=0)
    handover_epochs: int = setting(0, "with --teacher: the CNN labels the pool for these first epochs", low=0)
    rampup_epochs: int | None = setting(None, "the pool term's ramp-up; none: half the run from scratch, 0 after "
                                              "--init or with a CNN", low=0)
    align: bool = setting(True, "distribution alignment (ReMixMatch)")
    pool_weight: float = setting(1.0, "weight of the pool term beside the labelled loss", low=0)
    pool_augment: str = setting("strong", POOL_AUGMENT)


SUMMARY_KEYS = ("decay", "threshold", "adaptive", "targets", "temperature", "mixup", "handover_epochs",
                "rampup_epochs", "align")  # what the summary's `ema_teacher` says


class ClassThresholds(nn.Module):
    """The confidence a pool image's pseudo-label needs, per class: fixed, or adaptive (FlexMatch)."""

    def __init__(self, pool_size: int, num_classes: int, threshold: float, adaptive: bool) -> None:
        super().__init__()
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.num_classes, self.threshold, self.adaptive = num_classes, threshold, adaptive
        # per pool image: the class of its latest prediction at or above `threshold`, -1 while it has none
        self.register_buffer("status", torch.full((pool_size,), -1, dtype=torch.long))

    def current(self) -> torch.Tensor:
        """The threshold of each class (num_classes,)."""
        if not self.adaptive:
            return torch.full((self.num_classes,), self.threshold, device=self.status.device)
        counts = torch.bincount(self.status + 1, minlength=self.num_classes + 1).float()
        never, per_class = counts[0], counts[1:]
        beta = per_class / torch.maximum(per_class.max(), never)  # the warm-up: never-predicted images count
        return self.threshold * beta / (2 - beta)

    def update(self, index: torch.Tensor, confidence: torch.Tensor, predicted: torch.Tensor) -> None:
        """Record the predictions at or above the fixed threshold for the pool images at `index`."""
        sure = confidence >= self.threshold
        self.status[index.to(self.status.device)[sure.to(self.status.device)]] = predicted[sure].to(self.status.device)


class EmaTeacher(ReadsPool, Objective):
    carries_terms = True
    pool_teacher = "the student's moving average"

    def __init__(self, model: nn.Module, feed: PoolFeed, thresholds: ClassThresholds, decay: float = 0.999,
                 targets: str = "hard", temperature: float = 1.0, mixup: float = 0.0, pool_weight: float = 1.0,
                 label_smoothing: float = 0.0, cnn: nn.Module | None = None, handover_epochs: int = 0,
                 rampup_epochs: int = 0, align: bool = True) -> None:
        from timm.utils import ModelEmaV3

        super().__init__()
        if targets not in TARGETS:
            raise ValueError(f"targets must be one of {', '.join(TARGETS)}, got {targets!r}")
        if not 0 <= decay < 1 or temperature <= 0 or mixup < 0 or handover_epochs < 0 or rampup_epochs < 0:
            raise ValueError(f"the EMA teacher needs 0 <= decay < 1, temperature > 0, and mixup, handover_epochs, "
                             f"rampup_epochs >= 0, got decay={decay}, temperature={temperature}, mixup={mixup}, "
                             f"handover_epochs={handover_epochs}, rampup_epochs={rampup_epochs}")
        if (cnn is None) != (handover_epochs == 0):
            raise ValueError("a CNN teacher labels the pool for handover_epochs, then the EMA: give both "
                             "--teacher RUN and ema_teacher.handover_epochs=N (N >= 1), or neither")
        self.model, self.student = model, [model]  # a list: the loop may wrap `model`; the average reads this one
        self.teacher = ModelEmaV3(model, decay=decay, use_warmup=True).requires_grad_(False)
        self.cnn = cnn.eval().requires_grad_(False) if cnn is not None else None
        self.feed, self.thresholds, self.handover_epochs = feed, thresholds, handover_epochs
        self.targets, self.temperature, self.mixup = targets, temperature, mixup
        self.pool_weight, self.label_smoothing, self.rampup_epochs = pool_weight, label_smoothing, rampup_epochs
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # the average's step count
        # distribution alignment (`aligned`): the running mean of the teacher's pool predictions
        self.align = align
        self.register_buffer("pool_mean", torch.full((thresholds.num_classes,), 1 / thresholds.num_classes))
        self.streams, self.pool_stream, self.pool_per_step, self.epoch = ("pool",), None, 0, 0

    def train(self, mode: bool = True) -> "EmaTeacher":
        super().train(mode)
        self.teacher.eval()  # both teachers label in eval mode: no dropout, batch-norm statistics as kept
        if self.cnn is not None:
            self.cnn.eval()
        return self

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def cost_parts(self, example: torch.Tensor) -> list:
        """The student, and its moving average labelling the pool's weak views (the CNN during a handover's first
        epochs costs about as much as a small student's average: counted as the average)."""
        from lowdata.objectives.cost import FORWARD, network_part

        return super().cost_parts(example) + [network_part("teacher", self.teacher.module, example, FORWARD,
                                                           "pool")]

    def kept_state(self) -> nn.Module:
        kept = nn.Module()  # the average, the learning status, the step count (a term's state joins it, terms.py)
        kept.teacher, kept.thresholds = self.teacher.module, self.thresholds
        kept.register_buffer("updates", self.updates)
        kept.register_buffer("pool_mean", self.pool_mean)
        return kept

    def ramp(self) -> float:
        """The pool term's share of its weight this epoch (1 after the ramp-up)."""
        if self.epoch >= self.rampup_epochs:
            return 1.0
        return math.exp(-5 * (1 - self.epoch / self.rampup_epochs) ** 2)

    def labeller(self) -> nn.Module:
        return self.cnn if self.epoch < self.handover_epochs else self.teacher.module

    def forward(self, images: torch.Tensor, targets: torch.Tensor,
                pool: tuple[torch.Tensor, torch.Tensor] | None = None,
                index: torch.Tensor | None = None) -> StepOutput:
        """A training step. `pool`: (strong view, weak view) of pool images at `index` (the feed's indices;
        given in tests), else drawn from the feed."""
        counts = {}
        if pool is None:
            index = self.feed.pick(self.pool_per_step, self.pool_stream)
            with torch.autocast(images.device.type, enabled=False):  # the views at full precision, as the images
                pool = self.feed.views(index, self.pool_stream, images.device)
            counts = {"pool_images_read": len(index)}
        with torch.no_grad(), torch.profiler.record_function("lowdata.ema_teacher"):  # a profiler label
            self.teacher.update(self.student[0], step=int(self.updates))  # the weights after the last step
            self.updates += 1
            strong, target, weight, agreement_target = self.pool_targets(*pool, index)
        labelled = len(images)
        student_input = torch.cat([images, strong])
        outputs = self.model(student_input)
        class_all, pool_all = outputs if isinstance(outputs, tuple) else (outputs, outputs)
        base = F.cross_entropy(class_all[:labelled].float(), targets, label_smoothing=self.label_smoothing)
        pool_logits = pool_all[labelled:].float()
        pool_loss = (F.cross_entropy(pool_logits, target, reduction="none") * weight).mean()
        logs = {"base_loss": base.detach(), "pool_loss": pool_loss.detach(), "pool_kept": (weight > 0).float().mean(),
                "pool_threshold": self.thresholds.current().mean(),
                "teacher_agreement": (pool_logits.argmax(1) == agreement_target).float().mean()}
        logits = (class_all[:labelled] + pool_all[:labelled]) / 2  # what the model predicts at inference
        return StepOutput(loss=base + self.pool_weight * self.ramp() * pool_loss, logits=logits, logs=logs,
                          counts=counts, model_input=student_input)

    def pool_targets(self, strong: torch.Tensor, weak: torch.Tensor, index: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The student's (possibly mixed) strong views, their target distributions, each image's weight (1 above
        its class threshold, else 0) and the teacher's top class (for the agreement figure)."""
        teacher_logits = self.labeller()(weak).float()
        probabilities = self.aligned(teacher_logits.softmax(dim=1))
        confidence, predicted = probabilities.max(dim=1)
        weight = (confidence >= self.thresholds.current()[predicted]).float()
        if index is not None:  # FlexMatch: the mask uses the status before this batch
            self.thresholds.update(index, confidence, predicted)
        if self.targets == "hard":
            target = F.one_hot(predicted, probabilities.shape[1]).float()
        else:
            target = self.aligned((teacher_logits / self.temperature).softmax(dim=1), update=False)
        if self.mixup > 0:
            strong, target = self.pseudo_mixup(strong, target, confidence, weight)
        return strong, target, weight, predicted

    def aligned(self, probabilities: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Distribution alignment (ReMixMatch, Berthelot et al. 2020): the teacher's pool predictions rescaled by
        the class prior (uniform: lowdata's budgets are class-balanced) over their running mean, so that a
        teacher leaning to one class cannot pull the student onto it. The mean is cumulative over the first
        thousand batches, then an average with momentum 0.999 (USB's; a short run would otherwise keep the
        uniform start)."""
        if not self.align:
            return probabilities
        if update:
            batches = int(self.updates)  # this one included
            momentum = min(0.999, (batches - 1) / batches)
            self.pool_mean.mul_(momentum).add_(probabilities.mean(0), alpha=1 - momentum)
        rescaled = probabilities / (self.pool_mean * len(self.pool_mean))
        return rescaled / rescaled.sum(dim=1, keepdim=True)

    def pseudo_mixup(self, strong: torch.Tensor, target: torch.Tensor, confidence: torch.Tensor,
                     weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept images mixed in random pairs, their targets by confidence-weighted ratios (Semi-ViT)."""
        kept = weight.nonzero().squeeze(1)
        if len(kept) < 2:
            return strong, target
        generator = self.pool_stream
        partner = kept[torch.randperm(len(kept), generator=generator, device=generator.device).to(kept.device)]
        # NumPy's Beta sampler seeded from the pool stream (torch's takes no generator), as augment/mixing.py
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        lam = float(np.random.default_rng(seed).beta(self.mixup, self.mixup))
        sure, other = confidence[kept], confidence[partner]
        ratio = (lam * sure / (lam * sure + (1 - lam) * other))[:, None]
        strong, target = strong.clone(), target.clone()
        strong[kept] = lam * strong[kept] + (1 - lam) * strong[partner]
        target[kept] = ratio * target[kept] + (1 - ratio) * target[partner]
        return strong, target


@register_method("ema-teacher", settings=EmaTeacherSettings)
def build_ema_teacher(config, settings: EmaTeacherSettings, model: nn.Module, data, device, autocast
                      ) -> tuple[Objective, dict]:
    """The student's moving average labels the pool (Semi-ViT, FixMatch, FlexMatch), after a CNN's first epochs."""
    from lowdata.errors import UsageError
    from lowdata.objectives.distill import load_teacher

    feed = pool_feed(settings.pool_augment, config.pool_ratio, data.info, data.pool_images, device)
    if feed is None:
        raise UsageError("the EMA teacher labels unlabelled images: give --pool all (or a number of pool images); "
                         "this budget leaves no pool" if data.pool_images is not None else
                         "the EMA teacher labels unlabelled images: give --pool all (or a number of pool images)")
    args = {key: getattr(settings, key) for key in SUMMARY_KEYS}
    if args["rampup_epochs"] is None:  # a teacher that starts untrained needs the ramp-up (module docstring)
        args["rampup_epochs"] = 0 if config.init or config.teacher else round(RAMPUP_SHARE * config.epochs)
    cnn, cnn_summary = load_teacher(config, data, device, autocast) if config.teacher else (None, {})
    try:
        thresholds = ClassThresholds(len(feed.images), data.info.num_classes, args["threshold"], args["adaptive"])
        objective = EmaTeacher(model, feed, thresholds, args["decay"], args["targets"], args["temperature"],
                               args["mixup"], settings.pool_weight, config.label_smoothing, cnn,
                               args["handover_epochs"], args["rampup_epochs"], args["align"])
    except ValueError as err:
        raise UsageError(f"objective 'ema-teacher': {err}") from None
    return objective.to(device), {**cnn_summary, "pool_teacher": "ema", "ema_teacher": args}
