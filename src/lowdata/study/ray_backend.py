"""The Ray backend: each stage and cell of a study is a Ray task with its own resource request, and a cell that
takes another run (a teacher, a pretrained encoder) receives that run's task as an argument, so Ray starts it
only once the run is finished — no polling, no claim files. Results land in the study directory exactly as
with the local workers (run.py), so either backend resumes the other's study: a finished unit is never
submitted, and an interrupted one continues from its checkpoint.

The study directory must be storage every node sees (NFS, a cluster file system): each task first checks
that it can write there and fails at once, naming the node, if it cannot.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from lowdata import console
from lowdata.errors import UsageError
from lowdata.study.plan import Plan
from lowdata.study.run import Unit, cell_dir, format_duration, is_done, log_event, outcome, run_cell


def run_units_ray(plan: Plan, out_dir: Path, address: str | None = None, cpus_per_cell: float = 1.0,
                  gpus_per_cell: float = 0.0, retries: int = 2, max_units: int | None = None) -> int:
    """Run every unfinished stage and cell as a Ray task (on the cluster at `address`, else on a local Ray
    instance sized to this machine); returns the number of units run. A task whose worker dies (a killed
    process, a lost node) is retried up to `retries` times and resumes from its last checkpoint. `max_units`
    runs only the first that many unfinished units (stages first, so they never wait on one left out)."""
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray: pip install 'lowdata[ray]'") from None
    if cpus_per_cell <= 0 or gpus_per_cell < 0 or retries < 0:
        raise UsageError(f"--cpus-per-cell must be positive and --gpus-per-cell and --retries at least 0; got "
                         f"{cpus_per_cell}, {gpus_per_cell}, {retries}")
    out_dir = out_dir.resolve()
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    (out_dir / "stages").mkdir(exist_ok=True)
    started_here = not ray.is_initialized()
    if started_here:
        # the driver's own logs stay quiet: the study prints one line per finished unit
        ray.init(address=address, log_to_driver=True, include_dashboard=False, configure_logging=False)
    try:
        units: list[Unit] = [*plan.stages, *plan.cells]
        pending = {f"{unit.folder}/{unit.id}": unit for unit in units if not is_done(out_dir, unit)}
        pending = dict(list(pending.items())[:max_units])
        task = ray.remote(run_unit_task).options(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell,
                                                 max_retries=retries, retry_exceptions=False)
        refs: dict[str, Any] = {}
        for key, unit in pending.items():  # stages come first, and a plan's needs point backwards
            waits_for = [refs[need] for need in unit.needs.values() if need in refs]
            refs[key] = task.remote(unit, str(out_dir), cpus_per_cell, *waits_for)
        return collect(ray, refs, len(units), len(units) - len(pending))
    finally:
        if started_here:
            ray.shutdown()


def collect(ray, refs: dict[str, Any], total: int, done: int) -> int:
    """Wait for the tasks, one progress line per finished unit; a failed unit stops the study with its error."""
    from ray.exceptions import RayTaskError, WorkerCrashedError

    waiting, names, started = list(refs.values()), {ref: key for key, ref in refs.items()}, time.perf_counter()
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        try:
            ray.get(ready[0])
        except RayTaskError as err:
            cause = err.cause if isinstance(err.cause, Exception) else err
            if isinstance(cause, UsageError):
                raise UsageError(str(cause)) from None
            raise RuntimeError(f"study unit {names[ready[0]]} failed on Ray: {cause}") from cause
        except WorkerCrashedError as err:
            raise RuntimeError(f"study unit {names[ready[0]]} lost its worker more often than --retries allows: "
                               f"{err}") from None
        done += 1
        print(f"study: {done}/{total} done on Ray ({names[ready[0]]}; {time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    return len(refs)


def run_unit_task(unit: Unit, out_dir: str, cpus: float, *finished_needs: Any) -> str:
    """One unit, inside a Ray worker (`finished_needs` only orders it after the runs it takes), with the
    threads of the `cpus` Ray granted it."""
    from lowdata.cores import WORKERS_ENV, usable_cores

    os.environ[WORKERS_ENV] = str(max(1, int(usable_cores() // cpus)))
    out = Path(out_dir)
    check_writable(out)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if is_done(out, unit):  # finished by another backend since it was submitted
        return worker
    log_event(out, unit, worker, "start")
    print(f"study: {unit.id} started", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with console.quiet():  # as a local worker: the run's notes once per kind (per task), no epoch lines
        run_cell(unit, out)
    print(f"study: {unit.id} done in {format_duration(time.perf_counter() - started)}{outcome(cell_dir(out, unit))}",
          file=sys.stderr, flush=True)
    log_event(out, unit, worker, "done")
    return worker


def check_writable(out_dir: Path) -> None:
    from lowdata.files import make_temp_file

    try:  # a new file (O_EXCL, a fresh name): nothing already there is written or removed
        probe = make_temp_file(out_dir, prefix=f".probe-{socket.gethostname()}-{os.getpid()}-")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"node {socket.gethostname()} cannot write the study directory {out_dir} ({err.strerror}); "
                         "with --backend ray it must be on storage every node sees (NFS, a cluster file "
                         "system)") from None
