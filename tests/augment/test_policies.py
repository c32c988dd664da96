import pytest
import torch

from lowdata.augment import Normalize, build_policy
from lowdata.data import DatasetInfo
from lowdata.errors import UsageError

INFO = DatasetInfo("toy", ("a", "b"), 3, (16, 16), True, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))


@pytest.fixture
def images():
    return torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_none_is_the_identity(images):
    assert build_policy("none", INFO)(images, torch.Generator()) is images


def test_basic_keeps_shape_dtype_and_values(images):
    out = build_policy("basic", INFO)(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    # crops only move pixels or bring in zero padding
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0}


def test_same_seed_same_output_and_samples_differ(images):
    policy = build_policy("basic", INFO)
    a = policy(images, torch.Generator().manual_seed(5))
    b = policy(images, torch.Generator().manual_seed(5))
    c = policy(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # one constant image repeated: a batch-wide draw would give identical outputs
    same = images[:1].expand(64, -1, -1, -1).contiguous()
    out = policy(same, torch.Generator().manual_seed(7))
    assert len({tuple(o.flatten().tolist()) for o in out}) > 10


def test_crop_is_a_shifted_window_of_the_padded_image():
    from lowdata.augment.policies import random_crop

    image = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(50, 1, 1, 1)
    out = random_crop(image, 1, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(image[0], (1, 1, 1, 1))
    windows = {tuple(padded[:, y:y + 4, x:x + 4].flatten().tolist()) for y in range(3) for x in range(3)}
    assert all(tuple(o.flatten().tolist()) in windows for o in out)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 3


def test_no_flip_where_labels_forbid_it():
    info = DatasetInfo("digits", ("0",), 1, (8, 8), False, (0.5,), (0.2,))
    image = torch.zeros(200, 1, 8, 8, dtype=torch.uint8)
    image[:, :, 3:5, 0] = 255  # a mark on the left edge, in the rows a crop of 1 cannot move out
    out = build_policy("basic", info)(image, torch.Generator().manual_seed(0))
    assert out[:, :, :, 4:].sum() == 0  # never on the right half


def test_normalize_uses_the_dataset_statistics():
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = Normalize(INFO)(images)
    assert torch.allclose(out[:, 0], torch.tensor((1 - 0.5) / 0.2))
    assert out.dtype == torch.float32


def test_unknown_policy():
    with pytest.raises(UsageError, match="unknown augmentation policy 'strongest'"):
        build_policy("strongest", INFO)
