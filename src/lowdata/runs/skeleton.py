"""The skeleton every kind of run shares: settings resolved, the run directory opened (or resumed), the
process, device, precision and threads chosen, random streams seeded, the resolved config written, and a
summary with the same provenance fields for every kind. A kind of run (runs/train.py, runs/pretrain.py)
supplies only what differs: its data, model and objective, and what its summary adds.
"""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from lowdata import console
from lowdata.config import RunConfig, field_names, save_yaml, to_dict
from lowdata.errors import UsageError, shown


@dataclass
class Run:
    """One run in progress: its resolved config and where and how it runs."""
    config: Any  # a RunConfig subclass, resolved
    run_dir: Path
    resume: bool
    process: Any  # training.distributed.Process
    device: torch.device
    precision: Any  # device.Precision
    cores: Any  # cores.CoreShare
    started: float = field(default_factory=time.time)
    # the code the run started with (a commit made while it trained is not the code it ran)
    commit: str | None = field(default_factory=lambda: git_commit())

    @property
    def autocast(self) -> Callable[[], Any]:
        return self.precision.autocast(self.device)

    def generators(self, *names: str) -> dict[str, torch.Generator]:
        from lowdata.streams import make_generators

        return make_generators(self.config.seed, self.device, ("order", "augment", *names))

    def write_config(self, notes: list[str]) -> None:
        """The resolved config beside the run (rank 0), and the run's notes on stderr (precision first)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.process.is_main:
            save_yaml(self.config, self.run_dir / "config.yaml")
            for note in [f"precision: {self.precision.name} ({self.precision.reason})", *notes]:
                console.say(note, kind=note.split(":")[0])  # in a study: each kind once

    def fit(self, objective, data, evaluator, policy, ema, stop_after_epoch: int | None,
            **loop_changes: Any) -> dict[str, Any] | None:
        """The one training loop, with everything the skeleton chose; the random streams are the loop's and
        those the objective names."""
        from lowdata import stopping
        from lowdata.training.context import RunContext
        from lowdata.training.loop import fit

        ctx = RunContext(self.device, self.autocast, self.precision.grad_scaler(self.device), self.process,
                         self.cores, self.generators(*objective.streams), self.run_dir, self.resume,
                         to_dict(self.config), stop_after_epoch)
        with stopping.graceful():  # Ctrl-C or SIGTERM: the loop checkpoints at its next step and stops
            return fit(objective, data, self.config.loop_settings(**loop_changes), policy.to(self.device),
                       evaluator, ema, ctx)

    def finish(self, result: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """The summary: the kind's `fields`, then what every run records; written last, atomically (rank 0)."""
        from lowdata.io import atomic_write_json
        from lowdata.rundir import SUMMARY

        summary = {**fields, **provenance(self, result)}
        if self.process.is_main:
            atomic_write_json(self.run_dir / SUMMARY, summary)
        return summary


def execute(kind: Callable[[Run, int | None], dict[str, Any] | None], cls: type, config: RunConfig | None,
            settings: dict[str, Any], resume: bool, stop_after_epoch: int | None,
            default_out: Callable[[Any], str], what: str, explicit: set[str] | None = None
            ) -> dict[str, Any] | None:
    """Resolve the settings, open the run, and hand it to `kind` (which trains and returns its summary). A
    caller that built the config already (self-training rounds) passes it with the keys it was `explicit`ly
    given, and it is used as built."""
    from lowdata.cores import CoreShare
    from lowdata.device import pick_device, pick_precision
    from lowdata.training.distributed import current_process, process_device

    from lowdata.training.trackers import parse_trackers

    if explicit is None:
        config, explicit = settings_config(cls, config, settings), set(settings)
    parse_trackers(config.trackers)  # an unknown tracker or a missing client: said before anything loads
    # registered before the data load, so that workers started together count each other (cores.py)
    with CoreShare(config.threads) as cores:
        config, run_dir = open_run(cls, config, resume, explicit, default_out, what)
        finished = finished_summary(run_dir, resume)
        if finished is not None:
            return finished
        process = current_process()  # one process, or this one's place under torchrun
        with run_lock(run_dir, process.is_main):
            device = process_device(process, pick_device(config.device))
            # device and precision stay saved as asked ("auto" re-decides where a resumed run lands: bf16 is fast
            # on one CPU and 10-85x slower on another); what was chosen is in the summary
            run = Run(config, run_dir, resume, process, device, pick_precision(config.precision, device), cores)
            return kind(run, stop_after_epoch)


