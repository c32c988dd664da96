"""Auxiliary terms ride on any method through one wrapper; guidance over the pool needs no teacher."""
import json

import pytest
import torch
from torch import nn

from lowdata import train
from lowdata.errors import UsageError
from lowdata.objectives.base import Objective, StepOutput
from lowdata.objectives.terms import Term, WithTerms

GUIDED = dict(data="digits", labels=60, epochs=2, batch_size=30, model="vit-tiny", model_args={"depth": 2},
              threads=1)


class Doubling(Objective):
    """A method whose loss is the sum of its model's output; it keeps a buffer as its own state."""
    carries_terms = True

    def __init__(self):
        super().__init__()
        self.model = nn.Linear(2, 1, bias=False)
        self.register_buffer("seen", torch.zeros(()))

    def kept_state(self):
        kept = nn.Module()
        kept.register_buffer("seen", self.seen)
        return kept

    def forward(self, images, labels):
        return StepOutput(loss=self.model(images).sum(), model_input=images)


class Norm(Term):
    """weight * the squared norm of the captured model output."""
    state_name = "scale"

    def __init__(self, model, weight):
        super().__init__()
        self.model, self.weight, self.captured = [model], weight, None
        self.extra = nn.Linear(1, 1)

    def capturing(self):
        from contextlib import contextmanager

        @contextmanager
        def hooked():
            handle = self.model[0].register_forward_hook(lambda m, i, out: setattr(self, "captured", out))
            try:
                yield
            finally:
                handle.remove()
        return hooked()

    def loss(self, model_input, labelled):
        value = self.weight * self.captured[:labelled].pow(2).sum()
        return value, {"norm": value.detach()}

    def trainable_extras(self):
        return self.extra


def test_terms_add_their_weighted_losses_and_logs_to_the_methods_step():
    method = Doubling()
    with torch.no_grad():
        method.model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    wrapped = WithTerms(method, [Norm(method.model, 0.5)])
    out = wrapped(torch.tensor([[1.0, 1.0], [2.0, 0.0]]), torch.zeros(2, dtype=torch.long))
    assert out.loss.item() == pytest.approx((3 + 2) + 0.5 * (9 + 4))
    assert out.logs["norm"].item() == pytest.approx(6.5)
    assert not method.model._forward_hooks  # captured for the one step only


def test_the_wrapper_hands_the_loop_the_methods_model_and_both_states():
    method = Doubling()
    term = Norm(method.model, 1.0)
    wrapped = WithTerms(method, [term])
    swapped = nn.Linear(2, 1)
    wrapped.model = swapped  # the loop swaps in its wrapped or compiled model
    assert method.model is swapped and wrapped.model is swapped
    assert wrapped.trainable_extras() is term.extra
    assert set(wrapped.kept_state().state_dict()) == {"seen", "scale.weight", "scale.bias"}
    alone = WithTerms(Supervised_without_state(), [Norm(swapped, 1.0)])
    assert set(alone.kept_state().state_dict()) == {"weight", "bias"}  # the names a guided run always kept


def Supervised_without_state():
    from lowdata.objectives.supervised import Supervised

    return Supervised(nn.Linear(2, 2))


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    out = tmp_path_factory.mktemp("guide") / "resnet20"
    train(data="digits", labels=60, epochs=1, batch_size=30, model="resnet20", out=str(out), threads=1)
    return str(out)


def test_guidance_over_the_pool_runs_beside_the_plain_supervised_objective(tmp_path, guide):
    summary = train(out=str(tmp_path / "run"), guide=guide, pool="120", pool_ratio=1.0, **GUIDED)
    assert summary["guide_on"] == "both" and summary["pool_images"] == 120
    assert summary["pool_images_read"] == 2 * 2 * 30  # 2 epochs of 2 steps, one pool image per labelled one
    flops = summary["flops_per_image"]
    # the student trained on labelled and pool images, the guide's forward pass on both
    assert summary["train_flops"] == flops["model"] * (120 + 120) + flops["guide"] * (120 + 120)
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(e["guide_loss"] > 0 for e in epochs if "guide_loss" in e) and "guide_loss" in epochs[-1]
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "objective: supervised" in config and "guidance:" in config and "images: both" in config


def test_a_pool_no_teacher_or_term_reads_is_refused(tmp_path, guide):
    with pytest.raises(UsageError, match="the pool is taught by a teacher, or read by a term"):
        train(out=str(tmp_path / "a"), pool="all", **GUIDED)
    with pytest.raises(UsageError, match="the pool is taught by a teacher, or read by a term"):
        train(out=str(tmp_path / "b"), pool="all", guidance={"guide": guide, "images": "labelled"}, **GUIDED)
