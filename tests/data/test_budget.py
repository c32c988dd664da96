import pytest
import torch

from lowdata.data import select_budget
from lowdata.errors import UsageError


@pytest.fixture
def labels():
    # 10 classes with 100 examples each, shuffled so indices do not follow classes
    generator = torch.Generator().manual_seed(123)
    return torch.arange(10).repeat_interleave(100)[torch.randperm(1000, generator=generator)]


def test_budget_is_class_balanced(labels):
    budget = select_budget(labels, 10, seed=0, total=250)
    counts = torch.bincount(labels[budget.labelled], minlength=10)
    assert counts.sum() == 250
    assert counts.max() - counts.min() <= 1
    per_class = select_budget(labels, 10, seed=0, per_class=7)
    assert torch.bincount(labels[per_class.labelled], minlength=10).tolist() == [7] * 10


def test_budget_is_seeded(labels):
    a = select_budget(labels, 10, seed=3, total=100).labelled
    b = select_budget(labels, 10, seed=3, total=100).labelled
    c = select_budget(labels, 10, seed=4, total=100).labelled
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_budgets_are_nested(labels, seed):
    sizes = [10, 25, 103, 250, 500, 1000]
    subsets = [set(select_budget(labels, 10, seed=seed, total=n).labelled.tolist()) for n in sizes]
    for small, large in zip(subsets, subsets[1:]):
        assert small <= large
    assert [len(s) for s in subsets] == sizes


def test_pool_is_the_rest_and_disjoint(labels):
    budget = select_budget(labels, 10, seed=0, total=300, val_fraction=0.2)
    labelled, val, pool = (set(t.tolist()) for t in (budget.labelled, budget.val, budget.pool))
    assert not labelled & pool and not val & pool and not labelled & val
    assert labelled | val | pool == set(range(1000))
    assert len(val) == 60 and len(labelled) == 240
    assert torch.bincount(labels[budget.val], minlength=10).tolist() == [6] * 10


def test_training_part_still_nests_with_validation(labels):
    small = set(select_budget(labels, 10, seed=0, total=200, val_fraction=0.1).labelled.tolist())
    large = set(select_budget(labels, 10, seed=0, total=500).labelled.tolist())
    assert small <= large


def test_whole_split_when_no_budget(labels):
    budget = select_budget(labels, 10, seed=0)
    assert len(budget.labelled) == 1000 and len(budget.pool) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"total": 1001}, "larger than the training split"),
    ({"total": 9}, "smaller than the number of classes"),
    ({"total": 100, "per_class": 10}, "either"),
    ({"total": 100, "val_fraction": 1.0}, "val_fraction"),
])
def test_bad_budgets_are_usage_errors(labels, kwargs, message):
    with pytest.raises(UsageError, match=message):
        select_budget(labels, 10, seed=0, **kwargs)


def test_short_class_names_the_largest_possible_budget():
    labels = torch.cat([torch.zeros(50, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    with pytest.raises(UsageError, match="class 1 has only 10 training images .* at most 20 labels"):
        select_budget(labels, 2, seed=0, total=30)


def test_a_per_class_budget_too_large_is_answered_in_its_own_units(labels):
    with pytest.raises(UsageError, match=r"labels_per_class 300 needs 3000 images \(10 classes\), more than the "
                                         r"training split \(1000 images\); use at most \d+ labels per class"):
        select_budget(labels, 10, seed=0, per_class=300)
