"""Self-distillation with no labels (DINO, Caron et al. 2021, arXiv 2104.14294), for every preset.

A student and a teacher of the same architecture (the encoder plus a projection head) read different crops of
an image; the student learns to give, for every crop, the teacher's distribution over `out_dim` prototypes on
the other global crops:

    loss = mean over pairs (global crop i, student crop v != i) of
           H(softmax((teacher(i) - centre) / teacher_temp), softmax(student(v) / student_temp))

The teacher is an exponential moving average of the student (momentum `momentum` rising to 1 on a cosine over
the run), updated after every optimiser step by the loop as its weight average, so the k-NN monitor, the
checkpoint's `model_ema` and `--init RUN` all read the teacher, as DINO evaluates its teacher. Centring (a
running mean of the teacher's outputs, `center_momentum`) and sharpening (the teacher's temperature below the
student's, warmed up from `warmup_teacher_temp` over the first `warmup_teacher_temp_epochs`) keep the outputs
from collapsing to one prototype or to the uniform. The teacher's temperature stays at DINO's default 0.04:
warmed up to 0.07 (Gani et al.'s value for 200 epochs), 8-epoch CIFAR-10 pretrainings drifted into the uniform
collapse as it rose (0.04 -> 0.055 -> 0.07 over epochs 1-3: the teacher's entropy per image 6.70 -> 6.83 -> 6.90
for resnet20, 6.46 -> 6.63 for cct-2/3x2, of log 1024 = 6.93; the loss at log 1024).

The head (three layers, an L2-normalised bottleneck and a weight-normalised last layer whose gradient is zeroed
for the first `freeze_last_layer` epochs, as in DINO) is dropped after pretraining: `--init` takes the
`encoder.` tensors only. Unlike MAE it needs no patch tokens: any tokenizer (CCT's convolutions, a conv stem,
shifted patches) and a CNN pretrain alike. The other small-data defaults are Gani et al.'s (BMVC 2022, arXiv
2210.07240, on CIFAR): out_dim 1024, hidden 512, bottleneck 256, multi-crop as in augment/multicrop.py.
Labels are never read.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from timm.utils import ModelEmaV3

from lowdata.augment import Normalize
from lowdata.augment.multicrop import MultiCrop
from lowdata.models.vit import pooled_features
from lowdata.objectives.base import Objective, StepOutput, register_method
from lowdata.sections import setting


@dataclass(frozen=True)
class DinoSettings:
    out_dim: int = setting(1024, "prototypes the head scores", low=1)
    hidden_dim: int = setting(512, "the head's hidden width", low=1)
    bottleneck_dim: int = setting(256, "the head's L2-normalised bottleneck", low=1)
    student_temp: float = setting(0.1, "the student's temperature", low=0, low_in=False)
    teacher_temp: float = setting(0.04, "the teacher's temperature after its warm-up", low=0, low_in=False)
    warmup_teacher_temp: float = setting(0.04, "the teacher's temperature at the start", low=0, low_in=False)
    warmup_teacher_temp_epochs: int | None = setting(None, "epochs of the temperature's warm-up; none: 30 % of the "
                                                           "run", low=0)
    center_momentum: float = setting(0.9, "momentum of the centre of the teacher's outputs", low=0, high=1,
                                     high_in=False)
    momentum: float = setting(0.996, "the teacher's momentum at the start (rises to 1 on a cosine)", low=0, high=1,
                              high_in=False)
    freeze_last_layer: int = setting(1, "epochs the head's last layer stays as initialised", low=0)
    local_crops: int = setting(8, "small crops per image besides the two global ones", low=0)
    global_scale: tuple[float, float] = setting((0.7, 1.0), "area range of a global crop")
    local_scale: tuple[float, float] = setting((0.2, 0.5), "area range of a local crop")
    local_size: int | tuple[int, int] | None = setting(None, "a local crop's size in pixels; none: from the image's")


class DinoHead(nn.Module):
    """MLP (GELU) to an L2-normalised bottleneck, then a linear layer whose rows are unit vectors (DINO's
    weight-normalised last layer with its gain fixed at 1, `norm_last_layer`)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 512, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        bottleneck = F.normalize(self.mlp(features), dim=-1)
        return F.linear(bottleneck, F.normalize(self.last_layer.weight, dim=1))


