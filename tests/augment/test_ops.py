import math

import pytest
import torch

from lowdata.augment import ops
from lowdata.augment.randaugment import OPERATIONS, RandAugment


@pytest.fixture
def images():
    return torch.randint(0, 256, (16, 3, 8, 8), generator=torch.Generator().manual_seed(0)).float()


def test_enhancements_match_their_definitions(images):
    half = torch.full((16,), 0.5)
    assert torch.allclose(ops.brightness(images, half), images * 0.5)
    means = ops.grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(ops.contrast(images, torch.zeros(16)), means.expand_as(images))
    assert torch.allclose(ops.saturation(images, torch.zeros(16)), ops.grayscale(images))
    ones = torch.ones(16)
    for op in (ops.brightness, ops.contrast, ops.saturation, ops.sharpness):
        assert torch.allclose(op(images, ones), images)


def test_posterize_and_solarize(images):
    assert torch.equal(ops.posterize(images, torch.full((16,), 2)), torch.div(images, 64, rounding_mode="floor") * 64)
    solarized = ops.solarize(images, torch.full((16,), 128.0))
    assert torch.equal(solarized, torch.where(images >= 128, 255 - images, images))
    assert torch.equal(ops.solarize_add(images, torch.full((16,), 300.0)), torch.where(images < 128, 255.0, images))


def test_quarter_turn_is_a_rotation_of_the_grid(images):
    turned = ops.affine(images, ops.rotation_matrices(torch.full((16,), 90.0)), torch.zeros(3))
    assert torch.allclose(turned, images.rot90(1, dims=(2, 3)), atol=1e-3) or \
        torch.allclose(turned, images.rot90(-1, dims=(2, 3)), atol=1e-3)


def test_translation_moves_pixels_and_fills_with_the_mean(images):
    moved = ops.affine(images, ops.translate_matrices(torch.full((16,), 0.25), axis=0), torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(moved[..., :6], images[..., 2:], atol=1e-3)  # 0.25 of 8 px = 2 px
    assert torch.allclose(moved[:, 1, :, 6:], torch.full((16, 8, 2), 2.0))


def test_blur_keeps_flat_images_and_smooths_noise(images):
    flat = torch.full((4, 3, 8, 8), 77.0)
    assert torch.allclose(ops.gaussian_blur(flat, torch.tensor([0.1, 0.5, 1.0, 2.0]), 5), flat)
    sigmas = torch.linspace(0.1, 2.0, 16)
    blurred = ops.gaussian_blur(images, sigmas, 5)
    spread = blurred.std(dim=(1, 2, 3))
    assert spread[-1] < spread[0] * 0.6


def test_random_erasing_boxes():
    images = torch.zeros(200, 3, 16, 16)
    erased = ops.random_erasing(images, 1.0, torch.Generator().manual_seed(0))
    area = (erased[:, 0] != 0).float().mean(dim=(1, 2))
    assert (area > 0.01).all() and (area < 0.4).all()  # every image, an area in timm's [0.02, 1/3] range
    assert torch.equal(ops.random_erasing(images, 0.0, torch.Generator()), images)
    some = ops.random_erasing(images, 0.25, torch.Generator().manual_seed(1))
    share = (some.flatten(1) != 0).any(1).float().mean()
    assert 0.15 < share < 0.35


def test_random_resized_crop_at_full_scale_is_the_identity(images):
    same = ops.random_resized_crop(images, (1.0, 1.0), (1.0, 1.0), torch.Generator())
    assert torch.allclose(same, images, atol=1e-3)


def test_every_randaugment_operation_keeps_shape_and_range(images):
    # low contrast, so that autocontrast changes it; 32x32 with few grey levels, as equalize (like PIL's)
    # leaves an image alone when it has fewer pixels than levels
    images = (100 + 15 * torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))).round().clamp(0, 255)
    levels = torch.full((16,), 9.0)
    for op in OPERATIONS:
        out = op.apply(images.clone(), levels, torch.Generator().manual_seed(0), torch.full((3,), 120.0))
        assert out.shape == images.shape, op.name
        assert out.min() >= 0 and out.max() <= 255 + 1e-3, op.name
        assert not torch.equal(out, images), op.name  # magnitude 9 changes every image


def test_randaugment_draws_per_image_and_reproducibly(images):
    augment = RandAugment(3, (120.0, 120.0, 120.0), magnitude=9, magnitude_std=0.5)
    a = augment(images.clone(), torch.Generator().manual_seed(4))
    b = augment(images.clone(), torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    changed = (a != images).flatten(1).any(1).float().mean()
    assert 0.4 < changed < 1.0  # two picks at p=0.5 each: ~75 % of images touched, not all or none
    assert math.isclose(len(RandAugment(1, (0.0,)).operations), len(OPERATIONS) - 1)
