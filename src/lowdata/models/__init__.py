"""One registry of model names: small-image presets, plus any timm model name with keyword overrides."""
from lowdata.models.factory import (MODELS, ModelSpec, count_params, create_model, default_drop_path, default_lr,
                                    sized_model_args)

__all__ = ["MODELS", "ModelSpec", "create_model", "count_params", "default_drop_path", "default_lr",
           "sized_model_args"]