def settings_config(cls: type, config: RunConfig | None, settings: dict[str, Any]):
    """`config` with `settings` applied, checked: the one place a run's config is built from what was given."""
    from lowdata.objectives import build_config

    if isinstance(config, cls) and not settings:
        return config
    return build_config(cls, {**(to_dict(config) if config else {}), **settings})


LOCK = ".lowdata.lock"


@contextmanager
def run_lock(run_dir: Path, is_main: bool) -> Iterator[None]:
    """One process trains in a run folder at a time: a second `lowdata train --out SAME` is refused in one line.
    An advisory lock (flock) that the kernel releases when its holder dies, so a killed run leaves none behind."""
    import fcntl
    import os
    import re

    if not is_main:  # torchrun's other ranks share rank 0's run
        yield
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UsageError(f"{run_dir} is in use by another lowdata process ({holder}); wait for it to finish, "
                             "or choose another --out") from None
        handle.seek(0)
        if not re.fullmatch(r"(pid \d+\n)?", handle.read(64)):  # truncated only when it is the lock lowdata writes
            raise UsageError(f"{run_dir / LOCK} is not a lock file lowdata wrote; nothing was written: move it away "
                             "or choose another --out")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()
        if created and [p.name for p in run_dir.iterdir()] == [LOCK]:  # refused before writing: nothing half-made
            (run_dir / LOCK).unlink()
            run_dir.rmdir()


