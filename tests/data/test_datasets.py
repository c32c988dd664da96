import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lowdata.data import datasets as datasets_module
from lowdata.data import download, load_dataset
from lowdata.errors import UsageError


def test_digits_is_embedded_uint8_and_split():
    data = load_dataset("digits")
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape[1:] == (1, 8, 8)
    assert len(data.train_images) + len(data.test_images) == 1797
    assert data.info.num_classes == 10 and not data.info.hflip
    assert data.train_images.max() == 255
    # stratified hold-out: every class in both splits, about 20 % held out
    assert torch.bincount(data.test_labels).min() >= 30
    assert 0.19 < len(data.test_images) / 1797 < 0.21


def test_image_folder_with_train_and_test(image_folder):
    data = load_dataset(str(image_folder))
    assert data.info.classes == ("cat", "dog", "frog")
    assert data.train_images.shape == (18, 3, 12, 12) and data.test_images.shape == (9, 3, 12, 12)
    # the class-dependent pixel matches the label of every image
    assert torch.equal(data.train_images[:, 0, 0, 0].long(), data.train_labels * 50)
    assert torch.equal(data.test_images[:, 0, 0, 0].long(), data.test_labels * 50)


def test_single_image_folder_gets_a_seeded_stratified_holdout(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "flat", per_class=10, split=False, channels=1)
    data = load_dataset(str(root))
    assert data.train_images.shape[1] == 1
    assert torch.bincount(data.test_labels).tolist() == [2, 2, 2]
    again = load_dataset(str(root))
    other = load_dataset(str(root), split_seed=1)
    assert torch.equal(data.test_images, again.test_images)
    assert not torch.equal(data.test_images, other.test_images)


def test_unreadable_image_is_named(image_folder):
    bad = image_folder / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(UsageError, match="broken.jpg"):
        load_dataset(str(image_folder))


def test_mixed_sizes_take_the_median_shorter_side_unless_image_size_says(image_folder, png_writer, capsys):
    png_writer(torch.zeros(3, 16, 10, dtype=torch.uint8), image_folder / "train" / "cat" / "big.png")  # 10 x 16
    png_writer(torch.zeros(3, 30, 40, dtype=torch.uint8), image_folder / "test" / "dog" / "wide.png")  # 40 x 30
    dataset = load_dataset(str(image_folder))  # 26 images at 12x12 and two others: the median shorter side is 12
    assert dataset.train_images.shape[1:] == (3, 12, 12) and dataset.test_images.shape[1:] == (3, 12, 12)
    assert "images of 3 sizes (12x12, 10x16, 40x30); each resized to 12x12 (the median shorter side)" in \
        capsys.readouterr().err
    assert load_dataset(str(image_folder), image_size=8).train_images.shape[1:] == (3, 8, 8)


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "other").mkdir(parents=True)
    with pytest.raises(UsageError, match="no images"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="does not exist"):
        load_dataset(str(tmp_path / "missing") + "/")
    with pytest.raises(UsageError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_a_folder_of_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    data = load_dataset(f"fashion-mnist:{tmp_path}")
    assert data.train_images.shape == (30, 1, 28, 28) and data.test_images.shape == (10, 1, 28, 28)
    assert data.train_labels.tolist() == [i % 10 for i in range(30)]
    assert data.info.classes[0] == "T-shirt/top"


def test_truncated_idx_file_is_reported(tmp_path):
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(5))
        with gzip.open(tmp_path / f"{split}-images-idx3-ubyte.gz", "wb") as handle:
            handle.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 5, 28, 28) + b"\0" * 100)
    with pytest.raises(UsageError, match="truncated"):
        load_dataset(f"fashion-mnist:{tmp_path}")


def test_fashion_mnist_missing_everywhere_explains_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_module, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    monkeypatch.setattr(download.socket, "create_connection", refuse_connection)
    with pytest.raises(UsageError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    with pytest.raises(UsageError, match="no Fashion-MNIST IDX files"):
        load_dataset(f"fashion-mnist:{tmp_path}")


def refuse_connection(*args, **kwargs):
    raise OSError("network is unreachable")


def test_download_without_network_fails_at_once_with_the_offline_fix(monkeypatch):
    monkeypatch.setattr(download.socket, "create_connection", refuse_connection)
    with pytest.raises(UsageError, match=r"cannot reach www\.cs\.toronto\.edu .* cifar10:DIR"):
        load_dataset("cifar10")


def test_corrupt_torchvision_cifar_folder_is_reported(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(UsageError, match="incomplete or corrupted"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar_dir_in_neither_format(tmp_path):
    with pytest.raises(UsageError, match="neither cifar-10-batches-py"):
        load_dataset(f"cifar10:{tmp_path}")


@pytest.mark.skipif(not datasets_module.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="needs `apt-get install dataset-fashion-mnist` (CI installs it)")
def test_fashion_mnist_from_the_debian_package():
    data = load_dataset("fashion-mnist")
    assert data.train_images.shape == (60000, 1, 28, 28) and data.test_images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.train_labels).tolist() == [6000] * 10


SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="needs ../shared/datasets/cifar10")
def test_cifar10_image_folder():
    data = load_dataset(f"cifar10:{SHARED_CIFAR}")
    assert data.train_images.shape == (50000, 3, 32, 32) and data.test_images.shape == (10000, 3, 32, 32)
    assert data.info.classes[0] == "airplane" and data.info.hflip


def test_keep_classes_relabels_in_the_given_order_and_keeps_the_statistics():
    from lowdata.data import load_dataset
    from lowdata.data.datasets import keep_classes

    full = load_dataset("digits")
    part = keep_classes(full, "7,2")
    assert part.info.classes == ("7", "2") and part.info.mean == full.info.mean
    assert set(part.train_labels.tolist()) == {0, 1} and set(part.test_labels.tolist()) == {0, 1}
    assert len(part.train_labels) == int(((full.train_labels == 7) | (full.train_labels == 2)).sum())
    sevens = full.train_images[full.train_labels == 7]
    assert torch.equal(part.train_images[part.train_labels == 0], sevens)
    assert keep_classes(full, None) is full
    for bad in ("7,eleven", "7", "7,7"):
        with pytest.raises(UsageError, match="two or more distinct classes of digits"):
            keep_classes(full, bad)


def test_a_file_given_as_the_dataset_is_called_a_file(tmp_path):
    path = tmp_path / "images.zip"
    path.write_bytes(b"PK")
    with pytest.raises(UsageError, match="is a file, not a folder; give a folder of images"):
        load_dataset(str(path))
