"""Parts that give a ViT the locality bias small datasets lack, injected into timm's VisionTransformer.

timm's VisionTransformer takes its patch embedding (`embed_layer`) and its attention (`attn_layer`) as
arguments, so each part below replaces one of them and the transformer itself stays timm's: block, norm and
head names, and so state dicts, are the same as a plain ViT's. timm has none of these parts (they come from
small-dataset papers, not ImageNet ones), so they are written here:

- `ConvTokenizer`: CCT's tokenizer (Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact
  Transformers"): conv 3x3 -> ReLU -> max-pool 3x3 stride 2, repeated.
- `ConvStem`: the early convolutions of Xiao et al. 2021 ("Early Convolutions Help Transformers See
  Better"): stride-2 conv 3x3 -> BatchNorm -> ReLU down to the patch grid, then a 1x1 convolution.
- `ShiftedPatchTokenizer`: SPT of Lee et al. 2021 ("Vision Transformer for Small-Size Datasets"): the image
  and four copies shifted diagonally by half a patch, patchified together, LayerNorm, linear.
- `LocalitySelfAttention`: their LSA: a learned temperature per head and no attention of a token to itself.
- `SeqPool`: CCT's sequence pooling, a learned softmax-weighted average of the tokens instead of a class token.

Every tokenizer keeps timm's PatchEmbed interface (`num_patches`, `grid_size`, `patch_size`, `feat_ratio`),
so position embeddings, resampling and `--init` work as for a plain ViT.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers.attention import Attention
from torch import nn


class TokenGrid(nn.Module):
    """The PatchEmbed attributes timm's VisionTransformer and lowdata's weight loading read."""

    def set_grid(self, img_size: tuple[int, int], reduction: int) -> None:
        self.img_size = tuple(img_size)
        self.patch_size = (reduction, reduction)
        self.grid_size = tuple(math.ceil(side / reduction) for side in img_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def feat_ratio(self, as_scalar: bool = True) -> int | tuple[int, int]:
        return self.patch_size[0] if as_scalar else self.patch_size

    def dynamic_feat_size(self, img_size: tuple[int, int]) -> tuple[int, int]:
        """The token grid for an input size (timm's forward_intermediates asks, to lay tokens out as maps)."""
        return tuple(math.ceil(side / self.patch_size[0]) for side in img_size)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)  # (N, D, H, W) -> (N, H*W, D)