def finished_summary(run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """`--resume` on a finished run has nothing to do: say so and hand back its summary."""
    from lowdata.rundir import SUMMARY, is_finished, read_summary, summary_problem

    if resume and (run_dir / SUMMARY).is_file() and not is_finished(run_dir):
        print(f"lowdata: {run_dir / SUMMARY} {summary_problem(run_dir)}; finishing the run again", file=sys.stderr)
    if not (resume and is_finished(run_dir)):
        return None
    print(f"lowdata: {run_dir} is finished (its summary.json is written); nothing to resume", file=sys.stderr)
    return read_summary(run_dir)


def open_run(cls: type, config: RunConfig, resume: bool, explicit: set[str], default_out: Callable[[Any], str],
             what: str) -> tuple[Any, Path]:
    """The run directory; with `resume`, the saved config (a setting given explicitly must agree with it)."""
    from lowdata.rundir import checkpoint_dir, read_config

    run_dir = Path(config.out or default_out(config))
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder; choose a folder for the run")
    if resume:
        from lowdata.ledger import Ledger

        config = resumed_config(cls, read_config(run_dir), config, explicit)
        refuse_config_edits(cls, config, run_dir)
        refuse_changed_checkpoint(run_dir)
        Ledger(run_dir).refuse_unproven(RUN_ENTRIES, "--resume: --out")
    elif checkpoint_dir(run_dir) is not None:
        raise UsageError(f"{run_dir} already holds {what}; pass --resume to continue it, or choose another --out")
    else:
        from lowdata.io import refuse_foreign_files

        refuse_foreign_files(run_dir, "--out")
    return config.replace(out=str(run_dir)), run_dir


def refuse_changed_checkpoint(run_dir: Path) -> None:
    """A checkpoint file whose bytes are not those lowdata wrote (damaged on disk or edited) is named before any
    work: a resume would read it, and rotate it away at its next checkpoint."""
    from lowdata.ledger import LEDGER, Ledger
    from lowdata.rundir import CHECKPOINT, DAMAGED, OLD

    for name in (CHECKPOINT, OLD):
        folder = run_dir / name
        if folder.is_dir() and not Ledger(run_dir).proves(name):
            if not (folder / LEDGER).is_file():
                raise UsageError(f"{folder} has no ledger of what lowdata wrote there; if lowdata made this run "
                                 f"before it kept ledgers, `lowdata adopt {run_dir}` records it; else {DAMAGED}")
            changed = Ledger(folder).unproven() or [LEDGER]
            raise UsageError(f"{folder / changed[0]} changed since lowdata wrote it (its bytes are not those its "
                             f"ledger records); {DAMAGED}")


# what a resumed run may replace, append to or remove in its folder: each must be proven lowdata's first
# (checkpoint/ and .checkpoint.old/ by refuse_changed_checkpoint, with a message of their own)
RUN_ENTRIES = ("config.yaml", "metrics.jsonl", "summary.json", "model",
               "confusion.json", "confusion.png", "trackers.json", "knn_at_init.json", "reconstructions.png",
               "tensorboard")


# where and how fast a run computes, not what it computes: given explicitly on --resume, they replace the saved
# ones (a run started on a GPU can finish on a CPU)
PLACEMENT = ("device", "precision", "threads")


def resumed_config(cls: type, saved: dict[str, Any], given: RunConfig, explicit: set[str]):
    """The saved config wins; a setting the caller gave explicitly must agree with it, except placement."""
    from lowdata.objectives import build_config

    saved_config = build_config(cls, saved)
    placement = {key: getattr(given, key) for key in PLACEMENT if key in explicit}
    clashes = [f"{key}={shown(getattr(given, key))} (run has {shown(getattr(saved_config, key))})"
               for key in sorted(explicit)
               if key in field_names(cls) and key not in ("out", *PLACEMENT)
               and not agrees(getattr(given, key), getattr(saved_config, key))]
    clashes += [f"{name}.{key}={shown(value)} (run has {shown(saved_config.sections.get(name, {}).get(key))})"
                for name, values in sorted(given.sections.items()) for key, value in values.items()
                if not agrees(value, saved_config.sections.get(name, {}).get(key))]
    if clashes:
        raise UsageError(f"--resume continues a run under its saved settings, but these differ: {', '.join(clashes)}; "
                         "drop them or start a new run with another --out")
    return saved_config.replace(**placement)


def agrees(given: Any, saved: Any) -> bool:
    """A given setting agrees with the saved one; a mapping (model_args) agrees where each given key does, since
    the run may have added what it resolved from the data (a ViT preset's patch size)."""
    if isinstance(given, dict) and isinstance(saved, dict):
        return all(key in saved and agrees(value, saved[key]) for key, value in given.items())
    return given == saved


def refuse_config_edits(cls: type, saved_config: RunConfig, run_dir: Path) -> None:
    """RUN/config.yaml shows the run's settings; the checkpoint's copy is what a resume uses. A hand edit of
    config.yaml would be silently ignored, so it is refused by name instead."""
    import yaml

    from lowdata.settings_file import Refused, load_text

    shown_file = run_dir / "config.yaml"
    if not shown_file.is_file():
        return
    from lowdata.objectives import build_config

    try:
        edited = build_config(cls, load_text(shown_file.read_text()))
    except (yaml.YAMLError, Refused, UsageError, UnicodeDecodeError, TypeError, AttributeError):
        raise UsageError(f"{shown_file} was edited and no longer reads as the run's settings; a resumed run continues "
                         "under its checkpoint's settings: restore the file, or start a new run with another "
                         "--out") from None
    changed = [f"{key}: {shown(getattr(saved_config, key))} -> {shown(getattr(edited, key))}"
               for key in [*field_names(cls), "sections"]
               if key not in ("out", *PLACEMENT) and getattr(edited, key) != getattr(saved_config, key)]
    if changed:
        raise UsageError(f"{shown_file} was edited since the run's checkpoint ({'; '.join(changed)}), but a resumed run "
                         "continues under its checkpoint's settings: undo the edit, or start a new run with "
                         "another --out")


def provenance(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """What every run's summary says about how it ran, whatever its kind."""
    import timm

    import lowdata

    return {
        "run_dir": str(run.run_dir),
        "train_seconds": round(result["train_seconds"], 2), "eval_seconds": round(result["eval_seconds"], 2),
        "checkpoint_seconds": round(result["checkpoint_seconds"], 2),
        "images_per_second": round(result["images_per_second"], 1),
        "wall_seconds_this_session": round(time.time() - run.started, 2), "device": str(run.device),
        "precision": run.precision.name, "precision_reason": run.precision.reason, "threads": result["threads"],
        "inference_precision": "fp32",  # lowdata predict, eval and the exports (runs/load.py): they agree
        "processes": run.process.world_size, "git_commit": run.commit, "lowdata": lowdata.__version__,
        "torch": torch.__version__, "timm": timm.__version__,
    }


def git_commit() -> str | None:
    """The checkout's HEAD, with `+changes` when its tracked files differ from it (the run's code is not that
    commit's alone); None outside a git checkout."""
    package = Path(__file__).parents[1]  # src/lowdata: the code a run runs
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True, timeout=5)
        if out.returncode != 0 or not out.stdout.strip():
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=package, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() + ("+changes" if dirty.returncode == 0 and dirty.stdout.strip() else "")
