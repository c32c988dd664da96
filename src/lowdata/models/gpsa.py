"""Gated positional self-attention (ConViT, d'Ascoli et al. 2021, arXiv 2103.10697) for the first blocks of any
ViT-family preset (`model_args.gpsa_blocks=N`).

Each head mixes content attention with a positional attention over the token grid, through a learned gate:

    attn = (1 - sigmoid(g_h)) * softmax(q·kᵀ / sqrt(d)) + sigmoid(g_h) * softmax(pos_proj(r_ij))

r_ij = (dx, dy, dx² + dy²) between tokens i and j. `local_init` starts each head as one tap of a convolution
(head h attends around the offset it is given) and the values as the identity, so the blocks start close to a
convolution and training may leave it. timm's `GPSA` module (timm.models.convit) is the reference: this class
has its parameters under the same names (a checkpoint loads into timm's ConViT blocks), and differs in two ways
that do not change what it computes: the positional attention is computed once per forward pass, for one image
(it does not depend on the batch; timm computes it for every image), and the grid may be rectangular (and a
square one smaller, for training at a lower resolution). It reads
grid tokens only: a model with a class token or other prefix tokens cannot take it.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from timm.models.convit import GPSA
from torch import nn


class GatedPositionalAttention(GPSA):
    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int], qkv_bias: bool = False,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, locality_strength: float = 1.0) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop,
                         locality_strength=locality_strength)
        self.grid = tuple(grid)
        self.rel_indices = relative_indices(self.grid)
        self.local_init()

    def local_init(self) -> None:
        """timm's local initialisation, for any number of heads: head h takes tap (h % k, h // k) of the
        smallest k x k kernel with k² >= heads (timm's for a square number of heads)."""
        with torch.no_grad():
            self.v.weight.copy_(torch.eye(self.dim))
            kernel = math.ceil(self.num_heads ** 0.5)
            center = (kernel - 1) / 2 if kernel % 2 == 0 else kernel // 2
            weight = self.pos_proj.weight
            for head in range(self.num_heads):
                h1, h2 = head % kernel, head // kernel
                weight[head] = torch.tensor([2.0 * (h2 - center), 2.0 * (h1 - center), -1.0])
            weight *= self.locality_strength

    def positional_attention(self, tokens: int) -> torch.Tensor:
        """softmax(pos_proj(r_ij)) over j, (1, heads, N, N): the same for every image of the batch."""
        rel = self.offsets(tokens).to(device=self.pos_proj.weight.device, dtype=self.pos_proj.weight.dtype)
        return self.pos_proj(rel).permute(0, 3, 1, 2).softmax(dim=-1)

    def offsets(self, tokens: int) -> torch.Tensor:
        """The offsets of the grid it was built for, or of a smaller square grid of `tokens` (its square images
        at a lower resolution, models/resolution.py): pos_proj is a function of the offsets, any grid's."""
        if tokens == self.rel_indices.shape[1]:
            return self.rel_indices
        side = math.isqrt(tokens)
        if side * side != tokens or self.grid[0] != self.grid[1]:
            raise ValueError(f"gated positional attention was built for a {self.grid[0]}x{self.grid[1]} token grid "
                             f"({self.rel_indices.shape[1]} tokens) and takes other square grids, not {tokens} tokens")
        return relative_indices((side, side))

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qk = self.qk(x).reshape(batch, tokens, 2, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        content = ((qk[0] @ qk[1].transpose(-2, -1)) * self.scale).softmax(dim=-1)
        gate = torch.sigmoid(self.gating_param).view(1, -1, 1, 1)
        attn = (1.0 - gate) * content + gate * self.positional_attention(tokens)
        return self.attn_drop(attn / attn.sum(dim=-1, keepdim=True))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
                ) -> torch.Tensor:
        batch, tokens, dim = x.shape
        attn = self.get_attention(x)
        v = self.v(x).reshape(batch, tokens, self.num_heads, dim // self.num_heads).permute(0, 2, 1, 3)
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(batch, tokens, dim)))


