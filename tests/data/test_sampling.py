import pytest
import torch

from lowdata.data.sampling import epoch_order


def test_plain_order_is_a_seeded_permutation():
    order = epoch_order(50, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(50))
    assert torch.equal(order, epoch_order(50, torch.Generator().manual_seed(0)))


def test_repeats_come_in_runs_and_keep_the_epoch_length():
    order = epoch_order(30, torch.Generator().manual_seed(1), repeats=3)
    assert len(order) == 30
    runs = order.view(10, 3)
    assert (runs == runs[:, :1]).all()  # each drawn image three times in a row: one batch, three views
    assert len(set(runs[:, 0].tolist())) == 10


@pytest.mark.parametrize("n, repeats, world", [(30, 3, 2), (7, 3, 4), (5, 1, 3), (1, 3, 1)])
def test_ranks_split_one_epoch_evenly(n, repeats, world):
    shares = [epoch_order(n, torch.Generator().manual_seed(2), repeats, rank, world) for rank in range(world)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) * world >= n
    assert set(torch.cat(shares).tolist()) <= set(range(n))
    if repeats > 1 and world > 1:  # the copies of one image go to different ranks, as in DeiT
        full = torch.stack(shares, 1).flatten()
        assert full[0] == full[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        epoch_order(10, torch.Generator(), repeats=0)
    with pytest.raises(ValueError, match="rank 2 is outside"):
        epoch_order(10, torch.Generator(), rank=2, world_size=2)
