"""Learning from the unlabelled pool through a teacher (FixMatch / Noisy Student pattern)."""
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from lowdata import train
from lowdata.data.budget import pool_subset
from lowdata.errors import UsageError
from lowdata.objectives.distill import Distill

POOLED = dict(data="digits", labels=100, epochs=3, batch_size=32, model="vit-tiny", model_args={"depth": 1},
              distill="soft", pool="all", pool_ratio=1.5, threads=1)  # threads change the sums: pinned


class Fixed(nn.Module):
    """A model whose logits are given per image, by the image's first pixel (an index into `table`)."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()] * self.scale


def indexed(*rows):
    x = torch.zeros(len(rows), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(rows, dtype=torch.float)
    return x


def test_the_threshold_keeps_exactly_the_confident_pool_images_closed_form():
    teacher_table = torch.tensor([[4.0, 0.0], [0.2, 0.0], [0.0, 3.0], [0.0, 0.1]])  # confident, not, yes, not
    student_table = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    objective = Distill(Fixed(student_table), Fixed(teacher_table), mode="hard", alpha=0.5, pool_threshold=0.9,
                        pool_weight=2.0)
    labelled, labels = indexed(0, 1), torch.tensor([0, 0])
    pool = (indexed(0, 1, 2, 3), indexed(0, 1, 2, 3))
    out = objective(labelled, labels, pool=pool)
    confident = F.softmax(teacher_table, 1).amax(1) >= 0.9
    assert confident.tolist() == [True, False, True, False]
    per_image = F.cross_entropy(student_table, teacher_table.argmax(1), reduction="none")
    expected_pool = (per_image * confident).sum() / 4  # dropped images count as zero in the mean
    assert out.logs["pool_kept"] == pytest.approx(0.5)
    assert out.logs["pool_loss"] == pytest.approx(expected_pool.item(), rel=1e-6)
    without = objective(labelled, labels)
    assert out.loss.item() == pytest.approx(without.loss.item() + 2.0 * expected_pool.item(), rel=1e-6)
    assert out.logits.shape == (2, 2)  # the labelled images' predictions only


def test_the_teacher_reads_the_labelled_and_pool_images_in_one_forward_pass():
    calls = []
    teacher = Fixed(torch.tensor([[4.0, 0.0], [0.2, 0.0], [0.0, 3.0], [0.0, 0.1]]))
    teacher.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    objective = Distill(Fixed(torch.zeros(4, 2)), teacher, mode="soft")
    objective(indexed(0, 1), torch.tensor([0, 0]), pool=(indexed(2, 3, 0), indexed(2, 3, 0)))
    assert calls == [2 + 3]  # nothing computed twice between the labelled and the pool halves


def test_pool_subsets_are_seeded_nested_and_checked():
    pool = torch.arange(100, 1100)
    small, large = pool_subset(pool, "100", 0), pool_subset(pool, 500, 0)
    assert len(small) == 100 and set(small.tolist()) <= set(large.tolist())
    assert torch.equal(pool_subset(pool, "all", 0), pool) and len(pool_subset(pool, None, 0)) == 0
    assert not torch.equal(small, pool_subset(pool, "100", 1))
    for bad, message in (("0", "outside the 1000"), ("1001", "outside the 1000"), ("some", "all or a number")):
        with pytest.raises(UsageError, match=message):
            pool_subset(pool, bad, 0)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool") / "teacher"
    train(data="digits", labels=100, epochs=4, batch_size=32, model="resnet20", out=str(out))
    return str(out)


def test_pool_labels_never_reach_a_loss(tmp_path, teacher, scramble_pool_labels):
    """Two runs whose datasets differ only in the labels of pool images end with identical weights."""
    clean = train(out=str(tmp_path / "clean"), teacher=teacher, **POOLED)
    scramble_pool_labels()
    wrong = train(out=str(tmp_path / "wrong"), teacher=teacher, **POOLED)
    a = load_file(tmp_path / "clean" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "wrong" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert clean["pool_images"] == 1338 and clean["pool_images_read"] == 3 * 4 * 48  # 3 epochs x 4 steps x 48
    metrics = json.loads((tmp_path / "clean" / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["pool_loss"] > 0 and metrics["pool_kept"] == 1.0  # threshold 0 keeps every pool image


def test_a_pooled_run_resumes_exactly(tmp_path, teacher):
    settings = dict(teacher=teacher, pool_threshold=0.2, dist_token=True, **POOLED)
    train(out=str(tmp_path / "straight"), **settings)
    assert train(out=str(tmp_path / "resumed"), stop_after_epoch=1, **settings) is None
    summary = train(out=str(tmp_path / "resumed"), resume=True)
    a = load_file(tmp_path / "straight" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert summary["pool_images_read"] == 3 * 4 * 48


def test_a_pool_needs_a_teacher(tmp_path, teacher):
    with pytest.raises(UsageError, match="the pool is taught by a teacher"):
        train(out=str(tmp_path / "a"), **{**POOLED, "distill": None})
    with pytest.raises(UsageError, match="the pool is taught by a teacher"):
        train(out=str(tmp_path / "b"), teacher=teacher, **{**POOLED, "distill": "none"})
    with pytest.raises(UsageError, match="setting 'pool_ratio' must be > 0"):
        train(out=str(tmp_path / "c"), teacher=teacher, **{**POOLED, "pool_ratio": 0})


def test_self_training_rounds_pass_the_teaching_on_and_resume(tmp_path, teacher):
    settings = dict(teacher=teacher, rounds=3, **{**POOLED, "epochs": 2})
    out = tmp_path / "noisy"
    assert train(out=str(out), stop_after_epoch=1, **settings) is None  # stopped inside round 1
    assert not (out / "rounds" / "round-1" / "summary.json").exists()
    summary = train(out=str(out), resume=True)
    rounds = [json.loads((out / "rounds" / f"round-{k}" / "summary.json").read_text()) for k in (1, 2)]
    assert rounds[0]["teacher"] == teacher
    assert rounds[1]["teacher"] == str(out / "rounds" / "round-1")
    assert summary["teacher"] == str(out / "rounds" / "round-2") and summary["rounds"] == 3
    assert summary["teacher_test_acc"] == rounds[1]["test_acc"]
    assert summary["round_test_acc"] == [rounds[0]["test_acc"], rounds[1]["test_acc"], summary["test_acc"]]
    assert json.loads((out / "summary.json").read_text()) == summary
    with pytest.raises(UsageError, match="already holds a run"):
        train(out=str(out), **settings)
    with pytest.raises(UsageError, match="self-training starts from a teacher"):
        train(out=str(tmp_path / "x"), rounds=2, **{**POOLED, "distill": None, "pool": None})


def split_and_joint(mode: str, cached: bool):
    """Two identical Distill objectives over digits' pool, one with split_backward; their gradients after a step."""
    from lowdata.augment import Normalize
    from lowdata.data import load_dataset
    from lowdata.models import create_model
    from lowdata.objectives.pool import pool_feed

    dataset = load_dataset("digits")
    info, cpu = dataset.info, torch.device("cpu")
    torch.manual_seed(0)
    student = create_model("vit-tiny", 10, 1, (8, 8), depth=1, patch_size=2)  # no batch norm: equal gradients
    teacher = create_model("resnet20", 10, 1, (8, 8)).eval()
    pool = dataset.train_images[100:300]
    logits = teacher(Normalize(info)(pool)).detach() if cached else None
    images, labels = Normalize(info)(dataset.train_images[:32]), dataset.train_labels[:32]
    results = []
    for split in (False, True):
        model = create_model("vit-tiny", 10, 1, (8, 8), depth=1, patch_size=2)
        model.load_state_dict(student.state_dict())
        objective = Distill(model, teacher, mode, 0.5, 2.0, pool_weight=1.5, split_backward=split,
                            feed=pool_feed("strong", 1.0, info, pool, cpu), pool_logits=logits).train()
        objective.use_batch_size(32)
        objective.use_streams({"pool": torch.Generator().manual_seed(7)})
        passes = []
        out = objective.step(images, labels, lambda loss: (passes.append(loss.requires_grad), loss.backward()))
        results.append((out, [p.grad.clone() for p in model.parameters()], passes))
    return results


