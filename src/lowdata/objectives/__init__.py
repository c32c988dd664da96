"""Training objectives: each owns the model it trains and turns a batch into a loss; each file registers its
builder in the one registry, OBJECTIVES (supervised, distill, and the self-supervised mae)."""
from lowdata.objectives.base import (OBJECTIVES, MethodData, Objective, StepOutput, build_objective,
                                     register_method)

__all__ = ["OBJECTIVES", "MethodData", "Objective", "StepOutput", "build_objective", "register_method"]
