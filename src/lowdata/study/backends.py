"""Where a study's cells run: local workers on this host (study/run.py) or Ray tasks (study/ray_backend.py),
each an object built from its own settings, with one method: run the plan's unfinished units."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lowdata.errors import UsageError, shown
from lowdata.study.plan import Plan


class Backend(Protocol):
    def run(self, plan: Plan, out_dir: Path) -> None: ...


@dataclass(frozen=True)
class LocalBackend:
    """`jobs` workers on this host (this process and jobs - 1 children), claiming cells through files, so
    more workers (other shells, other hosts sharing the folder) may join."""
    jobs: int = 1
    claim_timeout: float = 900.0  # seconds after which another host's silent claim is taken over
    max_cells: int | None = None  # stop after this many cells (tests, short slots)

    def __post_init__(self) -> None:
        from lowdata.study.run import check_jobs

        check_jobs(self.jobs)

    def run(self, plan: Plan, out_dir: Path) -> None:
        from lowdata.study.run import run_cells, run_jobs

        if self.jobs > 1:
            run_jobs(plan, out_dir, self.jobs, self.claim_timeout)
        else:
            run_cells(plan, out_dir, claim_timeout=self.claim_timeout, max_cells=self.max_cells)


@dataclass(frozen=True)
class RayBackend:
    """Each stage and cell a Ray task with its CPU/GPU request, on the cluster at `address` (else a local Ray
    instance), retried from its checkpoint when its worker dies."""
    address: str | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0
    retries: int = 2
    max_cells: int | None = None

    def run(self, plan: Plan, out_dir: Path) -> None:
        from lowdata.study.ray_backend import run_units_ray

        run_units_ray(plan, out_dir, self.address, self.cpus_per_cell, self.gpus_per_cell, self.retries,
                      max_units=self.max_cells)


BACKENDS = {"local": LocalBackend, "ray": RayBackend}


def make_backend(name: str = "local", **settings: Any) -> Backend:
    """The backend `name`, from the settings that are its own (the other backend's are ignored, as the CLI
    passes every option)."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {shown(name)}; choose local or ray")
    known = {field.name for cls in BACKENDS.values() for field in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"run_study() got unexpected options: {', '.join(unknown)}")
    cls = BACKENDS[name]
    return cls(**{key: value for key, value in settings.items() if key in {f.name for f in dataclasses.fields(cls)}})
