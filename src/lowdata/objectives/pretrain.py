"""Self-supervised pretraining methods: a registry of objectives that learn from images alone.

A method is a class registered here, built as `cls(encoder, in_chans, generator, **settings)`; its `model`
holds the encoder under `.encoder` (whose state dict is the classifier's, without a head). A second method
(e.g. DINO) is a new file in this package that registers itself; `load_methods` imports every module here,
so nothing else changes.
"""
from __future__ import annotations

from lowdata.objectives.base import load_methods
from lowdata.registry import Registry

PRETRAIN_METHODS: Registry[type] = Registry("pretraining method")

__all__ = ["PRETRAIN_METHODS", "load_methods"]
