"""Weights in another library's names (matched by order and shape), and a teacher at its own resolution."""
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.foreign_names import match_by_order
from lowdata.models.frozen import Frozen, Layout

DIGITS = dict(data="digits", labels=60, epochs=1, batch_size=30, threads=1)


def foreign(state: dict) -> dict:
    """The same tensors, in order, under names no model has (as EfficientNet-PyTorch's `_conv_stem`...)."""
    return {f"_other.{index}.{key.replace('.', '_')}": value.clone()
            for index, (key, value) in enumerate(state.items())}


def test_a_file_in_other_names_loads_bit_for_bit_as_init_and_as_teacher(tmp_path):
    torch.manual_seed(0)
    source = create_model("resnet20", 10, 1, (8, 8))
    torch.save(foreign(source.state_dict()), tmp_path / "theirs.pth")  # a pickle keeps the order it was saved in
    summary = train(out=str(tmp_path / "init"), init=str(tmp_path / "theirs.pth"), model="resnet20",
                    epochs=1, lr=1e-12, **{k: v for k, v in DIGITS.items() if k != "epochs"})
    assert any("matched" in line and "by order and shape" in line for line in summary["init_report"])
    n = len(source.state_dict())
    assert summary["init_report"][0].startswith(f"loaded {n} of {n} tensors")
    taught = train(out=str(tmp_path / "taught"), teacher=str(tmp_path / "theirs.pth"), teacher_model="resnet20",
                   model="resnet20", **DIGITS)
    assert taught["teacher_weights_matched"].startswith(f"matched {n} tensors by order and shape")
    own = source.state_dict()
    renamed, note = match_by_order(foreign(own), own, "theirs")
    assert list(renamed) == list(own) and all(torch.equal(renamed[k], own[k]) for k in own)


def test_a_tensor_without_a_place_is_one_line(tmp_path):
    own = create_model("resnet20", 10, 1, (8, 8)).state_dict()
    found = foreign(own)
    key = list(found)[3]
    found[key] = torch.zeros(5)
    with pytest.raises(UsageError, match=r"tensor 4 \(_other.3.bn1_running_mean, 5\) has no place: the model's "
                                         r"tensor 4 is bn1.running_mean, 16"):
        match_by_order(found, own, "theirs")
    torch.save(found, tmp_path / "bad.pth")
    with pytest.raises(UsageError, match="has no place"):
        train(out=str(tmp_path / "t"), teacher=str(tmp_path / "bad.pth"), teacher_model="resnet20",
              model="resnet20", **DIGITS)
    assert not (tmp_path / "t").exists()
    save_file(foreign(own), str(tmp_path / "sorted.safetensors"))
    with pytest.raises(UsageError, match="keeps its tensors sorted by name, not in the order they were saved"):
        train(out=str(tmp_path / "s"), init=str(tmp_path / "sorted.safetensors"), model="resnet20", **DIGITS)


def test_a_teacher_at_its_own_resolution_is_a_resize_then_its_forward(tmp_path, image_folder_writer):
    torch.manual_seed(0)
    network = create_model("resnet20", 10, 3, (24, 24)).eval()
    images = torch.randn(4, 3, 8, 8)
    frozen = Frozen(network, Layout("contiguous", "test"), input_size=(24, 24))
    with torch.no_grad():
        manual = network(F.interpolate(images, size=(24, 24), mode="bilinear", align_corners=False, antialias=True))
    assert torch.allclose(frozen(images), manual, atol=1e-6)
    photos = dict(data=str(image_folder_writer(tmp_path / "photos")), epochs=1, batch_size=6, threads=1)  # 12x12
    teacher = tmp_path / "teacher"
    train(out=str(teacher), model="resnet20", image_size=20, **photos)  # trained at 20x20
    summary = train(out=str(tmp_path / "student"), teacher=str(teacher), model="resnet20", **photos)
    assert summary["teacher_input_size"] == "20x20" and summary["teacher_weights_matched"] == "by name"
    save_file(load_file(teacher / "checkpoint" / "model.safetensors"), str(tmp_path / "t20.safetensors"))
    sized = train(out=str(tmp_path / "file"), teacher=str(tmp_path / "t20.safetensors"), teacher_model="resnet20",
                  teacher_size=20, model="resnet20", **photos)
    assert sized["teacher_input_size"] == "20x20" and sized["teacher_test_acc"] == summary["teacher_test_acc"]
