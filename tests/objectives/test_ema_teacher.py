"""The EMA-teacher semi-supervised objective: thresholds, targets, pseudo-mixup, resume, label blindness."""
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from lowdata import stopping, train
from lowdata.errors import UsageError
from lowdata.objectives.ema_teacher import ClassThresholds, EmaTeacher
from lowdata.objectives.pool import PoolFeed

SEMI = dict(data="digits", labels=100, epochs=3, batch_size=32, model="resnet20", pool="all", pool_ratio=1.0,
            pool_teacher="ema", method_args={"mixup": 0.8, "threshold": 0.6}, eval_every=1, threads=1)


class Table(nn.Module):
    """Logits given per image by the image's first pixel (an index into `table`)."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(table.clone())

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def rows(*indices):
    x = torch.zeros(len(indices), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(indices, dtype=torch.float)
    return x


def objective_on(table, **settings):
    feed = PoolFeed(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), 1.0, None, None)  # views given by the tests
    thresholds = ClassThresholds(4, table.shape[1], settings.pop("threshold", 0.9), settings.pop("adaptive", False))
    return EmaTeacher(Table(table), feed, thresholds, **{"align": False, **settings})


def test_adaptive_thresholds_from_a_fixed_history_match_hand_computed_values():
    thresholds = ClassThresholds(pool_size=10, num_classes=3, threshold=0.9, adaptive=True)
    assert thresholds.current().tolist() == [0.0, 0.0, 0.0]  # nothing learnt yet: every pseudo-label flows
    thresholds.update(torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0.95, 0.95, 0.5, 0.92, 0.99]),
                      torch.tensor([0, 0, 1, 2, 0]))
    assert thresholds.status.tolist() == [0, 0, -1, 2, 0, -1, -1, -1, -1, -1]
    # the 6 images never confident outnumber class 0's 3 (the warm-up): beta = 3/6, 0, 1/6; M(b) = b / (2 - b)
    assert thresholds.current() == pytest.approx([0.9 * 0.5 / 1.5, 0.0, 0.9 * (1 / 6) / (11 / 6)])
    thresholds.update(torch.tensor([5, 6, 7, 8, 9, 2, 0]), torch.tensor([0.95] * 6 + [0.5]),
                      torch.tensor([1, 1, 1, 1, 1, 1, 2]))
    assert thresholds.status.tolist() == [0, 0, 1, 2, 0, 1, 1, 1, 1, 1]  # image 0's unsure guess changes nothing
    # none never confident now: beta = 3/6, 6/6, 1/6 of the largest class
    assert thresholds.current() == pytest.approx([0.9 * 0.5 / 1.5, 0.9, 0.9 * (1 / 6) / (11 / 6)])
    fixed = ClassThresholds(pool_size=10, num_classes=3, threshold=0.9, adaptive=False)
    assert fixed.current().tolist() == pytest.approx([0.9] * 3)


@pytest.mark.parametrize("targets, temperature", [("hard", 1.0), ("soft", 0.5)])
def test_the_pool_term_against_a_closed_form(targets, temperature):
    table = torch.tensor([[4.0, 0.0], [0.2, 0.0], [0.0, 3.0], [1.0, 2.0]])
    objective = objective_on(table, targets=targets, temperature=temperature, pool_weight=2.0)
    labelled, labels = rows(0, 1), torch.tensor([0, 1])
    weak, strong = rows(0, 1, 2, 3), rows(3, 2, 1, 0)  # the teacher is the student's copy at step 0
    out = objective(labelled, labels, pool=(strong, weak))
    probabilities = table.softmax(1)
    kept = (probabilities.amax(1) >= 0.9).float()
    assert kept.tolist() == [1.0, 0.0, 1.0, 0.0]
    target = F.one_hot(table.argmax(1), 2).float() if targets == "hard" else (table / temperature).softmax(1)
    per_image = -(target * table.flip(0).log_softmax(1)).sum(1)
    expected_pool = (per_image * kept).mean()  # dropped images count as zero in the mean
    base = F.cross_entropy(table[:2], labels)
    assert out.logs["pool_loss"] == pytest.approx(expected_pool.item(), rel=1e-6)
    assert out.loss.item() == pytest.approx(base.item() + 2.0 * expected_pool.item(), rel=1e-6)
    assert out.logs["pool_kept"] == pytest.approx(0.5) and out.logits.shape == (2, 2)


def test_distribution_alignment_divides_by_the_running_mean_of_the_pool_predictions():
    objective = objective_on(torch.zeros(1, 2), align=True)
    first = torch.tensor([[0.9, 0.1], [0.7, 0.3]])  # leans to class 0: mean (0.8, 0.2)
    objective.updates.fill_(1)  # the first batch: the mean is this batch's
    aligned = objective.aligned(first)
    expected = first / torch.tensor([0.8, 0.2])
    assert torch.allclose(aligned, expected / expected.sum(1, keepdim=True))
    assert aligned[1].argmax() == 1  # the lean is taken out: 0.7 of a 0.8 mean is below 0.3 of a 0.2 mean
    objective.updates.fill_(2)
    second = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    objective.aligned(second)  # momentum 1/2: the mean of the two batches so far
    assert torch.allclose(objective.pool_mean, torch.tensor([0.65, 0.35]))


def test_pseudo_mixup_mixes_kept_pairs_with_confidence_weighted_targets():
    objective = objective_on(torch.zeros(1, 4), mixup=0.8)
    objective.pool_stream = torch.Generator().manual_seed(3)
    values = torch.tensor([1.0, 10.0, 100.0, 1000.0, 7.0])
    strong = values.view(5, 1, 1, 1).repeat(1, 1, 2, 2)
    target = F.one_hot(torch.tensor([0, 1, 2, 3, 0]), 4).float()
    confidence = torch.tensor([0.9, 0.6, 0.8, 0.99, 0.3])
    weight = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])  # image 4 is below its threshold
    mixed, mixed_target = objective.pseudo_mixup(strong, target, confidence, weight)
    assert torch.equal(mixed[4], strong[4]) and torch.equal(mixed_target[4], target[4])
    assert torch.allclose(mixed_target.sum(1), torch.ones(5))
    lams = []
    for i in range(4):
        others = [j for j in range(4) if j != i and mixed_target[i, j] > 0]
        if not others:  # paired with itself: unchanged
            assert torch.equal(mixed[i], strong[i])
            continue
        (j,) = others
        lam = ((mixed[i, 0, 0, 0] - values[j]) / (values[i] - values[j])).item()
        lams.append(lam)
        ratio = lam * confidence[i] / (lam * confidence[i] + (1 - lam) * confidence[j])
        assert mixed_target[i, i].item() == pytest.approx(ratio.item(), rel=1e-5)
    assert lams and all(lam == pytest.approx(lams[0], rel=1e-4) for lam in lams)  # one lam per batch
    assert 0 < lams[0] < 1


def test_the_cnn_labels_the_pool_until_the_handover_then_the_average():
    cnn = Table(torch.zeros(4, 2))
    objective = objective_on(torch.zeros(4, 2), cnn=cnn, handover_epochs=2)
    objective.begin_epoch(1)
    assert objective.labeller() is cnn
    objective.begin_epoch(2)
    assert objective.labeller() is objective.teacher.module


def test_the_teacher_is_the_students_moving_average():
    """timm's warm-up (as the loop's evaluation EMA): a copy after the first update, then decay 1 - (1 + s)^(-2/3)
    at update s + 1, capped at `decay`."""
    objective = objective_on(torch.zeros(4, 2), decay=0.5)
    student = objective.model
    labelled, labels, pool = rows(0), torch.tensor([0]), (rows(1), rows(1))
    objective(labelled, labels, pool=pool)  # before any step: the student's initial weights
    assert torch.equal(objective.teacher.module.table, torch.zeros(4, 2))
    with torch.no_grad():
        student.table.fill_(1.0)
    objective(labelled, labels, pool=pool)  # after the first step: a copy
    assert torch.equal(objective.teacher.module.table, torch.ones(4, 2))
    with torch.no_grad():
        student.table.fill_(3.0)
    objective(labelled, labels, pool=pool)  # decay 1 - 2^(-2/3) = 0.370, below the cap 0.5
    decay = 1 - 2 ** (-2 / 3)
    assert objective.teacher.module.table[0, 0].item() == pytest.approx(decay * 1 + (1 - decay) * 3, rel=1e-6)
    for _ in range(5):
        objective(labelled, labels, pool=pool)  # the warm-up has passed the cap: decay 0.5 each step
    assert objective.teacher.module.table[0, 0].item() == pytest.approx(3 - (3 - (decay + (1 - decay) * 3)) / 32)


@pytest.fixture(scope="module")
def labels_only(tmp_path_factory):
    """A resnet20 trained on the labels alone: the start of the semi-supervised runs."""
    out = tmp_path_factory.mktemp("ema") / "labels-only"
    train(data="digits", labels=100, epochs=10, batch_size=32, model="resnet20", out=str(out), threads=1)
    return str(out)


def test_a_cnn_student_learns_from_its_own_average_and_resumes_mid_epoch_bit_for_bit(tmp_path, monkeypatch,
                                                                                       signal_at_step, labels_only):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    settings = dict(SEMI, init=labels_only)
    expected = train(out=str(straight), **settings)
    assert expected["pool_teacher"] == "ema" and expected["pool_images_read"] == 3 * 4 * 32
    assert expected["ema_teacher"]["rampup_epochs"] == 0  # a trained start needs no ramp-up
    assert expected["test_acc"] > 0.4  # labels alone reach about 0.5 here
    signal_at_step(6)  # the second step of the second epoch (4 steps an epoch)
    with pytest.raises(stopping.Stopped):
        train(out=str(stopped), **settings)
    monkeypatch.undo()
    summary = train(out=str(stopped), resume=True)
    for name in ("model.safetensors", "state.safetensors"):
        a, b = (load_file(str(run / "checkpoint" / name)) for run in (straight, stopped))
        shared = [key for key in a if not key.startswith("rng.")]
        assert any(key.startswith("objective.teacher.") for key in a) or name == "model.safetensors"
        assert all(torch.equal(a[key], b[key]) for key in shared), name
    assert summary["test_acc"] == expected["test_acc"]


def test_the_ema_teacher_reads_no_pool_label(tmp_path, scramble_pool_labels):
    settings = dict(SEMI, epochs=2)
    train(out=str(tmp_path / "clean"), **settings)
    scramble_pool_labels()
    train(out=str(tmp_path / "wrong"), **settings)
    a, b = (load_file(tmp_path / run / "checkpoint" / "model.safetensors") for run in ("clean", "wrong"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_guided_vit_with_its_average_as_teacher_trains_and_keeps_both(tmp_path):
    guide = tmp_path / "guide"
    train(data="digits", labels=100, epochs=1, batch_size=32, model="resnet20", out=str(guide))
    summary = train(out=str(tmp_path / "vit"), **dict(SEMI, model="vit-tiny", model_args={"depth": 2}, epochs=1),
                    guide=str(guide))
    assert summary["guide_blocks"] == [0, 1] and summary["pool_teacher"] == "ema"
    kept = load_file(tmp_path / "vit" / "checkpoint" / "state.safetensors")
    assert any(k.startswith("objective.projections.") for k in kept)
    assert any(k.startswith("objective.teacher.blocks.") for k in kept)


@pytest.mark.parametrize("settings, message", [
    (dict(pool=None), "labels unlabelled images: give --pool all"),
    (dict(method_args={"thresold": 0.9}), "has no setting 'thresold'"),
    (dict(method_args={"handover_epochs": 1}), "give both --teacher RUN and ema_teacher.handover_epochs"),
    (dict(method_args={"targets": "fuzzy"}), "targets must be one of hard, soft"),
    (dict(pool_teacher="mine"), "pool_teacher must be one of cnn, ema"),
    (dict(objective="distill"), "pool_teacher=ema is the ema-teacher objective"),
])
def test_settings_it_cannot_use_are_one_line(tmp_path, settings, message):
    with pytest.raises(UsageError, match=message):
        train(out=str(tmp_path / "run"), **{**SEMI, **settings})
