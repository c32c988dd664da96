"""Dense relative localisation: its loss in closed form, the pool's labels never read, the head kept apart."""
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models.loading import load_trained_model
from lowdata.objectives.drloc import grid_offsets, localisation_loss

POOLED = dict(data="digits", labels=100, epochs=2, batch_size=25, threads=1, pool="all", seed=0)


def test_the_loss_is_the_mean_absolute_error_of_the_offsets_on_a_tiny_grid():
    grid, pairs = (2, 3), 4
    torch.manual_seed(0)
    embeddings = torch.randn(2, 6, 3)
    head = nn.Linear(6, 2)
    drawn = torch.randint(6, (2, 2, pairs), generator=torch.Generator().manual_seed(7))
    expected = []
    for image in range(2):
        for pair in range(pairs):
            a, b = int(drawn[0, image, pair]), int(drawn[1, image, pair])
            offset = torch.tensor([(a % 3 - b % 3) / 3, (a // 3 - b // 3) / 2])
            predicted = head(torch.cat([embeddings[image, a], embeddings[image, b]]))
            expected.append((predicted - offset).abs())
    loss = localisation_loss(embeddings, grid, head, pairs, torch.Generator().manual_seed(7))
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-6)
    # token 5 is at row 1, column 2 of the 2x3 grid: 2/3 of the width right of token 0, half the height down
    assert grid_offsets(torch.tensor(5), torch.tensor(0), grid).tolist() == pytest.approx([2 / 3, 1 / 2])


@pytest.mark.parametrize("model, model_args", [("cct-2/3x2", {}), ("resnet20", {})])
def test_on_the_pool_it_reads_no_pool_label_and_its_head_is_never_exported(tmp_path, scramble_pool_labels, model,
                                                                         model_args):
    settings = dict(model=model, model_args=model_args, drloc={"images": "pool", "pairs": 8}, **POOLED)
    summary = train(out=str(tmp_path / "clean"), **settings)
    assert summary["drloc"]["grid"] == ("feature map" if model == "resnet20" else "tokens")
    scramble_pool_labels()
    train(out=str(tmp_path / "wrong"), **settings)
    a = load_file(tmp_path / "clean" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "wrong" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    built, _ = load_trained_model(tmp_path / "clean", 10, 1, (8, 8))
    assert set(a) == set(built.state_dict())  # no offset head in the model's weights
    kept = load_file(tmp_path / "clean" / "checkpoint" / "state.safetensors")  # the head, in the run's state
    width = 64 if model == "resnet20" else 128
    assert kept["objective.0.weight"].shape == (128, 2 * width) and kept["objective.4.weight"].shape == (2, 128)


def test_its_settings_are_checked_in_one_line(tmp_path):
    with pytest.raises(UsageError, match="drloc.images='pool' reads the pool: give --pool all"):
        train(out=str(tmp_path / "a"), data="digits", labels=50, epochs=1, drloc={"images": "pool"})
    with pytest.raises(UsageError, match="pairs"):
        train(out=str(tmp_path / "b"), data="digits", labels=50, epochs=1, drloc={"pairs": 0})
