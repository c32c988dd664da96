"""Self-training rounds (Noisy Student, Xie et al. 2020): the student of round k teaches round k + 1.

`lowdata train --teacher T --pool all --rounds 3 --out OUT` trains round 1 taught by T in OUT/rounds/round-1,
round 2 taught by round 1 in OUT/rounds/round-2, and the last round in OUT itself, so OUT is an ordinary run
directory (evaluate it, teach with it, fine-tune from it). Each round is an ordinary run: finished rounds are
never redone, and `--resume` continues the round that was interrupted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowdata.config import TrainConfig, load_yaml, save_yaml
from lowdata.errors import UsageError

PLAN = "self-training.yaml"  # the settings the rounds were started with, in OUT/rounds


def train(config: TrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
          **settings: Any) -> dict[str, Any] | None:
    """`lowdata train`: the rounds when `rounds` > 1 (or when resuming such a run), else one ordinary run; the
    config is built once, here."""
    from lowdata.runs.skeleton import execute, settings_config
    from lowdata.runs.train import default_out, train_kind

    wanted = settings_config(TrainConfig, config, settings)
    rounds = self_training(wanted, resume, stop_after_epoch)
    if rounds is not None:
        return rounds.summary
    return execute(train_kind, TrainConfig, wanted, {}, resume, stop_after_epoch, default_out, "a training run",
                   explicit=set(settings))


@dataclass
class Rounds:
    summary: dict[str, Any] | None  # the last round's, with every round's test accuracy; None when stopped early


def self_training(wanted: TrainConfig, resume: bool, stop_after_epoch: int | None) -> Rounds | None:
    """Run the rounds when `rounds` > 1 (or when resuming such a run); None for an ordinary run."""
    from lowdata.objectives import build_config
    from lowdata.runs.train import default_out

    out = Path(wanted.out or default_out(wanted))
    plan_file = out / "rounds" / PLAN
    if resume and plan_file.is_file():
        wanted = build_config(TrainConfig, {**load_yaml(plan_file), "out": str(out)})
    elif resume or wanted.rounds == 1:
        return None  # an ordinary run, or resuming one
    else:
        from lowdata.rundir import checkpoint_dir

        if wanted.rounds < 1:
            raise UsageError(f"rounds must be 1 or more, got {wanted.rounds}")
        if not wanted.teacher:
            raise UsageError("self-training starts from a teacher: give --teacher RUN_DIR for round 1")
        if (out / "rounds").exists() or checkpoint_dir(out) is not None:
            raise UsageError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        from lowdata.io import refuse_foreign_files

        refuse_foreign_files(out, "--out")
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        save_yaml(wanted.replace(out=None), plan_file)
    return Rounds(run_rounds(wanted, out, stop_after_epoch))


def run_rounds(config: TrainConfig, out: Path, stop_after_epoch: int | None) -> dict[str, Any] | None:
    from lowdata.io import atomic_write_json
    from lowdata.rundir import SUMMARY, checkpoint_dir, is_finished, read_summary
    from lowdata.runs.skeleton import execute
    from lowdata.runs.train import default_out, train_kind

    teacher, accuracies = config.teacher, []
    for index in range(1, config.rounds + 1):
        run_dir = out if index == config.rounds else out / "rounds" / f"round-{index}"
        if not is_finished(run_dir):
            round_config = config.replace(out=str(run_dir), teacher=teacher)
            summary = execute(train_kind, TrainConfig, round_config, {}, checkpoint_dir(run_dir) is not None,
                              stop_after_epoch, default_out, f"self-training round {index}", explicit=set())
            if summary is None:
                return None
        summary = read_summary(run_dir)
        accuracies.append(summary["test_acc"])
        teacher = str(run_dir)
    summary = {**summary, "round_test_acc": accuracies}
    atomic_write_json(out / SUMMARY, summary)
    return summary
