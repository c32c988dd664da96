"""Typed defaults -> YAML file -> command-line values; the resolved config is saved with every run.

Frozen dataclasses rather than a config framework: one home for defaults, validated types, and unknown keys
rejected with a hint (a misspelt key silently ignored is the worst kind of small-data bug).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lowdata.errors import UsageError, shown


@dataclass(frozen=True)
class RunConfig:
    """What every kind of run is set by (training, pretraining); each kind adds its own fields below and may
    give some of these other defaults."""
    # data
    data: str = "digits"
    split_seed: int = 0  # hold-out split for datasets without an official test split
    image_size: int | None = None  # resize image folders of mixed sizes; None = keep the data's own size
    # model
    model: str = "resnet20"
    model_args: dict = field(default_factory=dict)  # forwarded to the model constructor (timm keyword names)
    drop_path: float | None = None  # stochastic depth; None = the model's default (0.1 for ViT presets, 0 for CNNs)
    # augmentation
    augment: str = "basic"  # none, basic, strong (DeiT's recipe), 3aug (DeiT III's); see `lowdata augment-preview`
    augment_args: dict = field(default_factory=dict)  # the policy's own settings, e.g. augment_args.mixup=0.2
    # optimisation
    epochs: int = 30
    batch_size: int = 128
    lr: float | None = None  # AdamW peak; None = the model's default (1e-3 for ViTs, 4e-3 for CIFAR ResNets)
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_epochs: float = 3.0
    clip_grad: float | None = 1.0
    precision: str = "auto"  # autocast dtype (weights stay fp32): auto (bf16 where the device runs it natively,
    # fp16 on GPUs without bf16, else fp32; see device.py), bf16, fp16 or fp32
    # run
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # CPU threads; None = the usable cores shared among lowdata's processes here
    eval_every: int | None = None  # evaluation every this many epochs and after the last; None = after the last
    # only (training: a 10,000-image test pass costs more than an epoch of a small budget)
    checkpoint_minutes: float = 1.0  # at most this long between checkpoints (0 = after every epoch)
    trackers: str | None = None  # besides TensorBoard: mlflow and/or wandb (comma-separated), through their clients
    out: str | None = None

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    def loop_settings(self, **changes: Any) -> "LoopSettings":
        """What the training loop reads of this config, field by field (a misspelt name fails here)."""
        return LoopSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, min_lr=self.min_lr,
                            weight_decay=self.weight_decay, warmup_epochs=self.warmup_epochs,
                            clip_grad=self.clip_grad, eval_every=self.eval_every,
                            checkpoint_minutes=self.checkpoint_minutes).replace(**changes)


@dataclass(frozen=True)
class LoopSettings:
    """The loop's own settings (training/loop.py), made by a config's `loop_settings`."""
    epochs: int
    batch_size: int
    lr: float
    min_lr: float
    weight_decay: float
    warmup_epochs: float
    clip_grad: float | None
    eval_every: int | None  # None: after the last epoch only
    repeated_aug: int = 1
    freeze_epochs: int = 0
    layer_decay: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    checkpoint_minutes: float = 1.0  # at most this long between checkpoints (0 = every epoch); the last always
    compile: bool = False  # torch.compile the trained model's forward and backward

    def replace(self, **changes: Any) -> "LoopSettings":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    # data
    labels: int | None = None  # total labelled examples, class-balanced; None = the whole training split
    labels_per_class: int | None = None
    val_fraction: float = 0.0  # carved from the labelled budget, stratified
    classes: str | None = None  # only these classes, comma-separated (e.g. a transfer target); None = all
    # model
    init: str | None = None  # start from: a lowdata run, a weights file, a Hugging Face ViT folder, a timm name
    pretrained: bool = False  # with a timm model name in `init`: fetch timm's pretrained weights
    freeze_epochs: int = 0  # fine-tuning: train only the head for this many epochs, then everything
    linear_probe: bool = False  # train only the head on frozen features
    layer_decay: float | None = None  # layer-wise learning-rate decay (MAE fine-tuning: 0.65-0.75)
    # objective
    objective: str | None = None  # the method (objectives/): None = distill with a teacher, else supervised;
    # ema-teacher with pool_teacher=ema
    method_args: dict = field(default_factory=dict)  # the method's own settings (ema-teacher: threshold, ...)
    label_smoothing: float = 0.1
    teacher: str | None = None  # distillation teacher: a lowdata run directory, or a weights file + teacher_model
    teacher_model: str | None = None  # the teacher's architecture when `teacher` is a bare weights file
    distill: str | None = None  # hard (DeiT), soft (KL, x tau^2) or none; None = hard with a teacher, else none
    distill_alpha: float = 0.5  # weight of the distillation term; the label term gets 1 - alpha
    distill_tau: float = 1.0  # temperature of the soft mode
    dist_token: bool = False  # DeiT's distillation token and second head (ViT presets)
    # the unlabelled pool (training images outside the budget): the teacher's targets, never labels
    pool: str | None = None  # "all" or a number of pool images (class-blind, seeded); None: labelled images only
    pool_ratio: float = 1.0  # pool images per labelled image in each step (FixMatch's mu)
    pool_threshold: float = 0.0  # keep a pool image only where the teacher's top probability reaches this
    pool_weight: float = 1.0  # weight of the pool term beside the labelled loss
    pool_augment: str = "strong"  # the student's view of a pool image (Mixup/CutMix off); the teacher sees basic
    pool_teacher: str = "cnn"  # who labels the pool: cnn (the --teacher run) or ema (the student's own moving
    # average, objectives/ema_teacher.py; --teacher then only for its first handover_epochs)
    # feature guidance (Li et al. 2022): the ViT student's tokens imitate a CNN's intermediate feature maps
    guide: str | None = None  # the CNN: a lowdata run directory (e.g. a resnet20 run on the same data)
    guide_weight: float = 2.5  # weight of the guidance term (the paper's)
    guide_blocks: str | None = None  # guided student blocks, e.g. "0,4,8"; None = one per guide stage, evenly spaced
    guide_on: str = "both"  # the images guided: labelled, pool or both
    rounds: int = 1  # self-training: each round's student teaches the next (Noisy Student); earlier rounds in OUT/rounds
    # augmentation and optimisation
    repeated_aug: int = 1  # DeiT's repeated augmentation: each drawn image this many times per epoch
    ema_decay: float = 0.0  # 0 = no EMA of weights
    patch_whitening: bool = False  # the first convolution's filters start as the labelled images' whitened patch
    # directions (airbench; models/whitening.py)
    tta: bool = False  # evaluate (and eval, predict) on logits averaged over shifted and mirrored views (airbench)
    compile: bool | str = "auto"  # torch.compile the model: true, false, or auto (where this machine measured it
    # faster for the same setup and the run repays the compile; runs/compiling.py). Saved resolved to true/false

    def loop_settings(self, **changes: Any) -> LoopSettings:
        return super().loop_settings(repeated_aug=self.repeated_aug, freeze_epochs=self.freeze_epochs,
                                     layer_decay=self.layer_decay, compile=self.compile is True).replace(**changes)


@dataclass(frozen=True)
class PretrainConfig(RunConfig):
    # settings that became a method's own: still taken at the top level (saved configs, scripts, study folders)
    # and moved into method_args after their range check (in `build`)
    METHOD_SETTINGS: ClassVar[tuple[str, ...]] = ("mask_ratio", "norm_pix_loss")
    method: str = "mae"
    method_args: dict = field(default_factory=dict)  # the method's own settings (MAE: mask_ratio, norm_pix_loss,
    # decoder_depth, ...), checked by the method
    knn_memory: int = 5000  # labelled training images the k-NN monitor votes with (balanced, seeded)
    knn_k: int = 20
    # the shared settings' defaults for pretraining
    model: str = "vit-tiny"
    drop_path: float | None = 0.0  # MAE pretrains without stochastic depth
    epochs: int = 100
    batch_size: int = 256
    lr: float | None = 1.5e-3  # MAE: 1.5e-4 x batch/256 at ImageNet scale; small data and short runs want more
    warmup_epochs: float = 5.0
    clip_grad: float | None = None
    eval_every: int | None = 5  # the k-NN monitor


DICT_SETTINGS = ("model_args", "augment_args", "method_args")

# The valid range of every numeric setting, checked in `build` (the one place settings are made): (low, high,
# low included, high included); None leaves that side open. A None value (a default to resolve) is allowed.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "image_size": (1, None, True, True), "drop_path": (0, 1, True, False), "epochs": (1, None, True, True),
    "batch_size": (1, None, True, True), "lr": (0, None, False, True), "min_lr": (0, None, True, True),
    "weight_decay": (0, None, True, True), "warmup_epochs": (0, None, True, True),
    "clip_grad": (0, None, False, True), "threads": (1, None, True, True), "eval_every": (1, None, True, True),
    "checkpoint_minutes": (0, None, True, True), "labels": (1, None, True, True),
    "labels_per_class": (1, None, True, True), "val_fraction": (0, 1, True, False),
    "freeze_epochs": (0, None, True, True), "layer_decay": (0, 1, False, True),
    "label_smoothing": (0, 1, True, False), "distill_alpha": (0, 1, True, True), "distill_tau": (0, None, False, True),
    "pool_ratio": (0, None, False, True), "pool_threshold": (0, 1, True, True), "pool_weight": (0, None, True, True),
    "rounds": (1, None, True, True), "guide_weight": (0, None, True, True), "repeated_aug": (1, None, True, True), "ema_decay": (0, 1, True, False),
    "mask_ratio": (0, 1, False, False), "knn_memory": (1, None, True, True), "knn_k": (1, None, True, True),
}


def check_range(key: str, value: Any) -> None:
    import math

    if key not in RANGES or value is None:
        return
    low, high, low_in, high_in = RANGES[key]
    ok = math.isfinite(value) and (low is None or (value >= low if low_in else value > low)) and \
        (high is None or (value <= high if high_in else value < high))
    if not ok:
        left = "" if low is None else f"{'>=' if low_in else '>'} {low:g}"
        right = "" if high is None else f"{'<=' if high_in else '<'} {high:g}"
        raise UsageError(f"setting {shown(key)} must be {' and '.join(p for p in (left, right) if p)}, "
                         f"got {shown(value)}")


def field_names(cls: type = TrainConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def given_values(file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                 assignments: list[str] | None = None) -> dict[str, Any]:
    """Only the settings the user gave (YAML file < flags < key=value), not yet checked against a config."""
    values: dict[str, Any] = {}
    if file is not None:
        values.update(load_yaml(file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for text in assignments or []:
        key, value = parse_assignment(text)
        if "." in key:  # model_args.patch_size=2, augment_args.mixup=0.2
            top, sub = key.split(".", 1)
            if top not in DICT_SETTINGS:
                raise UsageError(f"only {', '.join(DICT_SETTINGS)} take a dotted key, got {shown(key)}; "
                                 "write e.g. model_args.patch_size=2")
            values[top] = {**values.get(top, {}), sub: value}
        else:
            values[key] = value
    return values


def build(cls: type, values: dict[str, Any]):
    moved = {key: values[key] for key in getattr(cls, "METHOD_SETTINGS", ()) if key in values}
    if moved:
        for key, value in moved.items():
            check_range(key, value)
        values = {**{k: v for k, v in values.items() if k not in moved},
                  "method_args": {**moved, **(values.get("method_args") or {})}}
    known = field_names(cls)
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown setting {shown(key)}{hint}; valid settings: {', '.join(known)}")
    coerced = {key: coerce(key, value, hints[key]) for key, value in values.items()}
    for key, value in coerced.items():
        check_range(key, value)
    if isinstance(coerced.get("compile"), str) and coerced["compile"] != "auto":
        raise UsageError(f"setting 'compile' must be true, false or auto, got {shown(coerced['compile'])}")
    return cls(**coerced)


def load_yaml(file: str | Path) -> dict[str, Any]:
    import yaml

    from lowdata.settings_file import MAX_BYTES, Refused, load_text

    path = Path(file)
    try:
        if path.stat().st_size > MAX_BYTES:  # before reading: a settings file is small
            raise Refused(f"is larger than {MAX_BYTES >> 20} MB; settings take a few hundred bytes")
        loaded = load_text(path.read_text(encoding="utf-8"))
    except Refused as err:
        raise UsageError(f"config file {path} {err}") from None
    except OSError as err:
        raise UsageError(f"cannot read config file {path}: {err.strerror}; check the path") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    except yaml.constructor.ConstructorError as err:  # safe_load refuses tags that build Python objects
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UsageError(f"config file {path} uses a YAML tag lowdata does not load{line} ({err.problem}); "
                         "give plain values (numbers, strings, lists, mappings)") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UsageError(f"config file {path} is not valid YAML{line}; fix its syntax") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings (key: value), not a {type(loaded).__name__}")
    return loaded


def parse_assignment(text: str) -> tuple[str, Any]:
    import yaml

    if "=" not in text:
        raise UsageError(f"cannot read {shown(text)}: settings other than flags are written key=value, e.g. lr=5e-4")
    from lowdata.settings_file import Refused, load_text

    key, raw = text.split("=", 1)
    try:
        value = load_text(raw) if raw else None
    except (yaml.YAMLError, Refused):
        value = raw
    return key.strip(), value


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check and convert one value to its declared type (int, float, str, bool, dict, or X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise UsageError(f"setting {shown(key)} needs a value")
    if isinstance(value, str):  # YAML 1.1 reads "5e-4" as a string
        value = number_or_text(value)
    for option in options:
        if option is type(None):
            continue
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if option is dict and isinstance(value, dict):
            return dict(value)
    wanted = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise UsageError(f"setting {shown(key)} must be {wanted}, got {shown(value)}")


def number_or_text(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_yaml(config: Any, path: Path) -> None:
    import yaml

    from lowdata.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