class DinoModel(nn.Module):
    """What DINO trains and saves: `encoder` (the preset without its classifier) and `head` (dropped after)."""

    def __init__(self, encoder: nn.Module, head: DinoHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, global_views: torch.Tensor, local_views: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Head outputs of the global crops and of the local ones (None without): one encoder pass per crop
        size, one head pass for all."""
        features = [pooled_features(self.encoder, global_views)]
        if local_views is not None:
            features.append(pooled_features(self.encoder, local_views))
        out = self.head(torch.cat(features))
        return out[:len(global_views)], out[len(global_views):] if local_views is not None else None


class DinoTeacher(ModelEmaV3):
    """The momentum teacher, handed to the loop as its weight average (`Objective.weights_average`): the loop
    calls `update` after every optimiser step, evaluates and checkpoints `module`. Its momentum follows DINO's
    cosine from `base` to 1, set per epoch (`set_epoch`) so that a resumed run continues it exactly."""

    def __init__(self, student: nn.Module, base: float, epochs: int) -> None:
        super().__init__(student, decay=base, use_warmup=False)
        self.module.requires_grad_(False)
        self.base, self.epochs = base, epochs

    @property
    def to_save(self) -> nn.Module:
        return self

    def set_epoch(self, epoch: int) -> None:
        self.decay = 1 - (1 - self.base) * (math.cos(math.pi * epoch / self.epochs) + 1) / 2

    @torch.no_grad()
    def update(self, model: nn.Module, step: int | None = None) -> None:
        super().update(model, step=None)  # the epoch's momentum; timm's step-based warm-up is not DINO's


class Center(nn.Module):
    """The running mean of the teacher's outputs that centring subtracts (what a checkpoint keeps of DINO)."""

    def __init__(self, out_dim: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    @torch.no_grad()
    def update(self, teacher_out: torch.Tensor) -> None:
        batch_center = teacher_out.float().sum(dim=0, keepdim=True)
        count = torch.tensor(float(len(teacher_out)), device=teacher_out.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # the mean over all ranks
            torch.distributed.all_reduce(batch_center)
            torch.distributed.all_reduce(count)
        self.center.mul_(self.momentum).add_(batch_center / count, alpha=1 - self.momentum)


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, student_temp: float,
              teacher_temp: float) -> torch.Tensor:
    """Cross-entropy of the centred, sharpened teacher on global crops (T, N, K) against the student on all
    crops (V, N, K; its first T are the same global crops), averaged over the pairs of different crops."""
    targets = F.softmax((teacher.float() - center) / teacher_temp, dim=-1)
    log_probs = F.log_softmax(student.float() / student_temp, dim=-1)
    total, pairs = student.new_zeros((), dtype=torch.float32), 0
    for i, target in enumerate(targets):
        for v, log_prob in enumerate(log_probs):
            if v != i:
                total = total + (-target * log_prob).sum(dim=-1).mean()
                pairs += 1
    return total / pairs


class DINO(Objective):
    streams = ("views",)  # the crops' areas, flips and colours

    def __init__(self, model: DinoModel, crops: MultiCrop, normalize: nn.Module, epochs: int, momentum: float,
                 student_temp: float, teacher_temp: float, warmup_teacher_temp: float,
                 warmup_teacher_temp_epochs: int, center_momentum: float, freeze_last_layer: int) -> None:
        super().__init__()
        if not 0 <= momentum < 1 or not 0 <= center_momentum < 1:
            raise ValueError(f"momentum and center_momentum must be >= 0 and < 1, got {momentum}, {center_momentum}")
        if min(student_temp, teacher_temp, warmup_teacher_temp) <= 0:
            raise ValueError("student_temp, teacher_temp and warmup_teacher_temp must be above 0")
        if warmup_teacher_temp_epochs < 0 or freeze_last_layer < 0:
            raise ValueError("warmup_teacher_temp_epochs and freeze_last_layer are epochs: 0 or more")
        self.model, self.student = model, [model]  # a list: the loop may wrap `model`; the encoder is this one's
        self.crops, self.normalize = crops, normalize
        self.teacher = DinoTeacher(model, momentum, epochs)
        self.center = Center(model.head.last_layer.out_features, center_momentum)
        self.student_temp, self.final_teacher_temp = student_temp, teacher_temp
        self.warmup_teacher_temp, self.warmup_epochs = warmup_teacher_temp, warmup_teacher_temp_epochs
        self.freeze_last_layer, self.epoch, self.generator = freeze_last_layer, 0, None
        # a zero gradient leaves the unit-row last layer where it is under AdamW (its decay shrinks only the rows'
        # norms, which the head divides out), and keeps every parameter in DDP's reduction
        model.head.last_layer.weight.register_hook(
            lambda grad: torch.zeros_like(grad) if self.epoch < self.freeze_last_layer else grad)
        self.set_epoch(0)

    def cost_parts(self, example: torch.Tensor) -> list:
        """The student on two global and the local crops of each image (forward and backward), the teacher on
        the two global ones (forward)."""
        from lowdata.objectives.cost import FORWARD, TRAINED, CostPart, flops_of

        views = example.expand(2, -1, -1, -1)
        local = example.new_zeros(self.crops.local_crops, example.shape[1], *self.crops.local_size)
        student = flops_of(lambda: self.model(views, local if self.crops.local_crops else None), self.model)
        teacher = flops_of(lambda: self.model(views), self.model)
        return [CostPart("model", TRAINED * student), CostPart("teacher", FORWARD * teacher)]

    @property
    def encoder(self) -> nn.Module:
        return self.student[0].encoder

    def train(self, mode: bool = True) -> "DINO":
        super().train(mode)
        self.teacher.eval()  # no dropout or stochastic depth in the teacher; batch norm as averaged
        return self

    def weights_average(self) -> nn.Module:
        return self.teacher

    def kept_state(self) -> nn.Module:
        return self.center

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        self.generator = streams["views"]

    def begin_epoch(self, epoch: int) -> None:
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.teacher.set_epoch(epoch)
        warm = epoch / self.warmup_epochs if epoch < self.warmup_epochs else 1.0
        self.teacher_temp = self.warmup_teacher_temp + warm * (self.final_teacher_temp - self.warmup_teacher_temp)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        global_views, local_views = self.crops(images, self.generator, self.normalize)
        student_global, student_local = self.model(global_views, local_views)
        with torch.no_grad():
            teacher_global, _ = self.teacher.module(global_views)
        n = len(images)
        student = student_global.reshape(2, n, -1)
        if student_local is not None:
            student = torch.cat([student, student_local.reshape(-1, n, student_local.shape[-1])])
        teacher = teacher_global.reshape(2, n, -1)
        loss = dino_loss(student, teacher, self.center.center, self.student_temp, self.teacher_temp)
        logs = collapse_figures(teacher.float(), self.center.center, self.teacher_temp)
        self.center.update(teacher_global)
        return StepOutput(loss=loss, logs=logs)

    @torch.no_grad()
    def write_figures(self, run_dir, images: torch.Tensor, normalize: nn.Module) -> None:
        """`views.png`: a few test images and the crops DINO's student and teacher read of them."""
        from lowdata.objectives.figures import image_rows

        generator = torch.Generator(device=images.device).manual_seed(0)
        global_views, local_views = self.crops(normalize(images), generator, normalize)
        n = len(images)
        rows = {"image": images.float(), "global crop 1": normalize.inverse(global_views[:n]),
                "global crop 2": normalize.inverse(global_views[n:])}
        if local_views is not None:
            rows["local crop 1"] = normalize.inverse(local_views[:n])
        image_rows(run_dir / "views.png", rows)


def collapse_figures(teacher: torch.Tensor, center: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    """Two signs of collapse, as 0-d tensors: the teacher's mean per-image entropy (near log K: uniform outputs)
    and the entropy of its mean distribution (near 0: one prototype for every image)."""
    probs = F.softmax((teacher - center) / temperature, dim=-1).reshape(-1, teacher.shape[-1])
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1).mean()
    mean = probs.mean(0)
    return {"teacher_entropy": entropy.detach(), "teacher_mean_entropy": -(mean * mean.clamp_min(1e-12).log()).sum()}


@register_method("dino", reads_labels=False, settings=DinoSettings)
def build_dino(config, settings: DinoSettings, model: nn.Module, data, device, autocast) -> tuple[Objective, dict]:
    """Self-distillation with no labels (DINO, Caron et al. 2021), for every preset.

    Around the encoder `model`; its crops' stream arrives with the epoch's streams (use_streams)."""
    from lowdata.errors import UsageError

    args = asdict(settings)
    if args["warmup_teacher_temp_epochs"] is None:
        args["warmup_teacher_temp_epochs"] = round(0.3 * config.epochs)
    info = data.info
    try:
        local_size = args["local_size"]
        crops = MultiCrop(tuple(info.image_size), info.channels, info.hflip, tuple(args["global_scale"]),
                          tuple(args["local_scale"]), int(args["local_crops"]),
                          (local_size, local_size) if isinstance(local_size, int) else local_size)
        head = DinoHead(model.num_features, args["out_dim"], args["hidden_dim"], args["bottleneck_dim"])
        objective = DINO(DinoModel(model, head), crops, Normalize(info), config.epochs, args["momentum"],
                         args["student_temp"], args["teacher_temp"], args["warmup_teacher_temp"],
                         args["warmup_teacher_temp_epochs"], args["center_momentum"], args["freeze_last_layer"])
    except (TypeError, ValueError) as err:
        raise UsageError(f"pretraining method 'dino' rejected its settings: {err}") from None
    summary = {key: args[key] for key in ("out_dim", "momentum", "teacher_temp", "local_crops")}
    summary["crops"] = f"2 x {crops.image_size[0]} px, {crops.local_crops} x {crops.local_size[0]} px"
    return objective.to(device), summary
