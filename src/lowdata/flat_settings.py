"""Settings that became a method's or a term's own, still taken in their old flat spelling (saved configs of
older runs, study folders, scripts and recipes): each is moved once into its section, with one line naming
the new spelling; an old default that the old flat config saved for every run is dropped silently.
"""
from __future__ import annotations

from typing import Any

from lowdata.errors import UsageError, shown

# old flat key -> (section, key in it), with the old default (dropped silently where it was saved as such)
TRAIN: dict[str, tuple[str, str, Any]] = {
    "distill_alpha": ("distill", "alpha", 0.5), "distill_tau": ("distill", "tau", 1.0),
    "pool_threshold": ("distill", "pool_threshold", 0.0),
    "guide": ("guidance", "guide", None), "guide_weight": ("guidance", "weight", 2.5),
    "guide_blocks": ("guidance", "blocks", None), "guide_on": ("guidance", "images", "both"),
}
POOL_METHOD_KEYS = {"pool_weight": 1.0, "pool_augment": "strong"}  # the section of whichever method reads the pool
PRETRAIN: dict[str, tuple[str, str, Any]] = {"mask_ratio": ("mae", "mask_ratio", None),
                                             "norm_pix_loss": ("mae", "norm_pix_loss", None)}
POOL_TEACHERS = ("cnn", "ema")
_noted: set[str] = set()


def section_name(method: str) -> str:
    """A method's section: its name with dashes as underscores (ema-teacher -> ema_teacher)."""
    return method.replace("-", "_")


def train_objective(values: dict[str, Any]) -> str:
    """The method an old flat config meant: its objective, else the EMA teacher with pool_teacher=ema, else
    distillation with a teacher, else supervised."""
    if values.get("objective"):
        return str(values["objective"])
    if values.get("pool_teacher") == "ema":
        return "ema-teacher"
    return "distill" if values.get("teacher") else "supervised"


def unflatten_train(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the old flat training settings moved into their sections."""
    values = dict(values)
    pool_teacher = values.pop("pool_teacher", None)
    if pool_teacher is not None:
        if pool_teacher not in POOL_TEACHERS:
            raise UsageError(f"pool_teacher must be one of {', '.join(POOL_TEACHERS)}, got {shown(pool_teacher)}")
        if pool_teacher == "ema":
            if values.get("objective") not in (None, "ema-teacher"):
                raise UsageError(f"pool_teacher=ema is the ema-teacher objective, not {shown(values['objective'])}: "
                                 "drop one")
            values["objective"] = "ema-teacher"
            note("pool_teacher=ema", "objective=ema-teacher")
    method = train_objective({**values, **({"pool_teacher": pool_teacher} if pool_teacher else {})})
    if "distill" in values and not isinstance(values["distill"], dict):
        mode = values.pop("distill")
        # no mode (none) is what every method but distill does; the EMA teacher never took the CNN's labels; a
        # mode without a teacher stays in the section, refused when the run resolves its method
        if mode not in (None, "none") and method != "ema-teacher" or mode == "none" and method == "distill":
            move(values, "distill", "distill", "mode", mode, None)
    if values.pop("dist_token", False) is True:
        values["model_args"] = {**(values.get("model_args") or {}), "distilled": True}
        note("dist_token=true", "model_args.distilled=true")
    guided = bool(values.get("guide")) or "guidance" in values
    for old, (section, key, default) in TRAIN.items():
        if old in values:
            value = values.pop(old)
            if section == "distill" and method != "distill" or section == "guidance" and not guided:
                continue  # read by no other method, or guidance off: ignored as before (old configs saved them)
            move(values, old, section, key, value, default)
    for old, default in POOL_METHOD_KEYS.items():
        if old in values:
            move(values, old, section_name(method), old, values.pop(old), default)
    if values.get("method_args"):
        move_mapping(values, "method_args", section_name(method))
    values.pop("method_args", None)
    return values


def unflatten_pretrain(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the old flat pretraining settings (mask_ratio, norm_pix_loss, method_args) in the method's
    section."""
    values = dict(values)
    method = section_name(str(values.get("method") or "mae"))
    for old, (_, key, default) in PRETRAIN.items():
        if old in values:
            move(values, old, method, key, values.pop(old), default)
    if values.get("method_args"):
        move_mapping(values, "method_args", method)
    values.pop("method_args", None)
    return values


def move(values: dict[str, Any], old: str, section: str, key: str, value: Any, default: Any) -> None:
    """One old setting into its section (a value the section already has wins); an old default is dropped."""
    if value == default:
        return
    current = values.get(section)
    if current is not None and not isinstance(current, dict):
        raise UsageError(f"setting {shown(section)} is a section of settings: give a mapping, got {shown(current)}")
    values[section] = {key: value, **(current or {})}
    note(old, f"{section}.{key}")


def move_mapping(values: dict[str, Any], old: str, section: str) -> None:
    given = values.pop(old)
    if not isinstance(given, dict):
        raise UsageError(f"setting {shown(old)} must be a mapping, got {shown(given)}")
    current = values.get(section) or {}
    values[section] = {**given, **current}
    note(f"{old}.KEY", f"{section}.KEY")


def note(old: str, new: str) -> None:
    """One line per old spelling and process."""
    if old in _noted:
        return
    _noted.add(old)
    from lowdata import console

    console.say(f"setting {old} is now written {new}; read as such", kind=f"flat setting {old}")
