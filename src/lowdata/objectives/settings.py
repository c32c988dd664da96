"""The sections of a run's config: each method's and each auxiliary term's settings, declared beside its code
(a frozen dataclass named at registration) and checked by one function (sections.check_section).

`build_config` makes a config knowing every registered section; `resolve_sections`, once the run knows its
method, fills the method's and the terms' sections with their defaults (saved so, the run describes itself) and
refuses a section of a method the run does not use (a setting silently unread is the worst kind of bug).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from lowdata.config import PretrainConfig, build
from lowdata.errors import UsageError
from lowdata.flat_settings import section_name
from lowdata.objectives.base import OBJECTIVES, MethodData, Objective, method_names
from lowdata.objectives.terms import TERMS, carry_terms
from lowdata.registry import Registry
from lowdata.sections import complete_section


def known_sections(reads_labels: bool = True) -> dict[str, tuple[str, type]]:
    """Section name -> (its owner, its settings dataclass): the methods of the kind (training methods, or
    pretraining ones), and for training the auxiliary terms."""
    found = {section_name(name): (f"method {name!r}", OBJECTIVES.get(name).settings)
             for name in method_names(reads_labels)}
    if reads_labels:
        found.update({name: (f"term {name!r}", TERMS.get(name).settings) for name in TERMS.names()})
    return found


def build_config(cls: type, values: dict[str, Any]):
    """config.build with every registered section known (a TrainConfig or a PretrainConfig)."""
    return build(cls, values, known_sections(cls is not PretrainConfig))


def resolve_sections(config: Any, method: str, reads_labels: bool = True):
    """`config` with the sections of `method` and of its terms complete; a section of another method refused."""
    check_method_name(method, reads_labels)
    sections = dict(config.sections)
    own = section_name(method)
    for name in sections:
        if name != own and name not in TERMS:
            raise UsageError(unused_message(name, method, config))
    sections[own] = complete_section(own, OBJECTIVES.get(method).settings, sections.get(own, {}))
    if reads_labels:
        for name in TERMS.names():
            if name in sections:
                sections[name] = complete_section(name, TERMS.get(name).settings, sections[name])
    return config.replace(sections=sections)


def unused_message(name: str, method: str, config: Any) -> str:
    settings = ", ".join(f"{name}.{key}" for key in config.sections[name])
    if name == "distill" and not getattr(config, "teacher", None):
        return (f"{settings} needs a teacher: --teacher RUN_DIR (a finished lowdata run, e.g. a resnet20 trained on "
                "the same labels)")
    one = "," not in settings
    return (f"{settings} {'is a setting' if one else 'are settings'} of method {name.replace('_', '-')!r}, but this "
            f"run's method is {method!r}: drop {'it' if one else 'them'}, or choose that method")


def build_objective(name: str, config: Any, model: nn.Module, data: MethodData, device: torch.device,
                    autocast: Callable[[], Any], reads_labels: bool = True) -> tuple[Objective, dict[str, Any]]:
    """The registered method `name` of the wanted kind (a supervised method, or a pretraining one when
    `reads_labels` is False), built for this run with its settings, carrying the auxiliary terms whose sections
    the config holds (objectives/terms.py)."""
    check_method_name(name, reads_labels)
    method = OBJECTIVES.get(name)
    settings = method.settings(**config.sections.get(section_name(name), {}))
    objective, summary = method.build(config, settings, model, data, device, autocast)
    return carry_terms(objective, summary, config, model, data, device, autocast)


def check_method_name(name: str, reads_labels: bool) -> None:
    """A method of the wanted kind (train's objectives, or pretrain's methods), else one line listing them."""
    names = method_names(reads_labels)
    if name not in names:
        kind = Registry("objective" if reads_labels else "pretraining method")
        for known in names:
            kind.register(known)(None)
        raise UsageError(kind.unknown_message(name))
