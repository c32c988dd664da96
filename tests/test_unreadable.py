"""Files lowdata reads from users: a damaged one is a one-line error naming it, never a parser's traceback."""
import pickle

import pytest
import torch

from lowdata import train
from lowdata.cli import main
from lowdata.errors import UsageError
from lowdata.models.sources import read_weights


@pytest.mark.parametrize("name, content, message", [
    ("empty.safetensors", b"", "cannot read weights"),
    ("random.safetensors", bytes(range(256)) * 4, "cannot read weights"),
    ("pickle.safetensors", pickle.dumps({"w": [1, 2]}), "cannot read weights"),
    ("truncated.pt", b"PK\x03\x04 not a whole zip", "cannot read weights"),
])
def test_damaged_weight_files_are_named(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match=f"{message} {path}"):
        read_weights(path)


def test_a_truncated_safetensors_file_through_init_and_teacher(tmp_path, capsys):
    from safetensors.torch import save_file

    good = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(100)}, str(good))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:-50])
    for flag in (["--init", str(bad)], ["--teacher", str(bad), "teacher_model=resnet20"]):
        code = main(["train", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "r"), *flag])
        err = capsys.readouterr().err
        assert code == 2 and f"cannot read weights {bad}" in err and len(err.strip().splitlines()) <= 3


def test_non_utf8_yaml_and_an_out_that_is_a_file(tmp_path):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("epochs: 2 # d\xe9j\xe0\n".encode("latin-1"))
    assert main(["train", "--config", str(config)]) == 2
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        train(data="digits", epochs=1, out=str(a_file))


def test_a_symlink_loop_in_an_image_folder_is_skipped_and_named(tmp_path, image_folder_writer, capsys):
    """As a dangling link, a FIFO or a device: not a regular file, skipped, said once (tests/data/test_check.py)."""
    root = image_folder_writer(tmp_path / "images", split=False)
    (root / "cat" / "loop.png").symlink_to("loop.png")
    summary = train(data=str(root), epochs=1, out=str(tmp_path / "run"))
    assert summary["labels"] + summary.get("val_labels", 0) == 15  # 18 images less the 20 % test hold-out
    assert "skipped 1 entry with an image's name that is not a regular file" in capsys.readouterr().err


def test_a_full_cache_disk_only_costs_the_cache(tmp_path, monkeypatch, image_folder_writer, capsys):
    import safetensors.torch

    from lowdata.data import load_dataset

    monkeypatch.setenv("LOWDATA_CACHE", str(tmp_path / "cache"))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    dataset = load_dataset(str(image_folder_writer(tmp_path / "images")))
    assert len(dataset.train_images) == 18
    assert "not cached" in capsys.readouterr().err


def test_a_full_disk_on_an_atomic_write_says_so_and_keeps_the_old_file(tmp_path, monkeypatch):
    import os

    from lowdata.io import atomic_write_text

    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")  # lowdata's: its ledger proves it

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(UsageError, match=f"disk full while writing {target}; the previous version"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [".lowdata-ledger.json",
                                                                                          "summary.json"]
