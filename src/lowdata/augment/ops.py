"""Batched image operations with one parameter draw per image, from the caller's generator.

Why hand-written: torchvision's v2 transforms and timm's PIL ops draw one set of parameters per call, so on a
batch every image would get the same crop, angle or factor; timm's RandomErasing and Mixup loop in Python over
the batch with the global RNG. Where torchvision already works per image on a batch (equalize, autocontrast,
invert, rgb_to_grayscale) we call it.

Pixel operations take and return float images in [0, 255] of shape (N, C, H, W); the policy converts once.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device) * (high - low) + low


def coin(n: int, p: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device) < p


def per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` and cut each image at its own random offset."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device).to(images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None].expand(n, c, h, w + 2 * padding)
    padded = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(3, cols)


def random_resized_crop(images: torch.Tensor, scale: tuple[float, float], ratio: tuple[float, float],
                        generator: torch.Generator, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Inception-style crop of a random area fraction and aspect ratio per image, resized (bilinear) to `size`
    (height, width; the input's size by default)."""
    n, c, h, w = images.shape
    area = uniform(n, *scale, generator, images.device)
    log_ratio = uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, images.device)
    aspect = log_ratio.exp()
    # as fractions of the side; clamped rather than re-drawn (torchvision re-draws up to 10 times per image)
    crop_w = (area * aspect).sqrt().clamp(max=1.0)
    crop_h = (area / aspect).sqrt().clamp(max=1.0)
    cx = uniform(n, 0, 1, generator, images.device) * (1 - crop_w) * 2 - (1 - crop_w)
    cy = uniform(n, 0, 1, generator, images.device) * (1 - crop_h) * 2 - (1 - crop_h)
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = crop_w, cx, crop_h, cy
    grid = F.affine_grid(theta, [n, c, *(size or (h, w))], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = coin(images.shape[0], 0.5, generator, images.device)
    return torch.where(per_image(flip), images.flip(-1), images)


def blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: factor 0 gives `other`, 1 the image, above 1 extrapolates away from `other`."""
    return (other + per_image(factor) * (images - other)).clamp(0, 255)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2.functional import rgb_to_grayscale

    if images.shape[1] == 1:
        return images
    return rgb_to_grayscale(images, num_output_channels=1).expand_as(images)


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(images, torch.zeros_like(images), factor)


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
    return blend(images, mean.expand_as(images), factor)


def saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(images, grayscale(images), factor)


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH kernel (centre 5, others 1, /13) on the interior; the border is kept as in PIL."""
    c = images.shape[1]
    kernel = torch.ones(3, 3, device=images.device)
    kernel[1, 1] = 5
    kernel = (kernel / kernel.sum()).expand(c, 1, 3, 3)
    smooth = images.clone()
    smooth[..., 1:-1, 1:-1] = F.conv2d(images, kernel, groups=c)
    return blend(images, smooth, factor)


def posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    step = per_image(2.0 ** (8 - bits.float()))
    return torch.div(images, step, rounding_mode="floor") * step


def solarize(images: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return torch.where(images >= per_image(threshold), 255 - images, images)


def solarize_add(images: torch.Tensor, amount: torch.Tensor, threshold: float = 128) -> torch.Tensor:
    return torch.where(images < threshold, (images + per_image(amount)).clamp(max=255), images)


def as_uint8_op(op):
    """Run a torchvision op that needs uint8 (equalize) on float images in [0, 255]."""
    return lambda images: op(images.round().to(torch.uint8)).float()


def affine(images: torch.Tensor, matrices: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Warp each image by its own 2x3 matrix (normalised coordinates, output -> input); uncovered pixels get
    `fill` (one value per channel, the dataset mean, as timm fills)."""
    grid = F.affine_grid(matrices, list(images.shape), align_corners=False)
    ones = torch.ones_like(images[:, :1])
    warped = F.grid_sample(torch.cat([images, ones], 1), grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    covered = warped[:, -1:]
    return warped[:, :-1] + (1 - covered) * fill.view(1, -1, 1, 1)


def rotation_matrices(degrees: torch.Tensor) -> torch.Tensor:
    radians = degrees * math.pi / 180
    matrices = torch.zeros(len(degrees), 2, 3, device=degrees.device)
    matrices[:, 0, 0], matrices[:, 0, 1] = radians.cos(), -radians.sin()
    matrices[:, 1, 0], matrices[:, 1, 1] = radians.sin(), radians.cos()
    return matrices


def shear_matrices(amount: torch.Tensor, axis: int) -> torch.Tensor:
    matrices = torch.zeros(len(amount), 2, 3, device=amount.device)
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1
    matrices[:, axis, 1 - axis] = amount
    return matrices


def translate_matrices(fraction: torch.Tensor, axis: int) -> torch.Tensor:
    matrices = torch.zeros(len(fraction), 2, 3, device=fraction.device)
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1
    matrices[:, axis, 2] = 2 * fraction  # normalised coordinates span 2
    return matrices


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per image (grouped convolution over image x channel)."""
    n, c, h, w = images.shape
    half = kernel_size // 2
    x = torch.arange(-half, half + 1, device=images.device, dtype=images.dtype)
    kernels = torch.exp(-(x[None, :] ** 2) / (2 * sigma[:, None] ** 2))
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*c, k)
    flat = F.pad(images.reshape(1, n * c, h, w), (half, half, half, half), mode="reflect")
    flat = F.conv2d(flat, kernels.view(n * c, 1, 1, kernel_size), groups=n * c)
    flat = F.conv2d(flat, kernels.view(n * c, 1, kernel_size, 1), groups=n * c)
    return flat.view(n, c, h, w)


def random_erasing(images: torch.Tensor, probability: float, generator: torch.Generator,
                   area: tuple[float, float] = (0.02, 1 / 3), ratio: tuple[float, float] = (0.3, 3.3),
                   attempts: int = 10) -> torch.Tensor:
    """timm's RandomErasing in its 'pixel' mode (DeiT's): with `probability`, one box per image of random area
    and aspect ratio, filled with standard-normal noise. Acts on normalised float images."""
    n, c, h, w = images.shape
    device = images.device
    chosen = coin(n, probability, generator, device)
    box_h = torch.zeros(n, dtype=torch.long, device=device)
    box_w = torch.zeros(n, dtype=torch.long, device=device)
    for _ in range(attempts):  # like timm: draw again where the box does not fit
        target = uniform(n, *area, generator, device) * h * w
        aspect = uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, device).exp()
        new_h, new_w = (target * aspect).sqrt().round().long(), (target / aspect).sqrt().round().long()
        fits = (new_h < h) & (new_w < w) & (new_h > 0) & (new_w > 0) & (box_h == 0)
        box_h, box_w = torch.where(fits, new_h, box_h), torch.where(fits, new_w, box_w)
    top = (uniform(n, 0, 1, generator, device) * (h - box_h + 1)).long()
    left = (uniform(n, 0, 1, generator, device) * (w - box_w + 1)).long()
    rows, cols = torch.arange(h, device=device), torch.arange(w, device=device)
    inside_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < (top + box_h)[:, None])
    inside_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < (left + box_w)[:, None])
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :] & chosen[:, None, None])[:, None]
    noise = torch.randn(images.shape, generator=generator, device=generator.device).to(device, images.dtype)
    return torch.where(mask, noise, images)