def relative_indices(grid: tuple[int, int]) -> torch.Tensor:
    """(1, N, N, 3): (dx, dy, dx² + dy²) from token i to token j on a row-major grid (timm's layout)."""
    rows, cols = grid
    y, x = torch.meshgrid(torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32),
                          indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    dx, dy = x[None, :] - x[:, None], y[None, :] - y[:, None]
    return torch.stack([dx, dy, dx ** 2 + dy ** 2], dim=-1)[None]


# timm ConVit's arguments that a ViT preset's settings give, under timm VisionTransformer's names
CONVIT_SETTINGS = ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size", "qkv_bias", "drop_rate",
                   "pos_drop_rate", "proj_drop_rate", "attn_drop_rate")


def build_convit(num_classes: int, in_chans: int, img_size: tuple[int, int], drop_path: float, gpsa_blocks: int,
                 locality_strength: float, pool: str, pos_embed: str, **settings: Any) -> nn.Module:
    """A patch-embedding ViT with gated positional attention in its first blocks, as ConViT has it: timm's
    `ConVit`, whose class token joins after the gated blocks (they read the token grid alone), pooled by that
    token or by the average of the patch tokens. Its gated layers are this module's (the same parameters as
    timm's), so timm alone rebuilds the model from its `convit_*` architecture (models/timm_names.py)."""
    from timm.models.convit import ConVit

    from lowdata.errors import UsageError

    unknown = sorted(set(settings) - set(CONVIT_SETTINGS))
    if unknown:
        raise UsageError(f"model_args.{unknown[0]} is not an option of a ViT with gated positional attention "
                         f"(timm's ConViT); its options: {', '.join(CONVIT_SETTINGS)}")
    depth = settings.get("depth", 12)
    if not 0 < gpsa_blocks < depth:
        raise UsageError(f"model_args.gpsa_blocks={gpsa_blocks}: ConViT's class token joins after the gated blocks, "
                         f"so give fewer than the model's {depth} blocks")
    heads = settings.pop("num_heads", 12)
    width = settings.pop("embed_dim", 768)
    if width % heads:
        raise UsageError(f"model_args.embed_dim={width} is not divisible by num_heads={heads}")
    model = ConVit(img_size=img_size, in_chans=in_chans, num_classes=num_classes, drop_path_rate=drop_path,
                   global_pool=pool, embed_dim=width // heads, num_heads=heads,  # ConVit's width is per head
                   qkv_bias=settings.pop("qkv_bias", True), local_up_to_layer=gpsa_blocks,
                   locality_strength=locality_strength, use_pos_embed=pos_embed != "none", **settings)
    replace_attention(model, gpsa_blocks, tuple(model.patch_embed.grid_size), locality_strength)
    return model


def use_gpsa(model: nn.Module, blocks: int, locality_strength: float = 1.0) -> None:
    """The first `blocks` blocks of a ViT-family model without prefix tokens (timm's VisionTransformer: CCT, a
    conv stem with average pooling) take gated positional attention in place of their attention."""
    from lowdata.errors import UsageError

    if blocks > len(model.blocks):
        raise UsageError(f"model_args.gpsa_blocks={blocks} is more than the model's {len(model.blocks)} blocks")
    if model.num_prefix_tokens:
        raise UsageError("gated positional attention reads the token grid alone; this model has a class token: "
                         "add model_args.pool=avg (or use a CCT preset, which pools its sequence)")
    replace_attention(model, blocks, tuple(model.patch_embed.grid_size), locality_strength)


def replace_attention(model: nn.Module, blocks: int, grid: tuple[int, int], locality_strength: float) -> None:
    for block in model.blocks[:blocks]:
        old = block.attn
        bias = getattr(old, "qkv", getattr(old, "qk", None)).bias is not None
        block.attn = GatedPositionalAttention(model.embed_dim, old.num_heads, grid, qkv_bias=bias,
                                              attn_drop=old.attn_drop.p, proj_drop=old.proj_drop.p,
                                              locality_strength=locality_strength)
