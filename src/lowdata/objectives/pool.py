"""The unlabelled pool's share of each step: pool images drawn from a seeded stream, seen twice.

As in FixMatch (Sohn et al. 2020) and Noisy Student (Xie et al. 2020), the teacher sees a weak view (crop and
flip) and the student a strong one (RandAugment, erasing; never mixed, since a pool image has no label to mix).
The feed holds images only: no label of a pool image ever reaches the loop, so none can reach a loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lowdata.augment import Policy


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
        index = torch.randint(len(self.images), (count,), generator=generator, device=generator.device).cpu()
        batch = self.images[index].to(device)
        no_labels = torch.zeros(count, dtype=torch.long, device=device)  # policies take labels; these are unread
        student, _ = self.student_view(batch, no_labels, generator)
        teacher, _ = self.teacher_view(batch, no_labels, generator)
        return student, teacher

    def to(self, device: torch.device) -> "PoolFeed":
        self.teacher_view.to(device)
        self.student_view.to(device)
        return self
