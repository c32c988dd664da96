"""The unlabelled pool's share of each step: pool images drawn from a seeded stream, seen twice.

As in FixMatch (Sohn et al. 2020) and Noisy Student (Xie et al. 2020), the teacher sees a weak view (crop and
flip) and the student a strong one (RandAugment, erasing; never mixed, since a pool image has no label to mix).
The feed holds images only: no label of a pool image ever reaches the loop, so none can reach a loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lowdata.augment import Policy

POOL_AUGMENT = "the student's view of a pool image (an augmentation policy; Mixup/CutMix off)"


@dataclass
class PoolFeed:
    images: torch.Tensor  # uint8 (P, C, H, W) pool images, on the CPU
    ratio: float  # pool images per labelled image in a step
    teacher_view: Policy
    student_view: Policy

    def per_step(self, labelled_batch: int) -> int:
        return max(1, round(labelled_batch * self.ratio))

    def draw(self, count: int, generator: torch.Generator, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(student view, teacher view) of `count` pool images drawn uniformly, with replacement, from
        `generator` (this rank's pool stream, checkpointed with the run)."""
        return self.views(self.pick(count, generator), generator, device)

    def pick(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """The indices of `count` pool images drawn uniformly, with replacement (on the CPU)."""
        return torch.randint(len(self.images), (count,), generator=generator, device=generator.device).cpu()

    def views(self, index: torch.Tensor, generator: torch.Generator, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(student view, teacher view) of the pool images at `index`."""
        with torch.profiler.record_function("lowdata.pool_views"):  # a profiler label (benchmarks/profile_steps.py)
            batch = self.images[index].to(device)
            count = len(index)
            no_labels = torch.zeros(count, dtype=torch.long, device=device)  # policies take labels; these are unread
            student, _ = self.student_view(batch, no_labels, generator)
            teacher, _ = self.teacher_view(batch, no_labels, generator)
        return student, teacher

    def student_views(self, index: torch.Tensor, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """The student's view of the pool images at `index` alone (a method without a teacher)."""
        with torch.profiler.record_function("lowdata.pool_views"):
            batch = self.images[index].to(device)
            no_labels = torch.zeros(len(index), dtype=torch.long, device=device)
            return self.student_view(batch, no_labels, generator)[0]

    def to(self, device: torch.device) -> "PoolFeed":
        self.teacher_view.to(device)
        self.student_view.to(device)
        return self


class ReadsPool:
    """The contract's hooks for a method that draws pool images each step from its `feed` (None: no pool):
    its share per step, its stream, and the pool's images in the data fingerprint."""
    feed: PoolFeed | None = None
    pool_stream: torch.Generator | None = None
    pool_per_step = 0

    def use_batch_size(self, batch_size: int) -> None:
        if self.feed is not None:
            self.pool_per_step = self.feed.per_step(batch_size)

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        if self.feed is not None:
            self.pool_stream = streams["pool"]

    def fingerprint_tensors(self) -> list[torch.Tensor]:
        return [self.feed.images] if self.feed is not None else []


def pool_feed(augment: str, ratio: float, info, images: torch.Tensor | None, device: torch.device
              ) -> PoolFeed | None:
    """The teacher's weak view (basic) and the student's strong view (`augment`, never mixed) of the pool's
    images, `ratio` of them per labelled image in a step (None without a pool)."""
    import inspect

    from lowdata.augment import build_policy
    from lowdata.augment.policies import POLICIES

    if images is None or not len(images):
        return None
    takes = inspect.signature(POLICIES.get(augment)).parameters
    unmixed = {name: 0.0 for name in ("mixup", "cutmix") if name in takes}  # a pool image has no label to mix
    return PoolFeed(images, ratio, build_policy("basic", info), build_policy(augment, info, **unmixed)).to(device)
