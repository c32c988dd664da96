"""Batched, on-device augmentation with per-sample randomness from an explicit generator."""
from lowdata.augment.policies import POLICIES, Normalize, Policy, build_policy

__all__ = ["POLICIES", "Normalize", "Policy", "build_policy"]
