"""Typed defaults -> YAML file -> command-line values; the resolved config is saved with every run.

Frozen dataclasses rather than a config framework: one home for defaults, validated types, and unknown keys
rejected with a hint (a misspelt key silently ignored is the worst kind of small-data bug).
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lowdata import sections
from lowdata.errors import UsageError, shown
from lowdata.sections import coerce


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
    # the settings of the method and of each auxiliary term, by section (`distill: {alpha: 0.7}`, `guidance:
    # {guide: RUN}`): each section's dataclass lives beside its code (objectives/); written as top-level keys in
    # YAML and as `section.key=value` on the command line; filled with defaults when the run resolves its config
    sections: dict = field(default_factory=dict)

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
    adapt_batch: bool = False  # a tiny budget trains at a smaller batch (training/optim.py's budget_batch)
    low_res_size: int | None = None  # the height of the images in the first `low_res_epochs` epochs' steps
    low_res_epochs: int = 0

    def replace(self, **changes: Any) -> "LoopSettings":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    # data
    labels: int | None = None  # total labelled examples, class-balanced; None = the whole training split
    labels_per_class: int | None = None
    val_fraction: float = 0.0  # carved from the labelled budget, stratified
    selection: str | None = None  # choose the budget's images by a `lowdata select` strategy (typiclust,
    # probcover, kmeans, random) over `selection_features` instead of class-balanced at random
    selection_features: str = "pca"  # pca (raw pixels) or a run / weights / timm name, as --init takes
    selection_model: str | None = None  # the architecture of a selection_features weights file (select's --model)
    selection_size: int | None = None  # the side the features' model reads the images at (resized; 128 for an
    # ImageNet model on 32-px images: its features at 32 px are near chance); None: the images' own
    classes: str | None = None  # only these classes, comma-separated (e.g. a transfer target); None = all
    # model
    init: str | None = None  # start from: a lowdata run, a weights file, a Hugging Face ViT folder, a timm name
    pretrained: bool = False  # with a timm model name in `init`: fetch timm's pretrained weights
    freeze_epochs: int = 0  # fine-tuning: train only the head for this many epochs, then everything
    linear_probe: bool = False  # train only the head on frozen features
    layer_decay: float | None = None  # layer-wise learning-rate decay (MAE fine-tuning: 0.65-0.75)
    # objective
    objective: str | None = None  # the method (objectives/, `lowdata methods`): None = distill with a teacher,
    # ema-teacher with pool_teacher=ema, else supervised; its settings are its section (distill.alpha=0.7)
    label_smoothing: float = 0.1
    teacher: str | None = None  # the teacher (distill; ema-teacher's first epochs): a lowdata run directory, or a
    # weights file + teacher_model
    teacher_model: str | None = None  # the teacher's architecture when `teacher` is a bare weights file
    teacher_size: int | None = None  # the side a weights-file teacher was trained at (224 for ImageNet); the teacher
    # resizes the student's images to it. A run directory says its own; None: the student's
    # the unlabelled pool (training images outside the budget), a source of images for the method and its terms;
    # never of labels
    pool: str | None = None  # "all" or a number of pool images (class-blind, seeded); None: labelled images only
    pool_ratio: float = 1.0  # pool images per labelled image in each step (FixMatch's mu)
    rounds: int = 1  # self-training: each round's student teaches the next (Noisy Student); earlier rounds in OUT/rounds
    # augmentation and optimisation
    repeated_aug: int = 1  # DeiT's repeated augmentation: each drawn image this many times per epoch
    ema_decay: float = 0.0  # 0 = no EMA of weights
    patch_whitening: bool = False  # the first convolution's filters start as the labelled images' whitened patch
    # directions (airbench; models/whitening.py)
    low_res_size: int | None = None  # progressive resolution: the first low_res_fraction of the epochs train on
    low_res_fraction: float = 0.5  # images resized to this height (models/resolution.py); evaluation at full size
    tta: bool = False  # evaluate (and eval, predict) on logits averaged over shifted and mirrored views (airbench)
    compile: bool | str = "auto"  # torch.compile the model: true, false, or auto (where this machine measured it
    # faster for the same setup and the run repays the compile; runs/compiling.py). Saved resolved to true/false

    def loop_settings(self, **changes: Any) -> LoopSettings:
        return super().loop_settings(repeated_aug=self.repeated_aug, freeze_epochs=self.freeze_epochs,
                                     layer_decay=self.layer_decay, compile=self.compile is True,
                                     adapt_batch=self.adapts_batch(), low_res_size=self.low_res_size,
                                     low_res_epochs=self.low_res_epochs()).replace(**changes)

    def low_res_epochs(self) -> int:
        """At least the first epoch and never the last (FixRes: the last ones at full size); 0 without low_res_size
        or with a single epoch (then refused, models/resolution.py)."""
        return min(max(round(self.low_res_fraction * self.epochs), 1), self.epochs - 1) if self.low_res_size else 0

    def adapts_batch(self) -> bool:
        """The default batch (128) shrinks on budgets too small for it (training/optim.py's budget_batch); a
        batch_size set to anything else is kept as set."""
        return self.batch_size == RunConfig.batch_size


@dataclass(frozen=True)
class PretrainConfig(RunConfig):
    method: str = "mae"  # its settings are its section (mae.mask_ratio=0.6, dino.local_crops=4)
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


DICT_SETTINGS = ("model_args", "augment_args")

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
    "label_smoothing": (0, 1, True, False), "pool_ratio": (0, None, False, True), "rounds": (1, None, True, True),
    "repeated_aug": (1, None, True, True), "ema_decay": (0, 1, True, False), "knn_memory": (1, None, True, True),
    "knn_k": (1, None, True, True), "teacher_size": (1, None, True, True),
    "selection_size": (1, None, True, True),
    "low_res_size": (1, None, True, True), "low_res_fraction": (0, 1, False, True),
}


def check_range(key: str, value: Any) -> None:
    sections.check_range(key, value, RANGES.get(key))


def field_names(cls: type = TrainConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "sections"]


def given_values(file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                 assignments: list[str] | None = None) -> dict[str, Any]:
    """Only the settings the user gave (YAML file < flags < key=value), not yet checked against a config. A
    dotted key fills a mapping: model_args.patch_size=2, augment_args.mixup=0.2, distill.alpha=0.7."""
    values: dict[str, Any] = {}
    if file is not None:
        values.update(load_yaml(file))
    pairs = [(k, v) for k, v in (overrides or {}).items() if v is not None]
    pairs += [parse_assignment(text) for text in assignments or []]
    for key, value in pairs:
        if "." in key:
            top, sub = key.split(".", 1)
            current = values.get(top)
            values[top] = {**(current if isinstance(current, dict) else {}), sub: value}
        else:
            values[key] = value
    return values


def build(cls: type, values: dict[str, Any], known_sections: Mapping[str, tuple[str, type]] | None = None):
    """A config of class `cls` from `values`, each checked (type, range; an unknown key refused with a
    did-you-mean). `known_sections`: section name -> (what it belongs to, e.g. "method 'distill'", its settings
    dataclass), from the registries above this layer (objectives.build_config passes them); a section's given
    values are checked here, its defaults filled when the run knows its method (objectives.resolve_sections)."""
    from lowdata import flat_settings

    known_sections = known_sections or {}
    values = {**{k: v for k, v in values.items() if k != "sections"}, **(values.get("sections") or {})}
    values = (flat_settings.unflatten_pretrain if cls is PretrainConfig else flat_settings.unflatten_train)(values)
    known = field_names(cls)
    hints = typing.get_type_hints(cls)
    given_sections = {}
    for key in values:
        if key in known_sections:
            what, settings_class = known_sections[key]
            given_sections[key] = sections.check_section(key, settings_class, values[key], what)
        elif key not in known:
            raise UsageError(unknown_message(key, known, known_sections, values[key]))
    coerced = {key: coerce(key, value, hints[key]) for key, value in values.items() if key in known}
    for key, value in coerced.items():
        check_range(key, value)
    if isinstance(coerced.get("compile"), str) and coerced["compile"] != "auto":
        raise UsageError(f"setting 'compile' must be true, false or auto, got {shown(coerced['compile'])}")
    return cls(**coerced, sections=given_sections)


def unknown_message(key: str, known: list[str], known_sections: Mapping[str, Any], value: Any) -> str:
    close = difflib.get_close_matches(str(key), [*known, *known_sections], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if isinstance(value, dict):  # a dotted key or a mapping: only the mappings and sections take one
        mappings = [*DICT_SETTINGS, *sorted(known_sections)]
        return f"unknown setting {shown(key)}{hint}; only {', '.join(mappings)} take a dotted key or a mapping"
    return f"unknown setting {shown(key)}{hint}; valid settings: {', '.join(known)}"


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


def to_dict(config: Any) -> dict[str, Any]:
    """The config as saved: its fields, then each section as a top-level mapping (`distill: {alpha: 0.5}`)."""
    values = dataclasses.asdict(config)
    return {**{k: v for k, v in values.items() if k != "sections"}, **values["sections"]}


def save_yaml(config: Any, path: Path) -> None:
    import yaml

    from lowdata.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
