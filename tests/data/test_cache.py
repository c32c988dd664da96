import os

import torch

from lowdata.data import datasets as datasets_module
from lowdata.data import load_dataset


def test_second_load_comes_from_the_cache(image_folder, monkeypatch):
    first = load_dataset(str(image_folder))
    cached = list((datasets_module.download.cache_root() / "datasets").glob("*.safetensors"))
    assert len(cached) == 1

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again although nothing changed")

    monkeypatch.setattr(datasets_module, "load_image_folder", must_not_decode)
    second = load_dataset(str(image_folder))
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.test_labels, second.test_labels)
    assert first.info == second.info


def test_changed_file_invalidates_the_cache(image_folder, png_writer):
    first = load_dataset(str(image_folder))
    image = image_folder / "train" / "cat" / "000.png"
    png_writer(torch.full((3, 12, 12), 7, dtype=torch.uint8), image)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = load_dataset(str(image_folder))
    assert not torch.equal(first.train_images, second.train_images)
    assert (second.train_images[0] == 7).all()


def test_corrupt_cache_entry_is_rebuilt(image_folder):
    first = load_dataset(str(image_folder))
    entry = next((datasets_module.download.cache_root() / "datasets").glob("*.safetensors"))
    entry.write_bytes(b"garbage")
    second = load_dataset(str(image_folder))
    assert torch.equal(first.train_images, second.train_images)
    assert not list(entry.parent.glob(".*.tmp"))
