"""Rebuild a trained model from what a run left on disk: a lowdata run directory, or a weights file plus the
registry name of its architecture. Used to evaluate a run and to load a distillation teacher."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from lowdata.errors import UsageError
from lowdata.models.sources import WEIGHT_SUFFIXES, read_weights


def load_trained_model(source: str | Path, num_classes: int, in_chans: int, img_size: tuple[int, int],
                       model_name: str | None = None, what: str = "model") -> tuple[nn.Module, str]:
    """The model and a one-word description of where it came from. `source` is a run directory (its config
    names the architecture) or a weights file, which needs `model_name`."""
    from lowdata.config import TrainConfig, build
    from lowdata.models.factory import create_model
    from lowdata.rundir import read_config, read_run_weights

    path = Path(source)
    if path.is_dir():
        config = build(TrainConfig, read_config(path))
        model = create_model(config.model, num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                             distilled=config.dist_token, **config.model_args)
        loader, name = (lambda: model.load_state_dict(read_run_weights(path))), config.model
    elif path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        if model_name is None:
            raise UsageError(f"{what} weights {path} need the architecture's name too (e.g. teacher_model=resnet20); "
                             "a lowdata run directory carries it")
        model = create_model(model_name, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
        loader, name = (lambda: model.load_state_dict(read_weights(path))), model_name
    else:
        raise UsageError(f"{what} {path} is neither a lowdata run directory nor a weights file "
                         f"({', '.join(WEIGHT_SUFFIXES)}); check the path")
    try:
        loader()
    except RuntimeError as err:  # shapes differ: other classes, channels or image size
        raise UsageError(f"the {what} weights in {path} do not fit this data ({num_classes} classes, {in_chans} "
                         f"channels, {img_size[0]}x{img_size[1]}): {str(err).splitlines()[0]}") from None
    return model, name
