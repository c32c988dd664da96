import pytest
import torch

from lowdata.augment import Normalize, build_policy
from lowdata.data import DatasetInfo
from lowdata.errors import UsageError

INFO = DatasetInfo("toy", tuple("abcdefghij"), 3, (16, 16), True, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
GRAY = DatasetInfo("fashion", tuple("abcdefghij"), 1, (16, 16), True, (0.3,), (0.3,))
POLICY_NAMES = ["none", "basic", "strong", "3aug"]


def uint8_pixels(policy, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The pixel stage alone, back to uint8 (what augment-preview shows before mixing)."""
    return policy.float_pixels(images, generator).round().clamp(0, 255).to(torch.uint8)


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, 10, (64,), generator=generator)


def test_none_is_the_identity(batch):
    images, labels = batch
    policy = build_policy("none", INFO)
    out, targets = policy(images, labels, torch.Generator())
    assert torch.equal(out, Normalize(INFO)(images)) and targets is labels
    assert torch.equal(uint8_pixels(policy, images, torch.Generator()), images)


def test_basic_keeps_shape_dtype_and_values(batch):
    images, _ = batch
    out = uint8_pixels(build_policy("basic", INFO), images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    # crops only move pixels or bring in zero padding
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0}


def test_crop_is_a_shifted_window_of_the_padded_image():
    from lowdata.augment.ops import random_crop

    image = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(50, 1, 1, 1)
    out = random_crop(image, 1, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(image[0], (1, 1, 1, 1))
    windows = {tuple(padded[:, y:y + 4, x:x + 4].flatten().tolist()) for y in range(3) for x in range(3)}
    assert all(tuple(o.flatten().tolist()) in windows for o in out)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 3


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize("info", [INFO, GRAY], ids=["rgb", "gray"])
def test_shapes_dtypes_ranges_and_targets(batch, name, info):
    images, labels = batch
    images = images[:, :info.channels].contiguous()
    policy = build_policy(name, info)
    pixels = policy.float_pixels(images, torch.Generator().manual_seed(1))
    assert pixels.shape == images.shape and pixels.dtype == torch.float32
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert uint8_pixels(policy, images, torch.Generator().manual_seed(1)).dtype == torch.uint8
    out, targets = policy(images, labels, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert images.dtype == torch.uint8  # the stored batch is not written into
    if name in ("strong", "3aug"):
        assert targets.shape == (64, 10) and targets.min() >= 0
        assert torch.allclose(targets.sum(1), torch.ones(64))
        assert ((targets > 0).sum(1) <= 2).all()
    else:
        assert torch.equal(targets, labels)


@pytest.mark.parametrize("name", POLICY_NAMES[1:])
def test_same_seed_same_output_different_seed_differs(batch, name):
    images, labels = batch
    policy = build_policy(name, INFO)
    a = policy(images, labels, torch.Generator().manual_seed(5))
    b = policy(images, labels, torch.Generator().manual_seed(5))
    c = policy(images, labels, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", POLICY_NAMES[1:])
def test_each_image_gets_its_own_parameters(batch, name):
    images, _ = batch
    same = images[:1].expand(64, -1, -1, -1).contiguous()  # a batch-wide draw would give 64 equal outputs
    out = uint8_pixels(build_policy(name, INFO), same, torch.Generator().manual_seed(7))
    assert len({tuple(o.flatten().tolist()) for o in out}) > 20


def test_no_flip_where_labels_forbid_it():
    info = DatasetInfo("digits", ("0",), 1, (8, 8), False, (0.5,), (0.2,))
    image = torch.zeros(200, 1, 8, 8, dtype=torch.uint8)
    image[:, :, 3:5, 0] = 255  # a mark on the left edge, in the rows a crop of 1 cannot move out
    policy = build_policy("basic", info)
    out = uint8_pixels(policy, image, torch.Generator().manual_seed(0))
    assert out[:, :, :, 4:].sum() == 0  # never on the right half
    assert any("no horizontal flip" in note for note in policy.notes)


def test_grayscale_policies_say_what_they_leave_out():
    strong = build_policy("strong", GRAY)
    assert any("ColorIncreasing" in note for note in strong.notes)
    assert "14 operations" in strong.describe()
    three = build_policy("3aug", GRAY)
    assert any("solarize and blur only" in note for note in three.notes)
    assert "grayscale" not in three.describe()
    assert build_policy("strong", INFO).notes == [] and "15 operations" in build_policy("strong", INFO).describe()


def test_resized_crop_and_overrides(batch):
    images, labels = batch
    policy = build_policy("strong", INFO, crop="resized", crop_scale=0.5, mixup=0, cutmix=0, erasing=0)
    out, targets = policy(images, labels, torch.Generator().manual_seed(0))
    assert targets is labels and "random resized crop (scale 0.5-1)" in policy.describe()
    assert "erasing" not in policy.describe()


@pytest.mark.parametrize("args, message", [
    ({"mixupp": 0.2}, "has no setting mixupp; its settings: crop, crop_scale"),
    ({"crop": "center"}, "crop must be pad, resized or none"),
    ({"erasing": 2}, "erasing is a probability"),
])
def test_bad_policy_settings_are_usage_errors(args, message):
    with pytest.raises(UsageError, match=message):
        build_policy("strong", INFO, **args)


def test_none_takes_no_settings():
    with pytest.raises(UsageError, match="has no setting mixup; its settings: none"):
        build_policy("none", INFO, mixup=0.1)


def test_normalize_uses_the_dataset_statistics():
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    normalize = Normalize(INFO)
    out = normalize(images)
    assert torch.allclose(out[:, 0], torch.tensor((1 - 0.5) / 0.2)) and out.dtype == torch.float32
    assert torch.allclose(normalize.inverse(out), images.float())


def test_unknown_policy():
    with pytest.raises(UsageError, match="unknown augmentation policy 'strongest'"):
        build_policy("strongest", INFO)


def test_a_setting_of_the_wrong_kind_names_the_setting_and_an_example():
    with pytest.raises(UsageError, match="augmentation policy 'strong': mixup must be a number, got 'abc'; e.g. mixup="):
        build_policy("strong", INFO, mixup="abc")


def test_preview_replaces_its_own_png_but_no_other_file(tmp_path):
    from lowdata.augment.preview import write_preview

    out = tmp_path / "preview.png"
    write_preview("digits", "basic", out, images=2, views=1)
    write_preview("digits", "basic", out, images=2, views=1)  # its own: replaced
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(photo)
    before = photo.read_bytes()
    with pytest.raises(UsageError, match="is not a preview lowdata wrote .or it changed since.; nothing was written"):
        write_preview("digits", "basic", photo, images=2, views=1)
    assert photo.read_bytes() == before
