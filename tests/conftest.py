from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def private_cache_and_registry(tmp_path_factory, monkeypatch):
    """Every test gets a decode cache no other test or user run touches, and a process registry of its own: a
    user's runs training on the same host would otherwise change the threads a test's runs take (cores.py), and
    with them the numbers that tests compare bit for bit between two runs."""
    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("LOWDATA_PROCESSES", str(tmp_path_factory.mktemp("processes")))


def write_image_folder(root: Path, classes=("cat", "dog", "frog"), per_class=6, size=(12, 12), channels=3,
                       split=True, seed=0) -> Path:
    """A tiny PNG image folder: root/train/<class>/*.png and root/test/<class>/*.png (or root/<class>/*)."""
    generator = torch.Generator().manual_seed(seed)
    parts = {"train": per_class, "test": max(per_class // 2, 1)} if split else {"": per_class}
    for part, count in parts.items():
        for index, name in enumerate(classes):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = torch.randint(0, 256, (channels, *size), dtype=torch.uint8, generator=generator)
                image[:, 0, 0] = index * 50 % 256  # class-dependent pixel, to check labels survive decoding
                save_png(image, folder / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder_writer():
    """`write_image_folder` for tests outside this folder, where `from conftest import` may find a nested
    conftest module instead of this one."""
    return write_image_folder


@pytest.fixture
def png_writer():
    """`save_png` for tests outside this folder (see image_folder_writer)."""
    return save_png


@pytest.fixture
def image_folder(tmp_path):
    return write_image_folder(tmp_path / "images")


def save_png(image: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)


@pytest.fixture
def scramble_pool_labels(monkeypatch):
    """Call it to make every later run see wrong labels on its pool images (100 labels on digits, seed 0), with
    the labelled subset still chosen from the true labels: a run that reads no pool label trains the same."""
    import dataclasses

    import lowdata.data as data_module

    real_load, real_budget = data_module.load_dataset, data_module.select_budget
    kept = {}

    def scrambled(*args, **kwargs):
        dataset = real_load(*args, **kwargs)
        kept["budget"] = real_budget(dataset.train_labels, dataset.info.num_classes, 0, total=100)
        labels = dataset.train_labels.clone()
        labels[kept["budget"].pool] = (labels[kept["budget"].pool] + 3) % 10  # every pool label wrong
        return dataclasses.replace(dataset, train_labels=labels)

    def scramble() -> None:
        monkeypatch.setattr(data_module, "load_dataset", scrambled)
        # the labelled subset as chosen from the true labels
        monkeypatch.setattr(data_module, "select_budget", lambda *args, **kwargs: kept["budget"])

    return scramble


@pytest.fixture
def signal_at_step(monkeypatch):
    """Call it with a step number (and a signal): the training loop's process receives the signal right after
    that optimiser step, as from Ctrl-C or a scheduler; `monkeypatch.undo()` ends it."""
    import os
    import signal

    from lowdata.training import loop

    def arm(step: int, signum: int = signal.SIGTERM) -> None:
        real, calls = loop.optimizer_step, {"n": 0}

        def step_then_signal(*args, **kwargs):
            out = real(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == step:
                os.kill(os.getpid(), signum)  # delivered to this (main) thread before the loop looks
            return out

        monkeypatch.setattr(loop, "optimizer_step", step_then_signal)

    return arm


@pytest.fixture
def straight_and_resumed(tmp_path, monkeypatch, signal_at_step):
    """Call it with a step and a run's settings: the weights of the run trained straight through, and of the same
    run stopped by SIGTERM after that step and resumed (`tmp_path/straight`, `tmp_path/stopped`)."""
    def train_both(step: int, **settings) -> tuple[dict, dict]:
        from safetensors.torch import load_file

        from lowdata import stopping, train

        straight, stopped = tmp_path / "straight", tmp_path / "stopped"
        train(out=str(straight), **settings)
        signal_at_step(step)
        with pytest.raises(stopping.Stopped):
            train(out=str(stopped), **settings)
        monkeypatch.undo()
        train(out=str(stopped), resume=True)
        return tuple(load_file(str(run / "checkpoint" / "model.safetensors")) for run in (straight, stopped))

    return train_both
