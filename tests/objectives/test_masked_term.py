"""Joint masked-image modelling as a term: the MAE objective's loss on the same masks; with DRLoc, a stopped run
resumes bit for bit."""
import json

import pytest
import torch
from safetensors.torch import load_file

from lowdata import stopping, train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.objectives.mae import MAE
from lowdata.objectives.masked import JointMaskedModelling, MaskedSettings


@pytest.mark.parametrize("preset", ["vit-tiny", "vit-tiny-simple"])  # a class token, and average pooling
def test_the_term_is_the_mae_objectives_loss_on_the_same_masks(preset):
    torch.manual_seed(0)
    model = create_model(preset, 10, 3, (16, 16), depth=2)
    term = JointMaskedModelling(model, 3, MaskedSettings(weight=0.5))
    objective = MAE(model, 3)
    objective.model.load_state_dict({**objective.model.state_dict(),
                                     **term.decoder.state_dict()})
    images = torch.randn(6, 3, 16, 16)
    term.use_streams({"masked": torch.Generator().manual_seed(3)})
    objective.use_streams({"mask": torch.Generator().manual_seed(3)})
    torch.manual_seed(1)  # stochastic depth draws from the global generator
    weighted, logs = term.loss(images, labelled=6)
    torch.manual_seed(1)
    expected = objective(images, torch.zeros(6, dtype=torch.long)).loss
    assert torch.equal(logs["masked_loss"], expected.detach()) and torch.equal(weighted, 0.5 * expected)
    assert {name for name, _ in term.named_parameters()} == {f"decoder.{name}" for name, _ in
                                                            objective.model.named_parameters()
                                                            if not name.startswith("encoder.")}


def test_a_run_with_both_terms_on_the_pool_resumes_bit_for_bit(tmp_path, monkeypatch, signal_at_step):
    settings = dict(data="digits", labels=100, epochs=2, batch_size=25, threads=1, pool="all", seed=0,
                    model="vit-tiny-simple", model_args={"depth": 1}, masked={"weight": 1.0},
                    drloc={"pairs": 8, "warmup_epochs": 2})
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    summary = train(out=str(straight), **settings)
    assert summary["masked"]["images"] == "both" and summary["drloc"]["warmup_epochs"] == 2
    signal_at_step(6)  # the second step of the second epoch (4 steps an epoch)
    with pytest.raises(stopping.Stopped):
        train(out=str(stopped), **settings)
    monkeypatch.undo()
    train(out=str(stopped), resume=True)
    for name in ("model.safetensors", "state.safetensors"):
        a, b = ({key: value for key, value in load_file(str(run / "checkpoint" / name)).items()
                 if not key.startswith("stream.")} for run in (straight, stopped))  # the terms' parts, the optimiser
        assert set(a) == set(b) and all(torch.equal(a[key], b[key]) for key in a), name
    logged = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert all(row["masked_loss"] > 0 and row["drloc_loss"] > 0 for row in logged)


def test_models_it_cannot_mask_are_refused_in_one_line(tmp_path):
    with pytest.raises(UsageError, match="ConvTokenizer mixes neighbouring pixels .* use a patch-embedding ViT"):
        train(out=str(tmp_path / "a"), data="digits", labels=50, epochs=1, model="cct-2/3x2",
              masked={"images": "labelled"})
    with pytest.raises(UsageError, match="masked.images='both' reads the pool: give --pool all"):
        train(out=str(tmp_path / "b"), data="digits", labels=50, epochs=1, model="vit-tiny", masked={"weight": 1})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_token_dropping_resumes_bit_for_bit_and_refuses_drloc(tmp_path, straight_and_resumed):
    """PatchDropout (timm's, model_args.patch_drop_rate): half the patch tokens in training steps, all at
    evaluation; its draws come from the checkpointed torch stream, so a run stopped mid-epoch resumes exactly."""
    settings = dict(data="digits", labels=100, epochs=2, batch_size=25, threads=1, seed=0, model="vit-tiny",
                    model_args={"depth": 1, "patch_drop_rate": 0.5})
    a, b = straight_and_resumed(6, **settings)
    assert all(torch.equal(a[key], b[key]) for key in a)
    from lowdata.models import create_model

    model = create_model("vit-tiny", 10, 3, (32, 32), depth=1, patch_drop_rate=0.5)
    seen = []
    model.blocks.register_forward_hook(lambda module, inputs, output: seen.append(output.shape[1]))
    model.train()(torch.zeros(2, 3, 32, 32))
    model.eval()(torch.zeros(2, 3, 32, 32))
    assert seen == [1 + 32, 1 + 64]  # the class token and half the 8x8 patches in training, all at evaluation
    with pytest.raises(UsageError, match="model_args.patch_drop_rate drops tokens"):
        train(out=str(tmp_path / "d"), **{**settings, "drloc": {"images": "labelled"}})
