"""One way to check a setting, whoever declares it: the run's own fields (config.py) and the sections a method
or an auxiliary term declares beside its code (a frozen dataclass of `setting(...)` fields, objectives/).

A value is converted to its declared type (int, float, str, bool, dict, a fixed-length tuple, or X | None),
then held to its range and choices; an unknown key is refused with a did-you-mean. Nothing here knows any
method: a section is a name and a dataclass.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Mapping

from lowdata.errors import UsageError, shown

Range = tuple[float | None, float | None, bool, bool]  # (low, high, low included, high included); None: open


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, low: float | None = None,
            high: float | None = None, low_in: bool = True, high_in: bool = True,
            choices: tuple[str, ...] | None = None) -> Any:
    """A field of a settings dataclass: its default (none: the setting must be given), one line for `lowdata
    methods`, and the range or choices `check_section` holds it to."""
    metadata = {"doc": doc, "choices": choices,
                "range": (low, high, low_in, high_in) if low is not None or high is not None else None}
    return dataclasses.field(default=default, metadata=metadata)


def check_section(name: str, cls: type, given: Mapping[str, Any], what: str | None = None) -> dict[str, Any]:
    """The values of section `name` given by the user, converted and checked against `cls` (a settings
    dataclass), `what` naming its owner in a refusal (method 'distill'); defaults are not filled in here (`complete_section` does, once the run knows its method)."""
    if not isinstance(given, Mapping):
        raise UsageError(f"setting {shown(name)} is a section of settings: give a mapping ({name}: {{key: value}}) "
                         f"or {name}.KEY=VALUE, got {shown(given)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    checked = {}
    for key, value in given.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            offered = ", ".join(f"{name}.{known}" for known in fields) or "none"
            raise UsageError(f"{what or name} has no setting {shown(key)}{hint}; its settings: {offered}")
        value = coerce(f"{name}.{key}", value, hints[key])
        check_range(f"{name}.{key}", value, fields[key].metadata.get("range"))
        choices = fields[key].metadata.get("choices")
        if choices and value is not None and value not in choices:
            raise UsageError(f"setting {name}.{key} must be one of {', '.join(choices)}, got {shown(value)}")
        checked[key] = value
    return checked


def complete_section(name: str, cls: type, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of section `name`: the given ones (already checked) and the defaults of the rest."""
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in given and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UsageError(f"section {name} needs {', '.join(f'{name}.{key}' for key in missing)}")
    return dataclasses.asdict(cls(**given))


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(key, default, one line) for each setting of a settings dataclass: what `lowdata methods` lists."""
    rows = []
    for f in dataclasses.fields(cls):
        default = "(required)" if f.default is dataclasses.MISSING else f.default
        rows.append((f.name, default, f.metadata.get("doc", "")))
    return rows


def check_range(key: str, value: Any, bounds: Range | None) -> None:
    if bounds is None or value is None or isinstance(value, (tuple, str, bool)):
        return
    low, high, low_in, high_in = bounds
    ok = math.isfinite(value) and (low is None or (value >= low if low_in else value > low)) and \
        (high is None or (value <= high if high_in else value < high))
    if not ok:
        left = "" if low is None else f"{'>=' if low_in else '>'} {low:g}"
        right = "" if high is None else f"{'<=' if high_in else '<'} {high:g}"
        raise UsageError(f"setting {shown(key)} must be {' and '.join(p for p in (left, right) if p)}, "
                         f"got {shown(value)}")


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check and convert one value to its declared type (int, float, str, bool, dict, tuple[...], or X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise UsageError(f"setting {shown(key)} needs a value")
    if isinstance(value, str):  # YAML 1.1 reads "5e-4" as a string
        value = number_or_text(value)
    for option in options:
        converted = convert(key, value, option)
        if converted is not None:
            return converted
    wanted = " or ".join(type_name(o) for o in options)
    raise UsageError(f"setting {shown(key)} must be {wanted}, got {shown(value)}")


def convert(key: str, value: Any, option: Any) -> Any:
    """`value` as `option`, or None where it is not one."""
    if option is type(None):
        return None
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
    if typing.get_origin(option) is tuple and isinstance(value, (list, tuple)):
        parts = typing.get_args(option)
        if len(parts) == len(value):
            return tuple(coerce(key, part, hint) for part, hint in zip(value, parts))
    return None


def type_name(option: Any) -> str:
    if typing.get_origin(option) is tuple:
        return f"a list of {len(typing.get_args(option))} numbers"
    return getattr(option, "__name__", str(option))


def number_or_text(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
