"""Several processes under `torchrun` (PyTorch DDP), or one process: the same code path.

    torchrun --nproc_per_node 4 -m lowdata train --data ... --out runs/vit

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; with them the process group starts (NCCL on GPUs, gloo on
CPUs, with a timeout so a lost peer ends the job instead of hanging it), each process takes its share of
every epoch and its part of the global batch, and DDP averages gradients. Only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn


@dataclass(frozen=True)
class Process:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """DDP around the model for the forward and backward passes; the unwrapped model is what is saved."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def rank_generator(self, shared: torch.Generator) -> torch.Generator:
        """This epoch's random stream for this rank. Every rank draws one seed from the shared generator (whose
        state is the same everywhere and is what the checkpoint keeps) and offsets it by its rank, so ranks
        augment differently and a resumed job continues exactly. One process uses the shared stream itself."""
        if not self.distributed:
            return shared
        seed = int(torch.randint(0, 2**62, (1,), generator=shared, device=shared.device).item())
        return torch.Generator(device=shared.device).manual_seed(seed + self.rank)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def largest(self, value: int) -> int:
        """The largest of the ranks' values (one process: the value itself), e.g. a stop signal any rank got."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.long)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def check_in_sync(self, model: nn.Module) -> None:
        """Raise if the replicas' weights differ (DDP keeps them equal; a difference means a rank trained alone).
        One number per rank: the sum of every weight, in float64."""
        if not self.distributed:
            return
        import torch.distributed as dist

        total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
        totals = [torch.zeros_like(total) for _ in range(self.world_size)]
        dist.all_gather(totals, total)
        if any(not torch.equal(t, totals[0]) for t in totals):
            raise RuntimeError(f"the DDP replicas' weights differ after an epoch: {[t.item() for t in totals]}")


SINGLE = Process()


def current_process() -> Process:
    """This process's place in a torchrun job; starts the process group on first use."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    import torch.distributed as dist

    if not dist.is_initialized():
        import atexit

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
        atexit.register(shutdown)
    return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    """Leave the process group together: a rank that exits while a peer still talks to it aborts the peer."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def process_device(process: Process, asked: torch.device) -> torch.device:
    """Under torchrun, each process drives the GPU of its local rank."""
    if process.distributed and asked.type == "cuda":
        torch.cuda.set_device(process.local_rank)
        return torch.device("cuda", process.local_rank)
    return asked
