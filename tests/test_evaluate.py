import pytest
import torch

from lowdata.evaluate import knn_accuracy


def test_knn_accuracy_on_known_neighbours():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    queries, truth = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.2, 1.0]]), torch.tensor([0, 1, 0])
    assert knn_accuracy(bank, labels, queries, truth, k=2) == pytest.approx(2 / 3)
