"""Patch-whitening initialisation of a model's first convolution (airbench, Jordan 2024, arXiv 2404.00498; after
Coates & Ng 2011): its filters become the eigenvectors of the covariance of the training images' patches, each
divided by the square root of its eigenvalue (plus `eps`), so the first layer starts out decorrelating the
pixels of each patch instead of mixing them at random. airbench uses +W and -W for its 2x2 whitening layer (24
filters, 12 directions), which reached 94 % on CIFAR-10 in 10 epochs where a random first layer needed ~15.

Here: the first `nn.Conv2d` the model applies (a CNN's stem, a CCT tokenizer's or conv stem's first layer, a
patch embedding), any kernel size; with F filters and D = C·k·k patch dimensions, directions are taken from the
largest eigenvalue down, each as +w and then -w while filters last (so F >= 2D whitens fully, and a 16-filter
3x3 RGB stem gets the 8 strongest directions, both signs). The bias is zeroed. Images are the labelled training
images, normalised as the model sees them; no label is read. No library offers this for an arbitrary
model's first layer (airbench's is written into its own network), hence these few lines.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.errors import UsageError


def first_conv(model: nn.Module, example: torch.Tensor) -> nn.Conv2d:
    """The first 2-D convolution the model applies to `example` (one forward pass, hooks removed after)."""
    found: list[nn.Conv2d] = []
    handles = [m.register_forward_pre_hook(lambda module, args: found.append(module))
               for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for handle in handles:
            handle.remove()
        model.train()
    if not found:
        raise UsageError("patch_whitening initialises the first convolution, and this model applies none; drop "
                         "patch_whitening=true")
    return found[0]


def patch_whitening_weights(images: torch.Tensor, kernel: tuple[int, int], filters: int,
                            eps: float = 5e-4) -> torch.Tensor:
    """(filters, C, kh, kw) whitening filters from normalised images (N, C, H, W)."""
    channels = images.shape[1]
    patches = F.unfold(images.float(), kernel).transpose(1, 2).reshape(-1, channels * kernel[0] * kernel[1])
    patches = patches - patches.mean(0)
    covariance = patches.T @ patches / max(len(patches) - 1, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())  # ascending
    order = torch.arange(len(eigenvalues) - 1, -1, -1)  # the strongest direction first
    directions = (eigenvectors[:, order] / (eigenvalues[order].clamp_min(0) + eps).sqrt()).T.float()  # (D, D)
    signed = torch.stack([directions, -directions], dim=1).reshape(-1, directions.shape[1])  # +w1, -w1, +w2, ...
    weights = signed[:filters]
    return weights.reshape(len(weights), channels, *kernel)


def whiten_first_conv(model: nn.Module, images: torch.Tensor, eps: float = 5e-4, max_images: int = 5000) -> str:
    """Initialise the model's first convolution from `images` (normalised, as the model sees them); returns a
    line for the run's notes. Filters past the 2·D whitening ones keep their random initialisation."""
    conv = first_conv(model, images[:1])
    if conv.groups != 1:
        raise UsageError("patch_whitening needs an ordinary first convolution (groups=1); drop patch_whitening=true")
    kernel = tuple(conv.kernel_size)
    weights = patch_whitening_weights(images[:max_images].to(conv.weight.device), kernel, conv.out_channels, eps)
    with torch.no_grad():
        conv.weight[:len(weights)] = weights.to(conv.weight.dtype)
        if conv.bias is not None:
            conv.bias.zero_()
    dims = conv.in_channels * kernel[0] * kernel[1]
    return (f"patch whitening: {len(weights)} of the first convolution's {conv.out_channels} filters from "
            f"{min(len(images), max_images):,} images' {kernel[0]}x{kernel[1]} patches ({min(dims, (len(weights) + 1) // 2)} "
            f"of {dims} directions)")
