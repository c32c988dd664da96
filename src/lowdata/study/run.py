"""Run a study's cells: each exactly once, resumable, and safe with several workers on one directory.

A worker claims a cell by creating `cells/<id>.claim` with O_EXCL (atomic on local and NFS-v3+ file
systems) and touches it while it trains. A claim is taken over when its worker is gone: on the same host when
its process no longer exists, elsewhere when it has not been touched for `claim_timeout` seconds.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lowdata import console, stopping
from lowdata.cores import process_alive
from lowdata.errors import Failed
from lowdata.rundir import checkpoint_dir, is_finished, read_summary
from lowdata.study.plan import Cell, Plan, Stage

Unit = Cell | Stage  # what a worker claims and runs: a cell of the grid or a stage cells share

HEARTBEAT_S = 20.0
POLL_S = 5.0


def cell_dir(out_dir: Path, unit: Unit) -> Path:
    return out_dir / unit.folder / unit.id


def is_done(out_dir: Path, unit: Unit) -> bool:
    return is_finished(cell_dir(out_dir, unit))


def is_ready(out_dir: Path, unit: Unit) -> bool:
    """Every run it takes (teacher, pretrained encoder) has finished."""
    return all(is_finished(out_dir / need) for need in unit.needs.values())


def run_cells(plan: Plan, out_dir: Path, claim_timeout: float = 900.0, max_cells: int | None = None) -> int:
    """Work through the plan until every cell is done (waiting on cells other workers hold). Returns the
    number of cells this process trained. `max_cells` stops after that many (for tests and short slots)."""
    from lowdata.ledger import Ledger

    for folder in ("cells", "stages"):  # each cell's run proves its own files; the claims are made O_EXCL
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
        Ledger(out_dir).add_folder(folder)
    with console.quiet():  # the runs' notes once per kind for the whole study, no epoch lines
        return claim_and_run(plan, out_dir, claim_timeout, max_cells)


def claim_and_run(plan: Plan, out_dir: Path, claim_timeout: float, max_cells: int | None) -> int:
    worker = f"{socket.gethostname()}:{os.getpid()}"
    trained, seconds = 0, 0.0
    units: list[Unit] = [*plan.stages, *plan.cells]  # stages first: cells wait for them
    while True:
        pending = [unit for unit in units if not is_done(out_dir, unit)]
        if not pending or (max_cells is not None and trained >= max_cells):
            return trained
        ready = [unit for unit in pending if is_ready(out_dir, unit)]
        claimed = next((unit for unit in ready if try_claim(out_dir, unit, worker, claim_timeout)), None)
        if claimed is None:
            time.sleep(POLL_S)  # every runnable unit is held by a live worker, or waits for one that is
            continue
        started = time.perf_counter()
        print(f"study: {claimed.id} started", file=sys.stderr, flush=True)
        try:
            with heartbeat(claim_path(out_dir, claimed)):
                log_event(out_dir, claimed, worker, "start")
                run_cell(claimed, out_dir)
                log_event(out_dir, claimed, worker, "done")
        finally:  # done, failed or stopped: released, so that this process (the API) or another may take it up
            claim_path(out_dir, claimed).unlink(missing_ok=True)
        trained += 1
        took = time.perf_counter() - started
        seconds += took
        done = len(units) - len(pending) + 1
        left = (len(pending) - 1) * seconds / trained
        what = "cells and shared stages" if plan.stages else "cells"
        print(f"study: {claimed.id} done in {format_duration(took)}{outcome(cell_dir(out_dir, claimed))}; "
              f"{done}/{len(units)} {what} done, about {format_duration(left)} left (this worker's pace)",
              file=sys.stderr, flush=True)


def outcome(run_dir: Path) -> str:
    """A finished run's key figures, for its line in the study's log: test and training accuracy (k-NN
    accuracy for a pretraining)."""
    summary = read_summary(run_dir) or {}
    shown = [f"{label} {summary[key]:.1%}" for key, label in (("test_acc", "test"), ("train_acc", "train"),
                                                               ("knn_acc", "k-NN"))
             if isinstance(summary.get(key), float)]
    return f" ({', '.join(shown)})" if shown else ""


def run_jobs(plan: Plan, out_dir: Path, jobs: int, claim_timeout: float = 900.0) -> int:
    """`jobs` workers on this host from one command: this process and jobs - 1 `lowdata study --worker` children,
    each with its share of the cores (cores / jobs threads). Returns the cells this process trained."""
    import subprocess

    from lowdata.cores import WORKERS_ENV

    check_jobs(jobs)
    before = os.environ.get(WORKERS_ENV)
    os.environ[WORKERS_ENV] = str(jobs)  # counted before the others have registered; the children inherit it
    command = [sys.executable, "-m", "lowdata", "study", "--out", str(out_dir), "--worker", "--no-report",
               "--claim-timeout", str(claim_timeout)]
    children: list[subprocess.Popen] = []

    def forward(signum: int) -> None:  # a scheduler's SIGTERM reaches this process only; Ctrl-C reaches them all
        if signum == signal.SIGTERM:
            for child in children:
                child.send_signal(signum)

    try:
        with stopping.forwarding(forward):
            children += [subprocess.Popen(command) for _ in range(jobs - 1)]
            try:
                trained = run_cells(plan, out_dir, claim_timeout=claim_timeout)
            finally:
                codes = [child.wait() for child in children]
    finally:
        if before is None:
            os.environ.pop(WORKERS_ENV, None)
        else:
            os.environ[WORKERS_ENV] = before
    failed = [code for code in codes if code]
    if failed:
        raise Failed(f"{len(failed)} of {jobs - 1} study workers exited with status {', '.join(map(str, failed))} "
                     "(their messages are above); the cells they held are taken over when you rerun the command")
    return trained


def check_jobs(jobs: int) -> None:
    from lowdata.cores import usable_cores
    from lowdata.errors import UsageError

    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if jobs > usable_cores():
        raise UsageError(f"--jobs {jobs} is more workers than this host's {usable_cores()} usable cores (each "
                         f"needs one); use --jobs {usable_cores()} or fewer, or --backend ray for more machines")


def run_cell(unit: Unit, out_dir: Path) -> None:
    from lowdata.config import PretrainConfig, TrainConfig, given_values
    from lowdata.objectives import build_config as build
    from lowdata.study.recipes import LINK_SETTINGS

    target = cell_dir(out_dir, unit)
    # a need fills a setting, e.g. teacher or guidance.guide (a section's key)
    needs = given_values(overrides={LINK_SETTINGS.get(key, key): str(out_dir / need)
                                    for key, need in unit.needs.items()})
    settings = {**unit.settings, **{key: {**unit.settings.get(key, {}), **value} if isinstance(value, dict) else value
                                    for key, value in needs.items()}, "out": str(target)}
    resume = checkpoint_dir(target) is not None  # an interrupted run continues from its epoch
    if isinstance(unit, Stage) and unit.kind == "pretrain":
        from lowdata.runs.pretrain import pretrain

        pretrain(build(PretrainConfig, settings), resume=resume)
    else:
        from lowdata.runs.rounds import train

        train(build(TrainConfig, settings), resume=resume)


def claim_path(out_dir: Path, unit: Unit) -> Path:
    return out_dir / unit.folder / f"{unit.id}.claim"


def try_claim(out_dir: Path, cell: Cell, worker: str, claim_timeout: float) -> bool:
    path = claim_path(out_dir, cell)
    if path.exists() and claim_is_stale(path, claim_timeout):
        grave = path.with_name(f"{path.name}.stale-{worker.replace(':', '-')}")
        try:
            os.rename(path, grave)  # only one of several workers can move it away
        except FileNotFoundError:
            return False
        grave.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump({"worker": worker, "host": socket.gethostname(), "pid": os.getpid()}, handle)
    if is_done(out_dir, cell):  # finished between our look and our claim
        path.unlink(missing_ok=True)
        return False
    return True


def claim_is_stale(path: Path, claim_timeout: float) -> bool:
    """A claim is stale when its worker is gone: on this host when its process is, elsewhere when it has not been
    touched for `claim_timeout`. A claim that names no worker (empty or unparsable: its writer died between
    creating and writing it, or it was damaged) is stale once no heartbeat has touched it for three beats."""
    try:
        text = path.read_text()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # just released: look again later
    try:
        owner = json.loads(text)
        if not isinstance(owner, dict) or "pid" not in owner:
            raise ValueError("no owner")
    except ValueError:  # JSONDecodeError included; written within microseconds of its creation by a live worker
        return age > min(claim_timeout, 3 * HEARTBEAT_S)
    if owner.get("host") == socket.gethostname() and not process_alive(owner.get("pid", -1)):
        return True
    return age > claim_timeout


@contextmanager
def heartbeat(path: Path) -> Iterator[None]:
    """Touch the claim every HEARTBEAT_S seconds while the cell trains."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(path)
            except FileNotFoundError:
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def log_event(out_dir: Path, cell: Cell, worker: str, event: str) -> None:
    from lowdata.ledger import Ledger

    # appended under the folder's lock: whole lines, each proven, even with several workers
    Ledger(out_dir).append_text("events.jsonl", json.dumps({"cell": cell.id, "worker": worker, "event": event,
                                                            "time": round(time.time(), 1)}) + "\n")


def format_duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min {int(seconds % 60):02d} s"