class ConvTokenizer(TokenGrid):
    """CCT: `layers` x (conv 3x3 stride 1 -> ReLU -> max-pool 3x3 stride 2); the hidden convolutions are 64
    wide, the last is the embedding width. No bias, as in CCT."""

    def __init__(self, img_size: tuple[int, int], in_chans: int, embed_dim: int, layers: int = 1,
                 hidden: int = 64, **_: object) -> None:
        super().__init__()
        widths = [in_chans] + [hidden] * (layers - 1) + [embed_dim]
        stages = []
        for index in range(layers):
            stages += [nn.Conv2d(widths[index], widths[index + 1], 3, padding=1, bias=False), nn.ReLU(),
                       nn.MaxPool2d(3, stride=2, padding=1)]
        self.proj = nn.Sequential(*stages)
        for module in self.proj:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
        self.set_grid(img_size, 2 ** layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last: CPU max-pooling in PyTorch's default layout ran ~10x slower (bf16, 128 x 64 x 32 x 32
        # on an AVX512 EPYC: 105 against 9.5 ms forward) and took 29 % of a cct-2/3x2 step (profile_steps.py);
        # channels-last made the whole step 1.44x faster there (benchmarks/cct_step.py), tokens come out contiguous
        return self.tokens(self.proj(x.contiguous(memory_format=torch.channels_last)))


class ConvStem(TokenGrid):
    """Xiao et al.: log2(patch) stride-2 3x3 convolutions (BatchNorm, ReLU), widths doubling up to half the
    embedding width, then a 1x1 convolution to the embedding: the same token grid as patchify."""

    def __init__(self, img_size: tuple[int, int], patch_size: int, in_chans: int, embed_dim: int, **_: object
                 ) -> None:
        super().__init__()
        steps = int(math.log2(patch_size))
        if 2 ** steps != patch_size or steps < 1:
            raise ValueError(f"a convolutional stem needs a patch size that is a power of 2 (2, 4, 8...), got {patch_size}")
        widths = [in_chans] + [embed_dim // 2 ** (steps - index) for index in range(steps)]
        stages = []
        for index in range(steps):
            stages += [nn.Conv2d(widths[index], widths[index + 1], 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(widths[index + 1]), nn.ReLU()]
        self.stem = nn.Sequential(*stages)
        self.proj = nn.Conv2d(widths[-1], embed_dim, 1)  # named as PatchEmbed's projection
        self.set_grid(img_size, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(self.proj(self.stem(x)))


class ShiftedPatchTokenizer(TokenGrid):
    """Lee et al.'s SPT: concatenate the image with its four diagonal shifts by half a patch (zero-filled),
    cut into patches, flatten, LayerNorm, linear to the embedding. Same grid as patchify."""

    def __init__(self, img_size: tuple[int, int], patch_size: int, in_chans: int, embed_dim: int, **_: object
                 ) -> None:
        super().__init__()
        self.shift = patch_size // 2
        features = 5 * in_chans * patch_size ** 2
        self.norm = nn.LayerNorm(features)
        self.proj = nn.Linear(features, embed_dim)
        self.set_grid(img_size, patch_size)

    def shifted(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 5C, H, W): the image, then shifted left-up, right-up, left-down, right-down."""
        s = self.shift
        padded = F.pad(x, (s, s, s, s))
        height, width = x.shape[-2:]
        views = [x] + [padded[..., top:top + height, left:left + width]
                       for top, left in ((2 * s, 2 * s), (2 * s, 0), (0, 2 * s), (0, 0))]
        return torch.cat(views, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = F.unfold(self.shifted(x), kernel_size=self.patch_size, stride=self.patch_size)
        return self.proj(self.norm(patches.transpose(1, 2)))


class LocalitySelfAttention(Attention):
    """timm's Attention (same qkv/proj names) with Lee et al.'s two changes: the softmax temperature is
    learned per head (initialised at timm's 1/sqrt(head_dim)), and each token's score for itself is masked
    out, so attention goes to the others."""

    def __init__(self, dim: int, num_heads: int = 8, **kwargs) -> None:
        super().__init__(dim, num_heads=num_heads, **kwargs)
        self.temperature = nn.Parameter(torch.full((num_heads,), float(self.scale)))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
                ) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        q = q * self.temperature.to(q.dtype)[None, :, None, None]
        if is_causal or (attn_mask is not None and attn_mask.dtype != torch.bool):
            raise ValueError("locality self-attention takes boolean attention masks only, and no causal mask")
        allowed = ~torch.eye(length, dtype=torch.bool, device=x.device)
        if attn_mask is not None:
            allowed = allowed & attn_mask
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=1.0,
                                               dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            scores = (q @ k.transpose(-2, -1)).masked_fill(~allowed, float("-inf"))
            x = self.attn_drop(scores.softmax(dim=-1)) @ v
        x = x.transpose(1, 2).reshape(batch, length, self.attn_dim)
        return self.proj_drop(self.proj(self.norm(x)))


class SeqPool(nn.Module):
    """CCT's sequence pooling: softmax(linear(x)) over the tokens weights their average. Installed as timm's
    `attn_pool`, the one pooling slot VisionTransformer.pool() consults before its built-in poolings."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attention = nn.Linear(dim, 1)
        nn.init.trunc_normal_(self.attention.weight, std=0.02)
        nn.init.zeros_(self.attention.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.attention(x).softmax(dim=1)  # (N, L, 1)
        return (weights * x).sum(dim=1)
