"""Training objectives: each owns the model it trains and turns a batch into a loss; each file registers its
builder in the one registry, OBJECTIVES (supervised, distill, ema-teacher, and the self-supervised mae and dino),
or an auxiliary term in TERMS (guidance), with its settings dataclass."""
from lowdata.objectives.base import OBJECTIVES, MethodData, Objective, StepOutput, register_method
from lowdata.objectives.settings import build_config, build_objective, known_sections, resolve_sections
from lowdata.objectives.terms import TERMS, Term, register_term

__all__ = ["OBJECTIVES", "TERMS", "MethodData", "Objective", "StepOutput", "Term", "build_config", "build_objective",
           "known_sections", "register_method", "register_term", "resolve_sections"]
