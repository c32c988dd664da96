"""What every run holds besides its method and data, chosen once by the run skeleton (runs/skeleton.py) and
handed to the loop as one object."""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from lowdata.cores import CoreShare
from lowdata.training.distributed import Process


@dataclass
class RunContext:
    device: torch.device
    autocast: Callable[[], AbstractContextManager]
    scaler: torch.amp.GradScaler  # scales fp16 losses; a disabled one passes everything through unchanged
    process: Process  # one process, or this one's place under torchrun
    cores: CoreShare  # this process's registration among the host's training processes
    generators: dict[str, torch.Generator]  # the run's random streams by name, checkpointed with it
    run_dir: Path
    resume: bool
    config: dict[str, Any]  # the resolved config, saved in every checkpoint
    stop_after_epoch: int | None = None  # end early after this epoch's checkpoint (returns None), as a scheduler would
