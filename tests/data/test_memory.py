import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lowdata
from lowdata.data import load_dataset
from lowdata.data.memory import dataset_spec
from lowdata.errors import UsageError
from lowdata.training.divergence import Diverged


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
    ((np.zeros((0, 8, 8), np.uint8), []), "empty \\(0 images\\)"),
    ((np.zeros((4, 0, 8), np.uint8), [0, 1, 0, 1]), "hold no pixels"),
    ((np.zeros((10, 8, 8), np.uint8), [0] * 10), "hold 1 class; a classifier needs at least 2"),
    ((np.zeros((10, 8, 8), np.uint8), [0, 50] * 5), "classes 1, 2, 3, 4, 5 ... have no training images \\(49 of 51"),
    ((np.zeros((6, 8, 8), np.uint8), [0, 1] * 3, np.zeros((2, 8, 8), np.uint8), [0, 2]),
     "test labels \\[2\\] are classes the training split lacks"),
    ((np.zeros((2, 8, 8), np.uint8), [0, 1]), "too few for a 20% test hold-out"),
])
def test_bad_in_memory_data_is_refused_with_the_fix(data, message):
    with pytest.raises(UsageError, match=message):
        dataset_spec(data)


def test_train_refuses_bad_in_memory_data_before_training(tmp_path):
    images, labels = blobs()
    with pytest.raises(UsageError, match="hold 1 class"):
        lowdata.train(data=(images, np.zeros_like(labels)), model="resnet20", epochs=1, out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.sampled_from([24, 40, 9, 3, 1, 0]), channels=st.sampled_from([1, 3]), height=st.sampled_from([8, 5, 3, 1, 0]),
       width=st.integers(1, 9), classes=st.sampled_from([2, 3, 4, 1]), gap=st.sampled_from([False, False, False, True]),
       test=st.sampled_from([0, 0, 3, 6]),
       seed=st.integers(0, 2 ** 16))
def test_random_in_memory_data_trains_or_is_refused_with_a_usage_error(tmp_path, count, channels, height, width,
                                                                       classes, gap, test, seed):
    """Whatever arrays a user hands over: a finished run, a UsageError (exit 2 on the CLI) or a diverged run (exit
    1), never a traceback."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count) * (2 if gap else 1)
    data = [rng.integers(0, 256, (count, channels, height, width), dtype=np.uint8), labels]
    if test:
        data += [rng.integers(0, 256, (test, channels, height, width), dtype=np.uint8),
                 rng.integers(0, classes + (rng.random() < 0.2), test)]  # sometimes a class train lacks
    out = tmp_path / f"run-{seed}-{count}-{height}x{width}-{classes}-{gap}-{test}"
    try:
        summary = lowdata.train(data=tuple(data), model="resnet20", epochs=1, batch_size=8, out=str(out))
    except UsageError as err:
        assert str(err) and "\n" not in str(err)
        event(f"refused: {str(err)[:30]}")
        return
    except Diverged as err:  # degenerate images (8x1 pixels) can give a NaN loss: a failed run, said in one line
        assert str(err).startswith("training diverged") and "\n" not in str(err)
        assert not (out / "summary.json").exists() and not (out / "model").exists()
        event("diverged")
        return
    event("trained")
    assert 0 <= summary["test_acc"] <= 1 and summary["num_classes"] >= 2
