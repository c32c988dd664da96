import numpy as np
import pytest
import torch
import yaml

import lowdata
from lowdata.data import load_dataset
from lowdata.data.memory import dataset_spec
from lowdata.errors import UsageError


def blobs(count=60, seed=0, size=8):
    """Three classes told apart by brightness, as (N, H, W, C) uint8 NumPy images (channels last)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    images = (rng.integers(0, 60, (count, size, size, 3)) + 80 * labels[:, None, None, None]).astype(np.uint8)
    return images, labels


def test_train_takes_arrays_and_the_run_names_them_for_resume(tmp_path):
    images, labels = blobs()
    out = tmp_path / "run"
    settings = dict(data=(images, labels), data_classes=["dark", "mid", "bright"], model="resnet20", epochs=2,
                    batch_size=16, out=str(out))
    assert lowdata.train(stop_after_epoch=1, **settings) is None
    spec = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert spec.startswith("tensors:") and spec.endswith(".safetensors")
    summary = lowdata.train(resume=True, **settings)  # the same content gives the same name
    assert summary["classes"] == ["dark", "mid", "bright"] and summary["input"]["image_size"] == [8, 8]
    assert summary["labels"] == 48  # 20 % of each class held out for the test split
    dataset = load_dataset(spec)
    assert dataset.train_images.shape == (48, 3, 8, 8) and dataset.test_images.dtype == torch.uint8


def test_a_given_test_split_and_torch_datasets_are_kept_as_given():
    from PIL import Image

    images, labels = blobs(30)

    class Pictures(torch.utils.data.Dataset):
        def __init__(self, images, labels):
            self.images, self.labels = images, labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return Image.fromarray(self.images[i]), int(self.labels[i])

    from_arrays = load_dataset(dataset_spec((images[:20], labels[:20], images[20:], labels[20:])))
    from_datasets = load_dataset(dataset_spec((Pictures(images[:20], labels[:20]), Pictures(images[20:], labels[20:]))))
    assert len(from_arrays.test_labels) == 10 and from_arrays.info.classes == ("0", "1", "2")
    assert torch.equal(from_arrays.train_images, from_datasets.train_images)
    assert torch.equal(from_arrays.test_labels, from_datasets.test_labels)
    assert torch.equal(from_arrays.train_images[3], torch.from_numpy(images[3]).permute(2, 0, 1))


@pytest.mark.parametrize("data, message", [
    ((np.zeros((4, 8, 8), np.float32), [0, 1, 0, 1]), "must be uint8"),
    ((np.zeros((4, 8, 8), np.uint8), [0, 1, 0]), "must be 4 non-negative integer"),
    ((np.zeros((4, 8, 8), np.uint8), [0, 1, -1, 1]), "must be 4 non-negative integer"),
    ((np.zeros((4, 5, 8, 8), np.uint8), [0, 1, 0, 1]), "1 or 3 channels"),
    ((np.zeros((4, 8, 8), np.uint8),), "got 1 parts"),
])
def test_bad_in_memory_data_is_refused_with_the_fix(data, message):
    with pytest.raises(UsageError, match=message):
        dataset_spec(data)
