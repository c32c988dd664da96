"""Rebuild a trained model from what a run left on disk: a lowdata run directory, or a weights file plus the
registry name of its architecture. Used to evaluate a run and to load a distillation teacher."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from lowdata.errors import UsageError
from lowdata.models.strict import load_exactly, refuse_non_finite
from lowdata.models.sources import WEIGHT_SUFFIXES, read_weights


def load_trained_model(source: str | Path, num_classes: int, in_chans: int, img_size: tuple[int, int],
                       model_name: str | None = None, what: str = "model", file_size: int | None = None
                       ) -> tuple[nn.Module, str]:
    """The model and a one-word description of where it came from. `source` is a run directory (its config
    names the architecture) or a weights file, which needs `model_name` (and `file_size`, the side it was
    trained at, where that is not the data's). A model built at another size than `img_size` carries its own
    as `input_size`: frozen, it resizes what it is given (models/frozen.py)."""
    from lowdata.models.factory import create_model
    from lowdata.rundir import read_config, read_run_weights

    path = Path(source)
    if path.is_dir():
        config = read_config(path)  # what builds the model: its name and model_args (a run of any method)
        model_name, model_args = str(config.get("model") or "resnet20"), dict(config.get("model_args") or {})
        if config.get("dist_token") is True:  # the flat spelling of runs saved before model_args.distilled
            model_args["distilled"] = True
        own_size = run_input_size(path, config)
        model = create_model(model_name, num_classes=num_classes, in_chans=in_chans, img_size=own_size or img_size,
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
        own_size = (file_size, file_size) if file_size else None
        model = create_model(model_name, num_classes=num_classes, in_chans=in_chans, img_size=own_size or img_size)
        channels = f"{in_chans} channel{'s' if in_chans != 1 else ''}"
        side = own_size or img_size
        fix = (f"give weights of a {model_name} for {num_classes} classes, {channels} at "
               f"{side[1]}x{side[0]}, or name the architecture they were saved from")
        loader, name = (lambda: load_exactly(model, renamed(read_weights(path), model, f"{what} {path}"),
                                             f"{what} {path}", fix)), model_name
    else:
        raise UsageError(f"{what} {path} is neither a lowdata run directory nor a weights file "
                         f"({', '.join(WEIGHT_SUFFIXES)}); check the path")
    loader()
    refuse_non_finite(model, f"{what} {path}")
    if own_size is not None and tuple(own_size) != tuple(img_size):
        model.input_size = tuple(own_size)  # a frozen teacher resizes its input to it (models/frozen.py)
    return model, name


def run_input_size(run_dir: Path, config: dict) -> tuple[int, int] | None:
    """The (H, W) a run trained at: its exported model's input size, else its image_size setting; None when it
    says neither (the data's own size)."""
    import json

    exported = run_dir / "model" / "config.json"
    try:
        size = json.loads(exported.read_text())["pretrained_cfg"]["input_size"][-2:]
        return int(size[0]), int(size[1])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    size = config.get("image_size")
    if isinstance(size, int):
        return size, size
    return (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) and len(size) == 2 else None


def renamed(state: dict, model: nn.Module, where: str) -> dict:
    """A weights file in another library's names for the model's architecture, under the model's names (matched
    by order and shape, models/foreign_names.py); said in the model's `weights_note` for the run's summary."""
    from lowdata.models.foreign_names import match_by_order, other_names

    if not other_names(state, model.state_dict()):
        return state
    state, note = match_by_order(state, model.state_dict(), where)
    model.weights_note = note
    return state
