import json

import pytest
import timm
import torch
from torch import nn
from torch.nn import functional as F

from lowdata import evaluate_run, train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.objectives.distill import Distill, distillation_loss

TINY_VIT = dict(num_classes=10, in_chans=3, img_size=(16, 16), depth=2)


def logits(seed, n=8, classes=10):
    return torch.randn(n, classes, generator=torch.Generator().manual_seed(seed)) * 3


def test_soft_loss_is_zero_when_student_equals_teacher_and_positive_otherwise():
    x = logits(0)
    assert distillation_loss(x, x, "soft", tau=2.0).abs() < 1e-6
    y = logits(1)
    expected = F.kl_div(F.log_softmax(x / 2, 1), F.softmax(y / 2, 1), reduction="sum") / 8 * 4  # per image x tau^2
    assert torch.isclose(distillation_loss(x, y, "soft", tau=2.0), expected, rtol=1e-5)


def test_hard_loss_is_cross_entropy_against_the_teacher_argmax():
    student, teacher = logits(2), logits(3)
    assert torch.isclose(distillation_loss(student, teacher, "hard"), F.cross_entropy(student, teacher.argmax(1)))


class Linear(nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(12, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc(self.dropout(x.flatten(1)))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_loss_mixes_labels_and_teacher_by_alpha(alpha):
    student, teacher = Linear(0), Linear(1)
    student.eval()  # no dropout, so the terms can be recomputed
    objective = Distill(student, teacher, "hard", alpha=alpha, label_smoothing=0.1)
    images, labels = torch.randn(8, 3, 2, 2), torch.arange(8)
    out = objective(images, labels)
    base = F.cross_entropy(student(images), labels, label_smoothing=0.1)
    hard = F.cross_entropy(student(images), teacher(images).argmax(1))
    assert torch.isclose(out.loss, (1 - alpha) * base + alpha * hard)
    soft_targets = torch.softmax(torch.randn(8, 10), 1)  # Mixup/CutMix targets are accepted too
    assert torch.isfinite(objective(images, soft_targets).loss)


def test_teacher_is_frozen_gets_no_gradient_and_stays_in_eval_mode():
    student, teacher = Linear(0), Linear(1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective = Distill(student, teacher, "soft", alpha=0.5, tau=2.0)
    optimizer = torch.optim.SGD(objective.model.parameters(), lr=0.5)
    objective.train()
    for _ in range(3):
        loss = objective(torch.randn(8, 3, 2, 2), torch.arange(8)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not teacher.training and student.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not torch.equal(student.fc.weight, Linear(0).fc.weight)


def test_bad_modes_are_refused():
    with pytest.raises(ValueError, match="hard, soft, none"):
        Distill(Linear(0), Linear(1), "medium")
    with pytest.raises(ValueError, match="alpha"):
        Distill(Linear(0), Linear(1), "hard", alpha=1.5)


def test_distillation_token_head_and_averaged_inference():
    model = create_model("vit-tiny", distilled=True, **TINY_VIT)
    assert hasattr(model, "head_dist") and model.dist_token.shape == (1, 1, 192)
    images = torch.randn(4, 3, 16, 16)
    Distill(model, Linear(1), "hard")  # switches the student's two-head training output on
    model.train()
    class_logits, dist_logits = model(images)
    assert class_logits.shape == dist_logits.shape == (4, 10)
    model.eval()
    tokens = model.forward_features(images)
    expected = (model.head(tokens[:, 0]) + model.head_dist(tokens[:, 1])) / 2
    assert torch.allclose(model(images), expected, atol=1e-5)


def test_distilled_state_dict_loads_into_timms_deit():
    model = create_model("vit-tiny", distilled=True, **TINY_VIT).eval()
    deit = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, num_classes=10, img_size=16,
                             patch_size=4, embed_dim=192, depth=2, num_heads=3, mlp_ratio=2.0).eval()
    deit.load_state_dict(model.state_dict())  # strict: same keys, same shapes
    images = torch.randn(2, 3, 16, 16)
    assert torch.allclose(deit(images), model(images), atol=1e-5)


def test_dist_token_needs_a_vit_preset():
    with pytest.raises(UsageError, match="needs a ViT preset"):
        create_model("resnet20", num_classes=10, in_chans=3, img_size=(16, 16), distilled=True)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher") / "run"
    train(data="digits", labels=300, model="resnet20", epochs=6, batch_size=64, out=str(run))
    return run


def test_distilled_run_records_the_teacher_and_round_trips(tmp_path, teacher_run):
    run = tmp_path / "student"
    summary = train(data="digits", labels=300, model="vit-tiny", model_args={"depth": 2}, epochs=3, batch_size=64,
                    teacher=str(teacher_run), dist_token=True, augment="strong", out=str(run))
    teacher_acc = json.loads((teacher_run / "summary.json").read_text())["test_acc"]
    assert summary["teacher_test_acc"] == pytest.approx(teacher_acc) and summary["distill"] == "hard"
    assert summary["teacher_model"] == "resnet20"
    assert summary["teacher_layout"] in ("channels_last", "contiguous") and "probe" in summary["teacher_layout_reason"]
    assert "distill:\n  mode: hard" in (run / "config.yaml").read_text()  # resolved from the default
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 3 and all(0 <= e["teacher_agreement"] <= 1 and e["distill_loss"] > 0 for e in epochs)
    assert all(e["base_loss"] > 0 for e in epochs)  # the objective's own figures, as epoch means
    assert evaluate_run(run)["test_acc"] == pytest.approx(summary["test_acc"])


def test_teacher_from_a_weights_file(tmp_path, teacher_run):
    from safetensors.torch import load_file

    weights = tmp_path / "teacher.pth"
    torch.save(load_file(str(teacher_run / "checkpoint" / "model.safetensors")), weights)
    summary = train(data="digits", labels=300, model="resnet20", epochs=1, batch_size=64, teacher=str(weights),
                    teacher_model="resnet20", distill="soft", distill_tau=2.0, out=str(tmp_path / "run"))
    assert summary["teacher_test_acc"] == pytest.approx(json.loads((teacher_run / "summary.json").read_text())["test_acc"])
    with pytest.raises(UsageError, match="need the architecture's name"):
        train(data="digits", labels=300, epochs=1, teacher=str(weights), out=str(tmp_path / "run2"))


@pytest.mark.parametrize("settings, message", [
    ({"distill": "hard"}, "needs a teacher"),
    ({"teacher": "/nonexistent/run"}, "neither a lowdata run directory nor a weights file"),
    ({"dist_token": True, "model": "resnet20"}, "needs a ViT preset"),
])
def test_distillation_usage_errors(tmp_path, settings, message):
    with pytest.raises(UsageError, match=message):
        train(data="digits", labels=100, epochs=1, out=str(tmp_path / "run"), **settings)


def test_a_teacher_for_other_data_is_refused(tmp_path, teacher_run, image_folder):
    with pytest.raises(UsageError, match="do not fit the model .*trained for other data than this"):
        train(data=str(image_folder), epochs=1, teacher=str(teacher_run), out=str(tmp_path / "run"))


def test_distill_none_with_a_teacher_trains_on_the_labels_alone(tmp_path, teacher_run):
    run = tmp_path / "student"
    summary = train(data="digits", labels=300, model="resnet20", epochs=1, batch_size=64, teacher=str(teacher_run),
                    distill="none", out=str(run))
    assert summary["distill"] == "none" and summary["teacher_test_acc"] > 0.5  # the teacher is still reported
    epoch = json.loads((run / "metrics.jsonl").read_text())
    assert "base_loss" in epoch and "distill_loss" not in epoch
