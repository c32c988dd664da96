"""Attention priors set at initialisation: they cost nothing per step, and training may unlearn them.

`mimetic` (Trockman & Kolter 2023, arXiv 2305.09828): trained attention layers have W_q·W_kᵀ close to a positive
multiple of the identity (a token attends to tokens like itself) and W_v·W_proj close to a negative one; so each
layer starts there: per head W_q·W_kᵀ ≈ a1·Z1 + b1·I and, over the heads, W_v·W_proj ≈ a2·Z2 − b2·I, Z random
N(0, 1/d), the products split into the two factors by an SVD (per head: the best rank-head_dim approximation).
The paper's CIFAR values: a1 = b1 = 0.7, a2 = b2 = 0.4.

Written here rather than taken from a library: timm has no attention initialisers, and the paper's code is a
research script. The products below are in timm's layout: `qkv.weight` is (3·dim, dim) and a token x (a row)
gives q = x·W_qᵀ, so the bilinear form of head h is W_q,hᵀ·W_k,h (dim × dim), and the value path is
W_vᵀ·W_projᵀ.
"""
from __future__ import annotations

import torch
from torch import nn

ATTENTION_INITS = ("default", "mimetic")
MIMETIC = {"qk": (0.7, 0.7), "vproj": (0.4, 0.4)}  # (alpha, beta) of each product


def mimetic_target(dim: int, alpha: float, beta: float, sign: float, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """alpha·Z + sign·beta·I, Z with N(0, 1/dim) entries."""
    z = torch.randn(dim, dim, generator=generator) / dim ** 0.5
    return alpha * z + sign * beta * torch.eye(dim)


def split_product(target: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B), each (dim, rank), with A·Bᵀ the best rank-`rank` approximation of `target` (a truncated SVD,
    the singular values shared as square roots)."""
    u, s, vh = torch.linalg.svd(target)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, vh[:rank].T * root


@torch.no_grad()
def mimetic_init(model: nn.Module, generator: torch.Generator | None = None) -> int:
    """Every timm attention layer of `model` (a `qkv` and a `proj` linear) set mimetically; returns how many."""
    layers = [m for m in model.modules() if isinstance(getattr(m, "qkv", None), nn.Linear)
              and isinstance(getattr(m, "proj", None), nn.Linear) and hasattr(m, "num_heads")]
    for layer in layers:
        dim, heads = layer.qkv.in_features, layer.num_heads
        head_dim = layer.qkv.out_features // 3 // heads
        weight = layer.qkv.weight  # rows: q (heads x head_dim), k, v
        (alpha, beta), inner = MIMETIC["qk"], heads * head_dim
        for h in range(heads):
            q_t, k_t = split_product(mimetic_target(dim, alpha, beta, +1.0, generator), head_dim)
            rows = slice(h * head_dim, (h + 1) * head_dim)
            weight[rows] = q_t.T.to(weight.dtype)
            weight[inner:][rows] = k_t.T.to(weight.dtype)
        alpha, beta = MIMETIC["vproj"]
        v_t, proj = split_product(mimetic_target(dim, alpha, beta, -1.0, generator), inner)
        weight[2 * inner:] = v_t.T.to(weight.dtype)
        layer.proj.weight.copy_(proj.to(layer.proj.weight.dtype))  # proj.weight (dim, inner) = (W_projᵀ)ᵀ
    return len(layers)


def init_attention(model: nn.Module, kind: str) -> None:
    """Apply the attention initialisation `kind` (model_args.attn_init) to a freshly built model."""
    if kind == "mimetic":
        mimetic_init(model)
