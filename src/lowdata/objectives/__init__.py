"""Training objectives: each owns the model it trains and turns a batch into a loss; each file registers
a builder in OBJECTIVES (supervised, distill) or a pretraining method in PRETRAIN_METHODS (mae)."""
from lowdata.objectives.base import OBJECTIVES, Objective, StepOutput, build_objective

__all__ = ["OBJECTIVES", "Objective", "StepOutput", "build_objective"]
