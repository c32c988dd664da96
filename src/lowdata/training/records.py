"""What the loop keeps of each epoch: the training figures summed on the device, metrics.jsonl mirrored to
TensorBoard, the epoch's line on stderr, and timers for evaluation, checkpoints and the checkpoint clock."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch


class EpochTotals:
    """An epoch's training loss, accuracy against the unmixed labels and the objective's own figures, summed on
    the device: an .item() a step would wait for a GPU each step."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.logs: dict[str, torch.Tensor] = {}
        self.classified = False

    def add(self, out, labels: torch.Tensor, count: int) -> None:
        self.loss += out.loss.detach().float() * count
        for key, value in out.logs.items():
            self.logs[key] = self.logs.get(key, 0) + value.detach().float() * count
        if out.logits is not None:
            self.correct += (out.logits.argmax(dim=1) == labels).sum()
            self.classified = True

    def snapshot(self, seconds: float) -> dict[str, Any]:
        """The sums so far and the epoch's seconds, for a checkpoint taken inside the epoch."""
        return {"loss": self.loss.item(), "correct": self.correct.item(), "classified": self.classified,
                "logs": {key: value.item() for key, value in self.logs.items()}, "seconds": seconds}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.loss.fill_(snapshot["loss"])
        self.correct.fill_(snapshot["correct"])
        self.classified = snapshot["classified"]
        self.logs = {key: torch.tensor(value, device=self.loss.device) for key, value in snapshot["logs"].items()}

    def means(self, images: int) -> dict[str, float]:
        means = {"train_loss": self.loss.item() / images, **{k: v.item() / images for k, v in self.logs.items()}}
        if self.classified:
            means["train_acc"] = self.correct.item() / images
        return means


@contextmanager
def timed(totals: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        totals[key] += time.perf_counter() - started


class Clock:
    """Says when `seconds` have passed since it was last reset."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.since = seconds, time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.since >= self.seconds

    def reset(self) -> None:
        self.since = time.monotonic()


def epoch_line(metrics: dict[str, Any], epochs: int, trained_seconds: float | None = None) -> str:
    """One line per epoch, kept in logs (under nohup, in CI) as on a terminal; with the whole run's time left,
    at the mean pace of the epochs so far (`trained_seconds`: their training time, evaluations not counted)."""
    shown = [f"{key} {metrics[key]:.4g}" for key in ("train_loss", "train_acc", "test_acc", "val_acc", "knn_acc")
             if isinstance(metrics.get(key), float)]
    left = ""
    if trained_seconds is not None and metrics["epoch"] < epochs:
        left = f", about {trained_seconds / metrics['epoch'] * (epochs - metrics['epoch']) / 60:.1f} min left"
    return (f"lowdata: epoch {metrics['epoch']}/{epochs}: {', '.join(shown)}, "
            f"{metrics['images_per_second']:.0f} img/s, {metrics['epoch_seconds'] / 60:.1f} min{left}")


class MetricsLog:
    """`metrics.jsonl` (the source of truth, one line per epoch) mirrored to the trackers. On resume, lines from
    epochs after the checkpoint are dropped, since those epochs are trained again."""

    def __init__(self, run_dir: Path, after_epoch: int) -> None:
        from lowdata.io import atomic_write_text
        from lowdata.ledger import Ledger

        self.path, self.ledger = run_dir / "metrics.jsonl", Ledger(run_dir)
        if self.path.exists():
            self.ledger.refuse_unproven([self.path.name], "--out")  # before it is read: a user's file is not parsed
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["epoch"] <= after_epoch]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def append(self, record: dict[str, Any], trackers) -> None:
        scalars = {key: value for key, value in record.items() if isinstance(value, (int, float))}
        # a confusion matrix goes to the summary, not to every line
        self.ledger.append_text(self.path.name, json.dumps(scalars, sort_keys=True) + "\n")
        trackers.log(scalars, record["step"])  # training/trackers.py: grouped tags at the global step
