"""Knowledge distillation from a frozen teacher (DeiT's `DistillationLoss`, in one small objective).

    loss = (1 - alpha) * CE(class head, targets) + alpha * distillation(dist head, teacher)

`hard`: cross-entropy against the teacher's argmax (DeiT's choice). `soft`: KL divergence between the
temperature-softened distributions, times tau^2 (Hinton), averaged over images. `none`: the supervised loss
alone. A student with a distillation token (timm's `VisionTransformerDistilled`) returns two heads in training:
the class head learns from the targets and the distillation head from the teacher; at inference the model
averages them itself. A student without one uses its single head for both terms.

The teacher sees exactly the student's input (after augmentation and Mixup/CutMix), under the same autocast,
in eval mode without gradients; its weights never change.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.objectives.base import OBJECTIVES, Objective, StepOutput

MODES = ("hard", "soft", "none")


class Distill(Objective):
    def __init__(self, model: nn.Module, teacher: nn.Module, mode: str = "hard", alpha: float = 0.5,
                 tau: float = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"distillation mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0 <= alpha <= 1 or tau <= 0:
            raise ValueError(f"distillation needs 0 <= alpha <= 1 and tau > 0, got alpha={alpha}, tau={tau}")
        self.model, self.teacher = model, teacher.eval().requires_grad_(False)
        self.mode, self.alpha, self.tau, self.label_smoothing = mode, alpha, tau, label_smoothing
        if hasattr(model, "set_distilled_training"):
            model.set_distilled_training(True)

    def train(self, mode: bool = True) -> "Distill":
        super().train(mode)
        self.teacher.eval()  # the teacher's dropout and batch-norm statistics stay as trained
        return self

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> StepOutput:
        outputs = self.model(images)
        class_logits, dist_logits = outputs if isinstance(outputs, tuple) else (outputs, outputs)
        base = F.cross_entropy(class_logits.float(), targets, label_smoothing=self.label_smoothing)
        logits = (class_logits + dist_logits) / 2  # what the model predicts at inference
        if self.mode == "none":
            return StepOutput(loss=base, logits=logits, logs={"base_loss": base.detach()})
        with torch.no_grad():
            teacher_logits = self.teacher(images).float()
        distill = distillation_loss(dist_logits.float(), teacher_logits, self.mode, self.tau)
        loss = (1 - self.alpha) * base + self.alpha * distill
        agreement = (dist_logits.argmax(1) == teacher_logits.argmax(1)).float().mean()
        return StepOutput(loss=loss, logits=logits, logs={"base_loss": base.detach(), "distill_loss": distill.detach(),
                                                          "teacher_agreement": agreement})


@OBJECTIVES.register("distill")
def build_distill(config, model: nn.Module, dataset, device, autocast) -> tuple[Objective, dict]:
    """The student's objective with the configured teacher (frozen, on `device`), and the teacher's test
    accuracy for the summary."""
    from lowdata.augment import Normalize
    from lowdata.errors import UsageError
    from lowdata.evaluate import evaluate
    from lowdata.models.loading import load_trained_model

    info = dataset.info
    teacher, name = load_trained_model(config.teacher, info.num_classes, info.channels, info.image_size,
                                       model_name=config.teacher_model, what="teacher")
    teacher.to(device)
    result = evaluate(teacher, dataset.test_images, dataset.test_labels, Normalize(info).to(device), device, autocast)
    try:
        objective = Distill(model, teacher, config.distill, config.distill_alpha, config.distill_tau,
                            config.label_smoothing)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return objective, {"teacher": config.teacher, "teacher_model": name, "teacher_test_acc": result["acc"],
                       "distill": config.distill}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mode: str,
                      tau: float = 1.0) -> torch.Tensor:
    if mode == "hard":
        return F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))
    # batchmean: the KL divergence per image. DeiT divides its sum by N x classes instead, which only rescales
    # alpha by 1/classes; the per-image form keeps alpha's meaning the same for 10 or 1,000 classes.
    return F.kl_div(F.log_softmax(student_logits / tau, dim=1), F.log_softmax(teacher_logits / tau, dim=1),
                    reduction="batchmean", log_target=True) * tau * tau
