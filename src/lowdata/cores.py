"""Share the host's cores among lowdata's training processes instead of inheriting PyTorch's default.

PyTorch starts one OpenMP thread per core in every process, and OpenMP threads spin while they wait. With
more busy threads than cores (two study workers, a study beside a test run, torchrun ranks on one host) each
small parallel region waits for a descheduled thread. Measured on 2 cores, two processes at once:

| per process              | ResNet-20 img/s, sum of both | ViT-tiny img/s, sum of both | one process alone |
|--------------------------|------------------------------|-----------------------------|-------------------|
| 2 threads (the default)  | 268                          | 78                          | 820 / 212         |
| 2 threads, wait PASSIVE  | 125                          | 231                         | 700 / 178         |
| 1 thread                 | 899                          | 234                         |                   |

So every training process registers itself in a per-user folder and runs with cores / (lowdata processes
training on this host, or torchrun's local ranks) threads. The count is chosen once per run and kept in its
checkpoint, because the thread count changes the floating-point sums (a ResNet-20 differed by 1e-4 after three
steps with 1 and 2 threads): a resumed run continues with the threads it started with, bit for bit, and a run
that starts while others train keeps its share until it ends (a study worker chooses again for every cell).
The OpenMP wait policy is left alone: PASSIVE cost a single process 15-20 % and did not save ResNet-20.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup (container) CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(cores, 1)


WORKERS_ENV = "LOWDATA_WORKERS"


def registry_dir() -> Path:
    return Path(os.environ.get("LOWDATA_PROCESSES", Path(tempfile.gettempdir()) / f"lowdata-{os.getuid()}"))


class CoreShare:
    """This process's threads for one run. A context manager: the process is registered inside it, and its
    thread count restored after it; `choose` sets the count: `fixed` (the `threads` setting), else `recorded`
    (what the run used before a resume), else its share of the usable cores at that moment."""

    def __init__(self, fixed: int | None = None, folder: Path | None = None) -> None:
        if fixed is not None and fixed < 1:
            from lowdata.errors import UsageError

            raise UsageError(f"threads must be at least 1, got {fixed}; leave it unset to share the cores")
        self.fixed, self.folder = fixed, folder or registry_dir()
        self.entry = self.folder / str(os.getpid())
        self.threads = self.before = 0

    def __enter__(self) -> "CoreShare":
        import torch

        self.before = torch.get_num_threads()
        try:  # registered even with fixed threads: the others count this process too
            self.folder.mkdir(parents=True, exist_ok=True)
            self.entry.write_text(process_start(os.getpid()) or "")
        except OSError:
            pass  # an unwritable temp folder: this process counts only itself
        return self

    def choose(self, recorded: int | None = None) -> int:
        import torch

        self.threads = self.fixed or recorded or self.share()
        torch.set_num_threads(self.threads)
        return self.threads

    def __exit__(self, *exc: object) -> None:
        import torch

        self.entry.unlink(missing_ok=True)
        torch.set_num_threads(self.before)

    def share(self) -> int:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun's processes on this host
        # workers planned on this host (`lowdata study --jobs N`, Ray's CPUs per cell), counted before they start
        planned = int(os.environ.get(WORKERS_ENV, "1"))
        return max(1, usable_cores() // max(local_ranks, planned, len(self.live_processes())))

    def live_processes(self) -> list[int]:
        """Registered processes still running (this one included); entries of dead ones are removed, and a
        stopped one (Ctrl-Z, SIGSTOP) is not counted while it stays stopped: it uses no core."""
        live = {os.getpid()}
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return list(live)
        for entry in entries:
            if not entry.name.isdigit():
                continue
            if process_alive(int(entry.name)) and same_process(entry, int(entry.name)):
                if not process_stopped(int(entry.name)):
                    live.add(int(entry.name))
            else:
                entry.unlink(missing_ok=True)
        return sorted(live)


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (field 3), after the command name, which may hold spaces; None
    where /proc cannot say (not Linux, a process gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (Linux), or None where /proc cannot say."""
    fields = stat_fields(pid)
    return None if fields is None else fields[19]  # field 22


def process_stopped(pid: int) -> bool:
    """Whether `pid` is stopped (state T or t in /proc: Ctrl-Z, SIGSTOP, a debugger); False where /proc cannot say."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] in ("T", "t")


def same_process(entry: Path, pid: int) -> bool:
    """Whether the process registered in `entry` is still the one with this pid: a pid the kernel gave to an
    unrelated process since would otherwise halve every later run's threads for as long as that one lives."""
    try:
        recorded = entry.read_text().strip()
    except OSError:
        return True
    now = process_start(pid)
    return not recorded or now is None or recorded == now


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
