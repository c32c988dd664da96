import pytest
import torch

from lowdata.metrics import knn_accuracy


def test_knn_accuracy_on_known_neighbours():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    queries, truth = torch.tensor([[1.0, 0.05], [0.05, 1.0], [0.2, 1.0]]), torch.tensor([0, 1, 0])
    assert knn_accuracy(bank, labels, queries, truth, k=2) == pytest.approx(2 / 3)


def test_the_confusion_matrix_adds_up_to_top1_and_the_test_size(tmp_path):
    import json

    from lowdata import evaluate_run, train

    run = tmp_path / "run"
    summary = train(data="digits", labels=200, epochs=2, batch_size=32, out=str(run))
    confusion = json.loads((run / "confusion.json").read_text())["rows_true_columns_predicted"]
    total = sum(map(sum, confusion))
    assert total == 359 and len(confusion) == 10  # digits' 20 % test hold-out
    assert sum(confusion[i][i] for i in range(10)) / total == pytest.approx(summary["test_acc"])
    assert summary["test_top5_acc"] >= summary["test_acc"] and set(summary["per_class_acc"]) == set("0123456789")
    assert (run / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    evaluated = evaluate_run(run)
    assert evaluated["confusion"] == confusion and evaluated["per_class_acc"] == summary["per_class_acc"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert "test_confusion" not in metrics[-1] and "test_top5_acc" in metrics[-1]


def test_top5_is_reported_only_with_more_than_five_classes():
    from contextlib import nullcontext

    from torch import nn

    from lowdata.metrics import evaluate

    images = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
    for classes, reported in ((5, False), (6, True)):
        model = nn.Sequential(nn.Flatten(), nn.Linear(4, classes))
        result = evaluate(model, images, torch.arange(10) % classes, lambda x: x.float(), torch.device("cpu"),
                          nullcontext)
        assert ("top5_acc" in result) is reported
