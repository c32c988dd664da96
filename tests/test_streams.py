import torch

from lowdata.streams import make_generators, stream_seed


def test_streams_are_reproducible_and_independent():
    assert stream_seed(0, "augment") == stream_seed(0, "augment")
    assert len({stream_seed(0, "augment"), stream_seed(0, "order"), stream_seed(1, "augment")}) == 3
    first, second = make_generators(3, torch.device("cpu"), ("order", "augment", "mask")), \
        make_generators(3, torch.device("cpu"), ("order", "augment", "mask"))
    draws = {name: torch.rand(4, generator=g) for name, g in first.items()}
    assert all(torch.equal(draws[name], torch.rand(4, generator=g)) for name, g in second.items())
    assert not torch.equal(draws["order"], draws["augment"])
