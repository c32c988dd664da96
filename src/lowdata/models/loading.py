"""Rebuild a trained model from what a run left on disk: a lowdata run directory, or a weights file plus the
registry name of its architecture. Used to evaluate a run and to load a distillation teacher."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from lowdata.errors import UsageError
from lowdata.models.strict import load_exactly, refuse_non_finite
from lowdata.models.sources import WEIGHT_SUFFIXES, read_weights


def load_trained_model(source: str | Path, num_classes: int, in_chans: int, img_size: tuple[int, int],
                       model_name: str | None = None, what: str = "model") -> tuple[nn.Module, str]:
    """The model and a one-word description of where it came from. `source` is a run directory (its config
    names the architecture) or a weights file, which needs `model_name`."""
    from lowdata.models.factory import create_model
    from lowdata.rundir import read_config, read_run_weights

    path = Path(source)
    if path.is_dir():
        config = read_config(path)  # what builds the model: its name and model_args (a run of any method)
        model_name, model_args = str(config.get("model") or "resnet20"), dict(config.get("model_args") or {})
        if config.get("dist_token") is True:  # the flat spelling of runs saved before model_args.distilled
            model_args["distilled"] = True
        model = create_model(model_name, num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                             **model_args)
        # evaluating a run builds it for its own data: a misfit is the folder's; a teacher is built for this data
        fix = ("the run's weights do not match its saved settings (a changed or mixed run folder): restore the run, "
               "or train it again") if what == "run" else (
            f"the {what} was trained for other data than this ({num_classes} classes, {in_chans} channels, "
            f"{img_size[1]}x{img_size[0]}): give a {what} trained on this data")
        loader, name = (lambda: load_exactly(model, read_run_weights(path), f"{what} {path}", fix)), model_name
    elif path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        if model_name is None:
            raise UsageError(f"{what} weights {path} need the architecture's name too (e.g. teacher_model=resnet20); "
                             "a lowdata run directory carries it")
        model = create_model(model_name, num_classes=num_classes, in_chans=in_chans, img_size=img_size)
        channels = f"{in_chans} channel{'s' if in_chans != 1 else ''}"
        fix = (f"give weights of a {model_name} for {num_classes} classes, {channels} at "
               f"{img_size[1]}x{img_size[0]}, or name the architecture they were saved from")
        loader, name = (lambda: load_exactly(model, read_weights(path), f"{what} {path}", fix)), model_name
    else:
        raise UsageError(f"{what} {path} is neither a lowdata run directory nor a weights file "
                         f"({', '.join(WEIGHT_SUFFIXES)}); check the path")
    loader()
    refuse_non_finite(model, f"{what} {path}")
    return model, name
