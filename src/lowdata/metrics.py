"""Accuracy and loss of a classifier on a held-out split."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalize: nn.Module,
             device: torch.device, autocast: Callable[[], AbstractContextManager], batch_size: int = 512
             ) -> dict[str, float]:
    """Top-1 accuracy, mean cross-entropy, top-5 accuracy (with more than 5 classes: with 5 it is always 1) and
    the confusion matrix (rows: true class, columns: predicted) over uint8 `images`."""
    was_training = model.training
    model.eval()
    correct, top5, loss_sum, confusion = 0, 0, 0.0, None
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device))
        y = labels[start:start + batch_size].to(device)
        with autocast():
            logits = model(x)
        classes = logits.shape[1]
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        predicted = logits.argmax(dim=1)
        correct += (predicted == y).sum().item()
        top5 += (logits.topk(min(5, classes), dim=1).indices == y[:, None]).any(dim=1).sum().item()
        counts = torch.bincount(y * classes + predicted, minlength=classes * classes).reshape(classes, classes)
        confusion = counts.cpu() if confusion is None else confusion + counts.cpu()
    model.train(was_training)
    n = max(len(images), 1)
    result = {"acc": correct / n, "loss": loss_sum / n, "confusion": [] if confusion is None else confusion.tolist()}
    if confusion is not None and confusion.shape[0] > 5:
        result["top5_acc"] = top5 / n
    return result


def per_class_accuracy(confusion: list[list[int]], classes) -> dict[str, float | None]:
    """Each class's accuracy (its recall) from a confusion matrix; None for a class with no test image."""
    return {name: (row[i] / sum(row) if sum(row) else None) for i, (name, row) in enumerate(zip(classes, confusion))}


def confusion_png(confusion: list[list[int]], classes) -> bytes:
    """The confusion matrix as a PNG (counts, rows true, columns predicted)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    size = max(4.0, 0.45 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(size, size), dpi=100)
    axis.imshow(confusion, cmap="Blues")
    axis.set_xticks(range(len(classes)), classes, rotation=90)
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(classes) <= 20:
        for i, row in enumerate(confusion):
            for j, count in enumerate(row):
                axis.text(j, i, str(count), ha="center", va="center", fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def classification_evaluator(eval_sets: dict[str, tuple[torch.Tensor, torch.Tensor]], normalize: nn.Module,
                             device: torch.device, autocast: Callable[[], AbstractContextManager]):
    """model -> {"test_acc", "test_loss", ...} over every named split."""
    def run(model: nn.Module) -> dict[str, float]:
        out = {}
        for name, (images, labels) in eval_sets.items():
            result = evaluate(model, images, labels, normalize, device, autocast)
            out.update({f"{name}_{key}": value for key, value in result.items()})
        return out
    return run


@torch.inference_mode()
def features(model: nn.Module, images: torch.Tensor, normalize: nn.Module, device: torch.device,
             autocast: Callable[[], AbstractContextManager], batch_size: int = 512) -> torch.Tensor:
    """Pooled, pre-logit features (timm's `forward_head(pre_logits=True)`) of uint8 images, in float32."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        with autocast():
            tokens = model.forward_features(normalize(images[start:start + batch_size].to(device)))
            out.append(model.forward_head(tokens, pre_logits=True).float())
    model.train(was_training)
    return torch.cat(out)


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Weighted k-nearest-neighbour accuracy on cosine similarity (the monitor of InstDisc and DINO): each
    of the k neighbours votes for its class with weight exp(similarity / temperature)."""
    train_features = F.normalize(train_features, dim=1)
    test_features = F.normalize(test_features, dim=1)
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, len(train_features))
    correct = 0
    for start in range(0, len(test_features), chunk):
        similarity = test_features[start:start + chunk] @ train_features.T
        top, index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(top), classes, device=top.device)
        votes.scatter_add_(1, train_labels[index], (top / temperature).exp())
        correct += (votes.argmax(1) == test_labels[start:start + chunk]).sum().item()
    return correct / max(len(test_features), 1)


def knn_evaluator(memory: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                  normalize: nn.Module, device: torch.device, autocast: Callable[[], AbstractContextManager],
                  k: int = 20):
    """encoder -> {"knn_acc"}: labelled `memory` images vote for the `test` images' classes. The labels are
    read here only, to monitor a self-supervised run; its training never sees them."""
    def run(encoder: nn.Module) -> dict[str, float]:
        bank = features(encoder, memory[0], normalize, device, autocast)
        queries = features(encoder, test[0], normalize, device, autocast)
        return {"knn_acc": knn_accuracy(bank, memory[1].to(device), queries, test[1].to(device), k)}
    return run
