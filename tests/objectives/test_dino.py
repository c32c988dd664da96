"""DINO self-distillation: the loss, the momentum teacher and the centre by hand; multi-crop views; a pretraining
that resumes bit for bit; its encoder loading into every kind of preset; tokenizers MAE refuses."""
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lowdata import pretrain, stopping, train
from lowdata.augment import Normalize
from lowdata.augment.multicrop import MultiCrop
from lowdata.errors import UsageError
from lowdata.objectives.dino import Center, DinoTeacher, dino_loss

DINO = dict(data="digits", method="dino", epochs=2, batch_size=128, knn_memory=300, threads=1,
            method_args={"out_dim": 64, "hidden_dim": 32, "bottleneck_dim": 16, "local_crops": 2})


def test_the_loss_against_a_closed_form_on_tiny_logits():
    student = torch.tensor([[[1.0, 0.0, -1.0]], [[0.5, 0.5, 0.0]], [[0.0, 2.0, 0.0]]])  # 3 crops, 1 image, K = 3
    teacher = torch.tensor([[[2.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]])  # the 2 global crops
    center = torch.tensor([[0.5, 0.0, 0.25]])
    tau_s, tau_t = 0.5, 0.2

    def softmax(values):
        exps = [math.exp(v) for v in values]
        return [e / sum(exps) for e in exps]

    expected, pairs = 0.0, 0
    for i in range(2):
        target = softmax([(t - c) / tau_t for t, c in zip(teacher[i, 0].tolist(), center[0].tolist())])
        for v in range(3):
            if v != i:
                probs = softmax([s / tau_s for s in student[v, 0].tolist()])
                expected += -sum(p * math.log(q) for p, q in zip(target, probs))
                pairs += 1
    assert pairs == 4
    assert dino_loss(student, teacher, center, tau_s, tau_t).item() == pytest.approx(expected / pairs, rel=1e-6)


def test_the_teachers_momentum_follows_the_cosine_and_averages_by_hand():
    student = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        student.weight.copy_(torch.tensor([[1.0, -2.0]]))
    teacher = DinoTeacher(student, base=0.9, epochs=4)
    for epoch, expected in ((0, 0.9), (2, 0.95), (4, 1.0)):
        teacher.set_epoch(epoch)
        assert teacher.decay == pytest.approx(expected)
    teacher.set_epoch(2)
    with torch.no_grad():
        student.weight.copy_(torch.tensor([[3.0, 0.0]]))
    teacher.update(student, step=1)  # the loop's step number does not change DINO's momentum
    assert torch.allclose(teacher.module.weight, torch.tensor([[0.95 * 1 + 0.05 * 3, 0.95 * -2 + 0.05 * 0]]))
    assert not any(p.requires_grad for p in teacher.module.parameters())


def test_the_centre_is_a_running_mean_of_the_teachers_outputs():
    center = Center(3, momentum=0.9)
    outputs = torch.tensor([[1.0, 2.0, 3.0], [3.0, 0.0, 1.0]])
    center.update(outputs)
    assert torch.allclose(center.center, torch.tensor([[0.2, 0.1, 0.2]]))
    center.update(outputs)
    assert torch.allclose(center.center, 0.9 * torch.tensor([[0.2, 0.1, 0.2]]) + 0.1 * torch.tensor([[2.0, 1.0, 2.0]]))


def test_multicrop_gives_two_global_and_several_small_views_reproducibly():
    class Info:
        mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    crops, normalize = MultiCrop((32, 32), 3, local_crops=3), Normalize(Info())
    images = normalize(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    first = crops(images, torch.Generator().manual_seed(0), normalize)
    again = crops(images, torch.Generator().manual_seed(0), normalize)
    other = crops(images, torch.Generator().manual_seed(1), normalize)
    assert first[0].shape == (8, 3, 32, 32) and first[1].shape == (12, 3, 16, 16)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert not torch.equal(first[0][:4], first[0][4:])  # the two global crops of an image differ
    assert MultiCrop((32, 32), 3, local_crops=0)(images, torch.Generator(), normalize)[1] is None
    with pytest.raises(ValueError, match="area fractions"):
        MultiCrop((32, 32), 3, local_scale=(0.5, 0.2))


@pytest.mark.parametrize("model", ["cct-2/3x2", "vit-tiny-convstem", "vit-tiny-sl", "vit-tiny", "resnet20"])
def test_the_encoder_loads_into_each_preset_with_every_backbone_tensor(tmp_path, model):
    """Every tokenizer pretrains (MAE refuses all but plain patches), and `--init` takes every encoder tensor:
    the load report counts them and names the new classifier as the only tensors not loaded."""
    from lowdata.models import create_model, sized_model_args
    from lowdata.models.weights import head_keys, load_init

    small = {"depth": 2} if model.startswith("vit") else {}
    run = tmp_path / "dino"
    summary = pretrain(out=str(run), model=model, model_args=small, **{**DINO, "epochs": 1})
    assert summary["method"] == "dino" and summary["images"] == 1438 and 0 < summary["knn_acc"] <= 1
    assert (run / "views.png").is_file()
    classifier = create_model(model, num_classes=10, in_chans=1, img_size=(8, 8), drop_path=0.0,
                              **sized_model_args(model, small, (8, 8)))  # the grid the run chose and recorded
    report = load_init(classifier, run)
    own, head = classifier.state_dict(), head_keys(classifier)
    assert report[0] == f"loaded {len(own) - len(head)} of {len(own)} tensors from {run}"
    assert f"new (not in the source): {', '.join(sorted(head))}" in report
    teacher = load_file(run / "checkpoint" / "model_ema.safetensors")  # what --init read: the teacher
    for key, value in classifier.state_dict().items():
        if key not in head:
            assert torch.equal(value, teacher[f"encoder.{key}"]), key


def test_mae_refuses_a_convolutional_tokenizer_that_dino_accepts(tmp_path):
    with pytest.raises(UsageError, match="needs tokens that each see only their own patch"):
        pretrain(out=str(tmp_path / "mae"), data="digits", epochs=1, model="cct-2/3x2")
    assert pretrain(out=str(tmp_path / "dino"), model="cct-2/3x2", **DINO)["method"] == "dino"


def test_a_stopped_pretraining_resumes_bit_for_bit(tmp_path, monkeypatch, signal_at_step):
    settings = dict(DINO, model="cct-2/3x2", epochs=3, batch_size=256, method_args={**DINO["method_args"],
                    "freeze_last_layer": 1, "warmup_teacher_temp_epochs": 2})
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    expected = pretrain(out=str(straight), **settings)
    signal_at_step(8)  # the second step of the second epoch (6 steps an epoch)
    with pytest.raises(stopping.Stopped):
        pretrain(out=str(stopped), **settings)
    monkeypatch.undo()
    summary = pretrain(out=str(stopped), resume=True)
    for name in ("model.safetensors", "model_ema.safetensors", "state.safetensors"):
        a, b = (load_file(str(run / "checkpoint" / name)) for run in (straight, stopped))
        shared = [key for key in a if not key.startswith("rng.")]
        assert all(torch.equal(a[key], b[key]) for key in shared), name
    assert "objective.center" in load_file(str(straight / "checkpoint" / "state.safetensors"))
    assert summary["knn_acc"] == expected["knn_acc"]


def test_the_last_layer_stays_put_while_frozen_and_the_teacher_moves(tmp_path):
    run = tmp_path / "dino"
    pretrain(out=str(run), model="resnet20", **{**DINO, "epochs": 1})
    student = load_file(run / "checkpoint" / "model.safetensors")
    teacher = load_file(run / "checkpoint" / "model_ema.safetensors")
    torch.manual_seed(0)  # the run's own seed: the same initial head
    from lowdata.objectives.dino import DinoHead
    from lowdata.models import create_model

    create_model("resnet20", num_classes=0, in_chans=1, img_size=(8, 8), drop_path=0.0)
    initial = DinoHead(64, 64, 32, 16).last_layer.weight
    # frozen through the first epoch: the unit rows it computes with stay put (AdamW's decay only shrinks
    # the stored rows, and the head divides their norms out)
    kept = nn.functional.normalize(student["head.last_layer.weight"], dim=1)
    assert torch.allclose(kept, nn.functional.normalize(initial, dim=1), atol=1e-6)
    assert not torch.equal(student["head.last_layer.weight"], initial)
    assert not torch.equal(student["head.mlp.0.weight"], teacher["head.mlp.0.weight"])


@pytest.mark.parametrize("settings, message", [
    ({"local_crop": 4}, "has no setting 'local_crop'"),
    ({"momentum": 1.0}, "setting 'dino.momentum' must be >= 0 and < 1"),
    ({"teacher_temp": 0}, "setting 'dino.teacher_temp' must be > 0"),
    ({"global_scale": [0.9, 0.2]}, "global_scale must be two area fractions"),
])
def test_settings_it_cannot_use_are_one_line(tmp_path, settings, message):
    with pytest.raises(UsageError, match=message):
        pretrain(out=str(tmp_path / "run"), model="resnet20", **{**DINO, "method_args": settings})


def test_fine_tuning_linear_probing_and_the_ema_teacher_start_from_the_teacher(tmp_path):
    run = tmp_path / "dino"
    pretrain(out=str(run), model="cct-2/3x2", **{**DINO, "epochs": 1})
    teacher = load_file(run / "checkpoint" / "model_ema.safetensors")
    common = dict(data="digits", labels=100, epochs=1, model="cct-2/3x2", init=str(run), threads=1)
    tuned = train(out=str(tmp_path / "tuned"), layer_decay=0.75, **common)
    assert tuned["init"] == str(run) and tuned["layer_decay"] == 0.75
    assert any("took the encoder and dropped the rest" in line for line in tuned["init_report"])
    train(out=str(tmp_path / "probe"), linear_probe=True, **common)
    probed = load_file(tmp_path / "probe" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(value, teacher[f"encoder.{key}"]) for key, value in probed.items()
               if not key.startswith("head."))
    semi = train(out=str(tmp_path / "semi"), pool="all", pool_teacher="ema", **common)
    assert semi["pool_teacher"] == "ema" and semi["init"] == str(run)
