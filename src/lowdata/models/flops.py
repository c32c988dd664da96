"""FLOPs as PyTorch's flop counter counts them (matmuls, convolutions and attention; a multiply-add is two), of
any computation, without touching what training reads."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode (no dropout draws, no batch-norm updates) and timm's attention unfused (PyTorch's
    counter does not count the fused CPU kernel's FLOPs) for the block, as they were after."""
    modes = [module.training for module in modules]
    attention = [part for module in modules for part in module.modules() if hasattr(part, "fused_attn")]
    fused = [part.fused_attn for part in attention]
    for module in modules:
        module.eval()
    for part in attention:
        part.fused_attn = False
    try:
        yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)
        for part, was in zip(attention, fused):
            part.fused_attn = was


def flops_of(run: Callable[[], object], *modules: nn.Module) -> int:
    """The FLOPs of `run()`, counted without gradients and with `modules` in eval mode, so nothing the training
    reads (random streams, statistics) changes."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with evaluating(*modules), counter, torch.no_grad():
        run()
    return counter.get_total_flops()
