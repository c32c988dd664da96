"""Attention priors set at initialisation: they cost nothing per step, and training may unlearn them.

`impulse` (structured initialisation, Zheng et al. 2024-25, arXiv 2401.12511, 2505.19985): each head's attention
map starts as one tap of a 3x3 convolution — head h attends from every token to its neighbour at offset
TAPS[h % 9]. Built here in closed form rather than by the papers' least-squares fit: the position embeddings
start as a sin-cos table [F, -F] (F = sin and cos of row and column at several frequencies; the negated copy
makes each token's mean zero, so the blocks' LayerNorm only rescales it) times POSITION_GAIN, and head h's
query picks 4 frequencies per axis while its key rotates them by the tap's offset, so that
q_i·k_j ∝ Σ_ω cos(ω(Δrow - dy)) + cos(ω(Δcol - dx)), largest where token j is token i's neighbour at (dy, dx).
On positions alone every head's map puts its largest weight on its tap; on images the patches' content blurs
that (POSITION_GAIN keeps the positions dominant at the start). The position table stays learnable, the values
and projections start as mimetic's (W_v·W_proj ≈ 0.4·Z − 0.4·I). Needs 9 heads or more, a head width divisible
by 4 and no class token (average pooling), e.g. vit-tiny with model_args.num_heads=12 model_args.pool=avg.

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

ATTENTION_INITS = ("default", "mimetic", "impulse")
MIMETIC = {"qk": (0.7, 0.7), "vproj": (0.4, 0.4)}  # (alpha, beta) of each product
# the 3x3 taps (row offset, column offset), centre first, then the four neighbours, then the corners
TAPS = ((0, 0), (-1, 0), (0, 1), (0, -1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
POSITION_GAIN = 6.0  # the position table's scale: its RMS ~4, a patch embedding's ~0.6 at initialisation
QK_GAIN = 4.0  # the query and key factors' scale: a head puts ~90 % of its weight on its tap (positions alone)


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


def attention_layers(model: nn.Module) -> list[nn.Module]:
    """timm's attention layers (a `qkv` and a `proj` linear and `num_heads`) of `model`."""
    return [m for m in model.modules() if isinstance(getattr(m, "qkv", None), nn.Linear)
            and isinstance(getattr(m, "proj", None), nn.Linear) and hasattr(m, "num_heads")]


@torch.no_grad()
def mimetic_values(layer: nn.Module, generator: torch.Generator | None = None) -> None:
    """W_v·W_proj ≈ a2·Z − b2·I over the heads of one attention layer."""
    dim, inner = layer.qkv.in_features, layer.qkv.out_features // 3
    alpha, beta = MIMETIC["vproj"]
    v_t, proj = split_product(mimetic_target(dim, alpha, beta, -1.0, generator), inner)
    layer.qkv.weight[2 * inner:] = v_t.T.to(layer.qkv.weight.dtype)
    layer.proj.weight.copy_(proj.to(layer.proj.weight.dtype))  # proj.weight (dim, inner) = (W_projᵀ)ᵀ


@torch.no_grad()
def mimetic_init(model: nn.Module, generator: torch.Generator | None = None) -> int:
    """Every timm attention layer of `model` set mimetically; returns how many."""
    layers = attention_layers(model)
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
        mimetic_values(layer, generator)
    return len(layers)


def sincos_features(grid: tuple[int, int], pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 4·pairs) [sin(row·ω), cos(row·ω), sin(col·ω), cos(col·ω)] on a row-major grid, and the ω (pairs,),
    from 1 down to 1/10000 geometrically (the transformer's frequencies)."""
    rows, cols = grid
    y, x = torch.meshgrid(torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32),
                          indexing="ij")
    y, x = y.reshape(-1, 1), x.reshape(-1, 1)
    omega = 1.0 / 10000 ** (torch.arange(pairs, dtype=torch.float32) / pairs)
    return torch.cat([torch.sin(y * omega), torch.cos(y * omega), torch.sin(x * omega), torch.cos(x * omega)], 1), omega


def impulse_factors(dim: int, head_dim: int, tap: tuple[int, int], omega: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B), each (dim, head_dim): a token's query is its embedding times A, its key times B, so that on the
    table [F, -F] q_i·k_j = Σ over head_dim/4 frequencies of cos(ω(Δrow - dy)) + cos(ω(Δcol - dx))."""
    pairs = len(omega)
    a, b = torch.zeros(dim, head_dim), torch.zeros(dim, head_dim)
    column = 0
    for base, offset in ((0, tap[0]), (2 * pairs, tap[1])):  # rows, then columns
        for k in range(head_dim // 4):
            sin, cos, angle = base + k, base + pairs + k, omega[k] * offset
            a[sin, column], a[cos, column + 1] = 1.0, 1.0
            b[sin, column], b[cos, column] = torch.cos(angle), -torch.sin(angle)
            b[sin, column + 1], b[cos, column + 1] = torch.sin(angle), torch.cos(angle)
            column += 2
    return a, b


@torch.no_grad()
def impulse_init(model: nn.Module, generator: torch.Generator | None = None) -> int:
    """The position table and every attention layer of `model` set so each head starts as one 3x3 tap."""
    from lowdata.errors import UsageError

    layers, dim = attention_layers(model), model.embed_dim
    heads = min((layer.num_heads for layer in layers), default=0)
    head_dim = dim // max(heads, 1)
    needs = "e.g. vit-tiny with model_args.num_heads=12 model_args.pool=avg"
    if heads < len(TAPS) or head_dim % 4 or dim % 8 or head_dim // 4 > dim // 8:
        raise UsageError(f"attn_init=impulse gives each of 9 heads one tap of a 3x3 convolution: it needs 9 heads or "
                         f"more with a width divisible by 4 (this model: {heads} of {head_dim}); {needs}")
    if model.num_prefix_tokens or not isinstance(getattr(model, "pos_embed", None), nn.Parameter):
        raise UsageError("attn_init=impulse starts the learned position table of a model without a class token; "
                         f"use model_args.pool=avg (or seq) and the learned positions (not pos_embed=sincos); {needs}")
    features, omega = sincos_features(tuple(model.patch_embed.grid_size), dim // 8)
    model.pos_embed.copy_(POSITION_GAIN * torch.cat([features, -features], dim=1)[None])
    for layer in layers:
        weight = layer.qkv.weight
        for h in range(layer.num_heads):
            a, b = impulse_factors(dim, head_dim, TAPS[h % len(TAPS)], omega)
            rows = slice(h * head_dim, (h + 1) * head_dim)
            weight[rows] = (QK_GAIN * a.T).to(weight.dtype)
            weight[dim:][rows] = (QK_GAIN * b.T).to(weight.dtype)
        if layer.qkv.bias is not None:
            layer.qkv.bias[:2 * dim].zero_()
        mimetic_values(layer, generator)
    return len(layers)


def init_attention(model: nn.Module, kind: str) -> None:
    """Apply the attention initialisation `kind` (model_args.attn_init) to a freshly built model."""
    if kind == "mimetic":
        mimetic_init(model)
    elif kind == "impulse":
        impulse_init(model)
