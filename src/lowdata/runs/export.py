"""`lowdata export`: a finished run's model in a format other tools load, checked against the run's own outputs.

- `timm`: a folder with `model.safetensors` and timm's `config.json` (architecture, reconstruction arguments,
  class names, and the run's input size and normalisation as `pretrained_cfg`), written by timm's own
  `save_for_hf`; `timm.create_model("local-dir:FOLDER", pretrained=True)` rebuilds it (after `import
  lowdata.models` for lowdata's presets). Every training run writes one as `RUN/model/`.
- `torchscript`: a traced module (`torch.jit.load`), the images already normalised as the run was; kept while
  torch keeps TorchScript (2.14 marks `torch.jit.load` deprecated in favour of torch.export).
- `export`: a `torch.export` program (`.pt2`, `torch.export.load(path).module()`), batch size dynamic.
- `onnx`: through `torch.onnx.export` (dynamo), batch size dynamic, one file with its weights inside and the
  class names, input size, mean and std in its metadata; needs `pip install 'lowdata[onnx]'`.

The exported model takes normalised float images (N, C, H, W); the normalisation is in the config.json, in
the run's summary (`input`) and printed by the command.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from lowdata.errors import UsageError, shown

FORMATS = {"timm": "model", "torchscript": "model.torchscript.pt", "onnx": "model.onnx", "export": "model.pt2"}
TOLERANCE = 1e-4  # float32 re-implementations (ONNX Runtime's kernels) differ from PyTorch's in the last bits


def export_run(run: str | Path, format: str = "timm", out: str | Path | None = None) -> dict[str, Any]:
    """Export and check: the exported model's logits on a fixed random batch must match the run's within
    TOLERANCE. Returns {"format", "path", "max_abs_diff", "input"}."""
    from lowdata.runs.load import load_run

    if format not in FORMATS:
        raise UsageError(f"unknown export format {shown(format)}; choose from {', '.join(FORMATS)}")
    loaded = load_run(run, device="cpu", tta=False)  # the network itself: test-time views are the caller's to do
    path = Path(out) if out else loaded.run_dir / FORMATS[format]
    check_export_target(format, path)
    info = loaded.info
    difference = write_checked(format, loaded.model, info, path)
    return {"format": format, "path": str(path), "max_abs_diff": difference,
            "input": {"shape": ["N", info.channels, *info.image_size], "mean": list(info.mean),
                      "std": list(info.std), "classes": list(info.classes)}}


def check_export_target(format: str, path: Path) -> None:
    """Refuse a target whose replacement would destroy something lowdata did not write: an export replaces
    only a missing path, an empty folder or what lowdata's ledger proves it wrote (a previous export)."""
    import os

    from lowdata.io import check_writable
    from lowdata.ledger import Ledger

    what = "a folder" if format == "timm" else "a file"
    if path.is_dir() and format != "timm":
        raise UsageError(f"--out {path} is a folder; the {format} export is a file: give a file path such as "
                         f"{path / FORMATS[format]}")
    if path.exists() and not path.is_dir() and format == "timm":
        raise UsageError(f"--out {path} is a file; the timm export is a folder: give a new or empty folder")
    empty_folder = path.is_dir() and not any(path.iterdir())
    # lowdata's (its ledger proves the bytes) and a previous export of this format (not a run's checkpoint)
    if os.path.lexists(path) and not empty_folder and not (Ledger(path.parent).proves(path.name)
                                                           and is_previous_export(format, path)):
        found = "holds files lowdata did not export (or they changed since)" if path.is_dir() else \
            "is a file lowdata did not export (or it changed since)"
        raise UsageError(f"--out {path} {found}; nothing was written: give a new path, or "
                         f"a previous export to replace ({what})")
    check_writable(path, "--out")


