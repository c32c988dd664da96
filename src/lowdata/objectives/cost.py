"""What one training image costs a method, in FLOPs as `lowdata models` counts them (PyTorch's flop counter:
matmuls, convolutions and attention; a multiply-add is two). A trained network counts three forward passes per
image (forward and backward, the usual convention); a teacher or guide, which only runs forward, one."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowdata.models.flops import flops_of

TRAINED = 3  # forward + backward (about twice the forward) per image
FORWARD = 1
READS = ("labelled", "pool", "both")  # which of a step's images a network reads


@dataclass(frozen=True)
class CostPart:
    """One network of a step: `flops` per image it reads (passes included), and which images those are."""
    name: str
    flops: int
    reads: str = "both"


def network_part(name: str, network: nn.Module, example: torch.Tensor, passes: int, reads: str = "both"
                 ) -> CostPart:
    """`network` on one `example` image (1, C, H, W), `passes` times."""
    return CostPart(name, passes * flops_of(lambda: network(example), network), reads)