@pytest.mark.parametrize("mode,cached", [("hard", False), ("soft", True)])
def test_the_split_step_takes_two_backward_passes_to_the_joint_steps_gradients(mode, cached):
    (joint, joint_grads, joint_passes), (split, split_grads, split_passes) = split_and_joint(mode, cached)
    assert joint_passes == [True] and split_passes == [True, True]
    assert split.loss.item() == pytest.approx(joint.loss.item(), rel=1e-5)
    assert split.logs["pool_loss"].item() == pytest.approx(joint.logs["pool_loss"].item(), rel=1e-5)
    assert split.counts == joint.counts == {"pool_images_read": 32}
    assert not split.loss.requires_grad and split.model_input is None
    for a, b in zip(joint_grads, split_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert max(g.abs().max().item() for g in split_grads) > 0


def test_a_split_run_trains_as_the_joint_run_does_and_refuses_terms(tmp_path, teacher):
    joint = dict(POOLED, teacher=teacher, distill={"mode": "soft"}, precision="fp32")  # bf16 rounds each pass
    split = dict(joint, distill={"mode": "soft", "split_backward": True})
    a, b = train(**joint, out=str(tmp_path / "joint")), train(**split, out=str(tmp_path / "split"))
    assert b["split_backward"] is True and "split_backward" not in a
    joint_w = load_file(tmp_path / "joint" / "checkpoint" / "model.safetensors")
    split_w = load_file(tmp_path / "split" / "checkpoint" / "model.safetensors")
    assert max((joint_w[k].float() - split_w[k].float()).abs().max().item() for k in joint_w) < 1e-3
    assert abs(a["test_acc"] - b["test_acc"]) < 0.02
    with pytest.raises(UsageError, match="split_backward"):
        train(**dict(split, drloc={"images": "labelled"}), out=str(tmp_path / "terms"))