def is_previous_export(format: str, path: Path) -> bool:
    """Whether `path` is of the kind an earlier export of `format` writes (its ledger proves who wrote it)."""
    import zipfile

    from lowdata.ledger import LEDGER

    try:
        if format == "timm":
            names = {p.name for p in path.iterdir()} - {LEDGER}
            return bool(names) and names <= {"config.json", "model.safetensors"} and \
                "architecture" in json.loads((path / "config.json").read_text())
        if format == "torchscript":
            with zipfile.ZipFile(path) as archive:
                return any(name.endswith("/constants.pkl") or "/code/__torch__" in name for name in archive.namelist())
        if format == "export":
            with zipfile.ZipFile(path) as archive:
                return any(name.endswith("/archive_format") for name in archive.namelist()) and \
                    any(name.endswith("/models/model.json") for name in archive.namelist())
        with open(path, "rb") as handle:  # an ONNX ModelProto starts with ir_version and names its producer
            head = handle.read(256)
        return head[:1] == b"\x08" and b"pytorch" in head
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def write_run_model(model: torch.nn.Module, info, run_dir: Path) -> Path | None:
    """RUN/model/: the evaluated weights in timm's format, written by every training run before its summary.
    A model timm cannot describe (arguments that are not JSON) costs only this folder, never the finished run."""
    import sys

    path = run_dir / FORMATS["timm"]
    try:
        write_checked("timm", model, info, path)
    except (ValueError, TypeError, RuntimeError, OSError) as err:
        print(f"lowdata: {path} not written ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
              "the weights are in the run's checkpoint", file=sys.stderr)
        return None
    return path


