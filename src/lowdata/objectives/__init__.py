"""Training objectives: each owns the model it trains and turns a batch into a loss."""
from lowdata.objectives.base import OBJECTIVES, Objective, StepOutput
from lowdata.objectives import supervised  # noqa: F401  (registers "supervised")

__all__ = ["OBJECTIVES", "Objective", "StepOutput"]