def write_checked(format: str, model: torch.nn.Module, info, path: Path) -> float:
    """Write `model` as `format` at `path`, reload it, and return the largest logit difference on a fixed
    random batch (an error above TOLERANCE)."""
    import copy

    model = copy.deepcopy(model).cpu().float().eval()
    example = torch.randn(4, info.channels, *info.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(example)
    if not torch.isfinite(expected).all():
        raise UsageError(f"the model gives non-finite logits (NaN or infinite weights: a diverged run); nothing was "
                         f"written to {path}: train again with a lower lr or with clip_grad")
    writer = {"timm": write_timm, "torchscript": write_torchscript, "onnx": write_onnx, "export": write_program}[format]
    differences = []

    def check(rerun: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """The written file, loaded back, before it replaces anything at `path`."""
        difference = (rerun(example) - expected).abs().max().item()
        if not difference <= TOLERANCE:
            raise RuntimeError(f"the {format} export for {path} differs from the run's model by {difference:.3g} "
                               f"(more than {TOLERANCE}); nothing was written; please report this with the model name")
        differences.append(difference)

    writer(model, info, example, path, check)
    return differences[0]


def timm_data_config(info) -> dict[str, Any]:
    # lowdata resizes every image to the input size as a whole (`squash`), never a centre crop
    return {"input_size": (info.channels, *info.image_size), "mean": tuple(info.mean), "std": tuple(info.std),
            "crop_pct": 1.0, "crop_mode": "squash", "interpolation": "bilinear"}


def write_timm(model: torch.nn.Module, info, example: torch.Tensor, path: Path, check: Callable) -> None:
    """model.safetensors + config.json, checked as timm rebuilds them, then swapped in whole."""
    import timm
    from timm.models import save_for_hf

    from lowdata.io import follow_umask, make_temp_dir
    from lowdata.ledger import Ledger
    from lowdata.models.timm_names import plain_timm_description

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, prefix=f".{path.name}.tmp-")
    try:
        config = {"label_names": list(info.classes)}
        plain = plain_timm_description(model)
        if plain is not None:  # timm alone rebuilds it: saved under timm's name, when that gives the same logits
            if same_logits(timm.create_model(plain[0], **plain[1]), model, example):
                config["pretrained_cfg"] = {"architecture": plain[0]}
                model._model_args = plain[1]  # (a copy of the run's model) what timm records for its rebuild
        save_for_hf(model, str(tmp), model_config=config, safe_serialization=True, data_config=timm_data_config(info))
        for file in tmp.iterdir():
            follow_umask(file)
        rebuilt = timm.create_model(f"local-dir:{tmp}", pretrained=True).eval()
        check(lambda images: rebuilt(images).detach())
        Ledger(tmp).record_files()
        remove_previous_export(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_previous_export(path: Path) -> None:
    """An empty folder, or a folder whose files lowdata's ledgers prove it wrote (check_export_target): its
    proven files go, and nothing else (a file of someone else's found inside keeps the folder: one line)."""
    from lowdata.ledger import LEDGER, Ledger

    if not path.is_dir():
        return
    if any(path.iterdir()) and not Ledger(path.parent).proves(path.name):
        raise UsageError(f"{path} holds files lowdata did not write (or they changed since); nothing was replaced: "
                         "move them away or choose another path")
    ledger = Ledger(path)
    for name in [p.name for p in path.iterdir() if p.name != LEDGER and ledger.proves(p.name)]:
        (path / name).unlink()
    (path / LEDGER).unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:
        raise UsageError(f"{path} holds files lowdata did not write besides its export; move them away or choose "
                         "another path") from None


def same_logits(candidate: torch.nn.Module, model: torch.nn.Module, example: torch.Tensor) -> bool:
    """Whether `candidate`, given `model`'s weights, computes the same logits (a rebuild that describes it)."""
    try:
        candidate.load_state_dict(model.state_dict())
    except RuntimeError:
        return False
    with torch.no_grad():
        return bool((candidate.eval()(example) - model(example)).abs().max() <= TOLERANCE)


def write_torchscript(model: torch.nn.Module, info, example: torch.Tensor, path: Path, check: Callable) -> None:
    import warnings

    from lowdata.io import atomic_path

    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is still what C++ and mobile load
        warnings.simplefilter("ignore", FutureWarning)
        # the trace fixes the input size, as the model (position embeddings) does; timm's size asserts say so
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
            reloaded = torch.jit.load(str(tmp))
            check(lambda images: reloaded(images).detach())


def write_program(model: torch.nn.Module, info, example: torch.Tensor, path: Path, check: Callable) -> None:
    """A torch.export program with a dynamic batch size, saved as .pt2 and loaded back as a module."""
    from lowdata.io import atomic_path

    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    with atomic_path(path) as tmp:
        torch.export.save(program, str(tmp))
        reloaded = torch.export.load(str(tmp)).module()
        check(lambda images: reloaded(images).detach())


def onnx_metadata(info) -> dict[str, str]:
    """What a consumer needs besides the graph, as the model's metadata (JSON values): the class of each logit,
    the input size, and the preprocessing the images need (the graph takes normalised images): resize the whole
    image to the input size (no crop), bilinear with antialiasing as lowdata and timm do (bicubic drifts: 247 of
    250 top-1 agreements in a user's test), pixels scaled from 0-255 to 0-1, then (x - mean) / std per channel,
    channels first in RGB order (or one grey channel)."""
    order = "RGB" if info.channels == 3 else "L" if info.channels == 1 else f"{info.channels} channels"
    return {"classes": json.dumps(list(info.classes)), "input_size": json.dumps([info.channels, *info.image_size]),
            "mean": json.dumps(list(info.mean)), "std": json.dumps(list(info.std)), "resize": "squash",
            "interpolation": "bilinear, antialiased", "pixel_scale": json.dumps(1 / 255),
            "channel_order": order, "layout": "NCHW", "producer": "lowdata"}


def write_onnx(model: torch.nn.Module, info, example: torch.Tensor, path: Path, check: Callable) -> None:
    try:
        import onnxruntime
    except ImportError:
        raise UsageError("ONNX export needs the onnx extra: pip install 'lowdata[onnx]' (onnx, onnxscript, "
                         "onnxruntime)") from None
    from lowdata.io import atomic_path

    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(model, (example,), None, dynamo=True, input_names=["images"],
                                output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
    proto = program.model_proto  # weights inside: one self-contained file that can be copied on its own
    for key, value in onnx_metadata(info).items():
        proto.metadata_props.add(key=key, value=value)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        check(lambda images: torch.from_numpy(session.run(None, {"images": images.numpy()})[0]))
