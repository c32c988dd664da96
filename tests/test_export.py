import json

import pytest
import torch
import yaml

import lowdata
from lowdata.cli import main
from lowdata.data.datasets import DatasetInfo
from lowdata.models import MODELS, create_model
from lowdata.runs.export import write_checked


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    lowdata.train(data="digits", labels=100, model="vit-tiny", model_args={"depth": 1}, epochs=1, batch_size=32,
                  out=str(out))
    return out


@pytest.mark.parametrize("name", [*MODELS.names(), "vit-tiny+token", "resnet10t"])
def test_every_preset_round_trips_through_timms_own_folder_format(name, tmp_path):
    import timm
    from timm.data import resolve_data_config

    grey = name in ("resnet20", "cct-2/3x2")  # one-channel inputs too
    info = DatasetInfo("t", tuple("abcdefg"), 1 if grey else 3, (28, 28) if grey else (32, 32), False,
                       (0.2,) if grey else (0.4, 0.5, 0.6), (0.3,) if grey else (0.2, 0.25, 0.3))
    distilled = name.endswith("+token")
    torch.manual_seed(0)
    model = create_model(name.removesuffix("+token"), num_classes=7, in_chans=info.channels,
                         img_size=info.image_size, distilled=distilled)
    assert write_checked("timm", model, info, tmp_path / "m") == 0.0  # bit-identical after the reload
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["label_names"] == list("abcdefg") and config["num_classes"] == 7
    rebuilt = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=True)
    data = resolve_data_config(model=rebuilt)
    assert data["input_size"] == (info.channels, *info.image_size)
    assert tuple(data["mean"]) == pytest.approx(info.mean) and tuple(data["std"]) == pytest.approx(info.std)


def test_a_training_run_writes_its_model_in_timm_format_and_a_resolved_config(run):
    import timm

    from lowdata.runs.load import load_run

    loaded = load_run(run)
    rebuilt = timm.create_model(f"local-dir:{run / 'model'}", pretrained=True).eval()
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    normalised = (images.float() / 255 - torch.tensor(loaded.info.mean).view(1, -1, 1, 1)) / torch.tensor(
        loaded.info.std).view(1, -1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(rebuilt(normalised), loaded.logits(images), atol=0.05)  # the run computes in bf16
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["drop_path"] == 0.1 and saved["lr"] == 1e-3 and saved["objective"] == "supervised" and "distill" not in saved
    written = json.loads((run / "model" / "config.json").read_text())  # timm's own name and arguments
    assert written["architecture"] == "vit_tiny_patch16_224"
    assert written["model_args"]["depth"] == 1 and written["model_args"]["patch_size"] == 2


def test_a_model_with_lowdata_parts_keeps_its_lowdata_name(tmp_path):
    class Info:
        channels, image_size, classes, mean, std = 3, (32, 32), ("a", "b"), (0.5,) * 3, (0.25,) * 3

    for preset, name in (("cct-2/3x2", "lowdata_cct_2_3x2"), ("resnet20", "lowdata_resnet20")):
        model = lowdata.create_model(preset, num_classes=2, in_chans=3, img_size=32)
        write_checked("timm", model, Info(), tmp_path / name)
        assert json.loads((tmp_path / name / "config.json").read_text())["architecture"] == name


@pytest.mark.parametrize("format", ["torchscript", "onnx", "export"])
def test_export_formats_reproduce_the_runs_outputs(run, format, tmp_path):
    if format == "onnx":
        pytest.importorskip("onnxruntime")
    result = lowdata.export(run, format, tmp_path / f"m.{format}")
    assert result["max_abs_diff"] < 1e-4 and (tmp_path / f"m.{format}").stat().st_size > 10_000
    assert result["input"]["shape"] == ["N", 1, 8, 8] and len(result["input"]["classes"]) == 10
    if format == "torchscript":
        reloaded = torch.jit.load(result["path"])
        assert reloaded(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    if format == "export":  # the program keeps its batch size dynamic
        reloaded = torch.export.load(result["path"]).module()
        assert reloaded(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_export_cli(run, tmp_path, capsys):
    assert main(["export", "--run", str(run), "--format", "torchscript", "--out", str(tmp_path / "t.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(tmp_path / "t.pt")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--run", str(run), "--format", "tflite"])
    assert exit_info.value.code == 2
    assert main(["export", "--run", str(tmp_path), "--format", "timm"]) == 2  # not a run


def test_resume_takes_a_new_device_or_precision_but_refuses_other_changes(tmp_path):
    from lowdata.errors import UsageError

    out = tmp_path / "r"
    lowdata.train(data="digits", labels=50, model="resnet20", epochs=2, out=str(out), stop_after_epoch=1)
    summary = lowdata.train(data="digits", labels=50, model="resnet20", epochs=2, out=str(out), resume=True,
                            precision="fp32")
    assert summary["precision"] == "fp32"
    with pytest.raises(UsageError, match="lr="):
        lowdata.train(data="digits", labels=50, model="resnet20", epochs=2, out=str(out), resume=True, lr=0.5)


def test_the_python_api_builds_and_loads(run):
    model = lowdata.create_model("cct-2/3x2", num_classes=4, in_chans=1, img_size=28)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 4)
    loaded = lowdata.load_run(run)
    assert loaded.logits(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)).shape == (2, 10)
    assert loaded.classes == tuple(str(i) for i in range(10))


def test_a_fresh_process_rebuilds_the_run_from_its_record_alone(run, tmp_path):
    """No dataset, no lowdata: a plain ViT preset's run loads with timm and the folder's config.json alone."""
    import subprocess
    import sys

    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    torch.save(images, tmp_path / "images.pt")
    script = f"""
import sys, torch, timm
model = timm.create_model("local-dir:{run / 'model'}", pretrained=True).eval()
assert not any(name.startswith("lowdata") for name in sys.modules)
cfg = timm.data.resolve_data_config(model=model)
x = torch.load("{tmp_path / 'images.pt'}").float() / 255
x = (x - torch.tensor(cfg["mean"]).view(1, -1, 1, 1)) / torch.tensor(cfg["std"]).view(1, -1, 1, 1)
with torch.no_grad():
    torch.save(model(x), "{tmp_path / 'logits.pt'}")
"""
    subprocess.run([sys.executable, "-c", script], check=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    loaded = lowdata.load_run(run)
    expected = loaded.model.float()((images.float() / 255 - torch.tensor(loaded.info.mean).view(1, -1, 1, 1))
                                    / torch.tensor(loaded.info.std).view(1, -1, 1, 1))
    assert torch.allclose(torch.load(tmp_path / "logits.pt"), expected.detach(), atol=1e-5)
    assert lowdata.evaluate is lowdata.evaluate_run  # the API name, not a module


def test_a_model_timm_cannot_describe_costs_only_its_model_folder(tmp_path, capsys):
    from lowdata.runs.export import write_run_model

    model = create_model("resnet20", num_classes=3, in_chans=1, img_size=(8, 8))
    model._model_args["act_layer"] = torch.nn.ReLU  # a class, not JSON: timm's writer refuses it
    info = DatasetInfo("t", ("a", "b", "c"), 1, (8, 8), False, (0.5,), (0.5,))
    assert write_run_model(model, info, tmp_path) is None
    assert "not written" in capsys.readouterr().err and not (tmp_path / "model").exists()


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["user-folder", "run", "checkpoint"])
def test_export_refuses_a_folder_it_did_not_write_and_removes_nothing(run, tmp_path, capsys, target):
    out = {"user-folder": tmp_path / "keep", "run": run, "checkpoint": run / "checkpoint"}[target]
    if target == "user-folder":
        out.mkdir()
        (out / "a.jpg").write_bytes(b"holiday")
    before = snapshot(out)
    assert main(["export", "--run", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lowdata did not export" in err and "nothing was written" in err
    assert snapshot(out) == before


def test_export_to_a_file_or_an_unrelated_file_is_refused_in_one_line(run, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main(["export", "--run", str(run), "--out", str(notes)]) == 2  # timm wants a folder
    assert "is a file" in capsys.readouterr().err
    assert main(["export", "--run", str(run), "--format", "torchscript", "--out", str(notes)]) == 2
    assert "is a file lowdata did not export" in capsys.readouterr().err
    assert main(["export", "--run", str(run), "--format", "torchscript", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert notes.read_text() == "mine"


def test_export_replaces_its_own_previous_export_and_fills_an_empty_folder(run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--run", str(run), "--out", str(empty)]) == 0
    assert sorted(p.name for p in empty.iterdir()) == [".lowdata-ledger.json", "config.json", "model.safetensors"]
    assert main(["export", "--run", str(run), "--out", str(empty)]) == 0  # again: a previous export
    traced = tmp_path / "m.pt"
    assert main(["export", "--run", str(run), "--format", "torchscript", "--out", str(traced)]) == 0
    assert main(["export", "--run", str(run), "--format", "torchscript", "--out", str(traced)]) == 0
    program = tmp_path / "m.pt2"
    assert main(["export", "--run", str(run), "--format", "export", "--out", str(program)]) == 0
    assert main(["export", "--run", str(run), "--format", "export", "--out", str(program)]) == 0
    assert main(["export", "--run", str(run), "--format", "export", "--out", str(traced)]) == 2  # not its own


def test_export_under_a_file_is_one_line(run, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main(["export", "--run", str(run), "--out", str(notes / "model")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file, not a folder" in err and err.count("\n") == 0 and notes.read_text() == "mine"


def test_the_onnx_file_is_self_contained_and_describes_its_input(run, tmp_path):
    """Copied alone into a fresh folder, the file loads in ONNX Runtime and carries the class names, input size
    and normalisation; nothing else was written beside it but lowdata's ledger (the proof it wrote the file)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    import json
    import shutil

    exported = tmp_path / "export"
    exported.mkdir()
    lowdata.export(run, "onnx", exported / "digits.onnx")
    assert sorted(p.name for p in exported.iterdir()) == [".lowdata-ledger.json", "digits.onnx"]
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(exported / "digits.onnx", alone / "copy.onnx")
    session = onnxruntime.InferenceSession(str(alone / "copy.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"images": torch.zeros(2, 1, 8, 8).numpy()})[0]
    meta = session.get_modelmeta().custom_metadata_map
    assert logits.shape == (2, 10) and json.loads(meta["classes"]) == [str(i) for i in range(10)]
    assert json.loads(meta["input_size"]) == [1, 8, 8] and len(json.loads(meta["mean"])) == 1
    assert meta["resize"] == "squash" and meta["interpolation"] == "bilinear, antialiased"
    assert json.loads(meta["pixel_scale"]) == pytest.approx(1 / 255) and meta["channel_order"] == "L"
    assert meta["layout"] == "NCHW"


def test_timms_transform_from_the_saved_config_preprocesses_as_lowdata_does(run, tmp_path):
    """A non-square photo through timm's eval transform, built from the run's config.json alone, gives the
    input lowdata's predict gives it (squashed to the input size, not centre-cropped), up to resampling."""
    import timm
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    from lowdata.runs.predict import load_inputs

    pixels = torch.zeros(40, 24, dtype=torch.uint8)
    pixels[:, :12] = 255  # left half white: a centre crop of the middle rows would keep both halves alike
    pixels[:10] = 128  # top quarter grey: a centre crop would lose it
    Image.fromarray(pixels.numpy()).save(tmp_path / "tall.png")
    model = timm.create_model(f"local-dir:{run / 'model'}", pretrained=True)
    timm_input = create_transform(**resolve_data_config(model=model))(Image.open(tmp_path / "tall.png"))
    loaded = lowdata.load_run(run)
    _, batch = load_inputs([tmp_path / "tall.png"], loaded.info)
    ours = (batch.float() / 255 - torch.tensor(loaded.info.mean).view(1, -1, 1, 1)) / \
        torch.tensor(loaded.info.std).view(1, -1, 1, 1)
    assert timm_input.shape == ours[0].shape == (1, 8, 8)
    assert (timm_input - ours[0]).abs().max() < 0.25 * (1 / loaded.info.std[0])  # a quarter of the range at most
    assert (timm_input - ours[0]).abs().mean() < 0.05 * (1 / loaded.info.std[0])


KINDS = {"resnet20": "export", "resnet56": "export", "resnet18-cifar": "export", "vit-mini": "timm", "vit-tiny": "timm",
         "vit-small": "timm", "vit-tiny-simple": "timm", "vit-tiny-convstem": "export", "vit-tiny-sl": "export",
         "cct-2/3x2": "export", "cct-7/3x1": "export"}  # the README's table of what loads where


def test_the_cnn_cct_and_vit_load_without_lowdata_timm_or_torch_export(tmp_path):
    loads_without_lowdata(["resnet20", "cct-2/3x2", "vit-tiny"], tmp_path)


@pytest.mark.slow
def test_every_preset_loads_without_lowdata_timm_or_torch_export(tmp_path):
    assert sorted(KINDS) == sorted(MODELS.names())
    loads_without_lowdata(MODELS.names(), tmp_path)


def loads_without_lowdata(names: list[str], tmp_path) -> None:
    """Each preset in a process that never imports lowdata: timm's own architectures (the plain ViTs) from the
    timm folder with timm alone, the presets with lowdata's parts from a torch.export program."""
    import subprocess
    import sys

    class Info:
        channels, image_size, classes, mean, std = 3, (32, 32), ("a", "b"), (0.5,) * 3, (0.25,) * 3
        depth, hflip = None, True

    x = torch.randn(2, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    expected, kinds = {}, {}
    for index, name in enumerate(names):
        torch.manual_seed(index)
        model = create_model(name, num_classes=2, in_chans=3, img_size=(32, 32)).eval()
        write_checked("timm", model, Info(), tmp_path / f"m{index}")
        native = not json.loads((tmp_path / f"m{index}" / "config.json").read_text())["architecture"].startswith(
            "lowdata_")
        if not native:
            write_checked("export", model, Info(), tmp_path / f"m{index}.pt2")
        kinds[name] = "timm" if native else "export"
        with torch.no_grad():
            expected[index] = model(x)
    script = f"""
import sys, torch, timm
x = torch.load("{tmp_path / 'x.pt'}")
for index, kind in enumerate({list(kinds.values())!r}):
    if kind == "timm":
        model = timm.create_model(f"local-dir:{tmp_path}/m{{index}}", pretrained=True).eval()
    else:
        model = torch.export.load(f"{tmp_path}/m{{index}}.pt2").module()
    with torch.no_grad():
        torch.save(model(x), f"{tmp_path}/y{{index}}.pt")
assert not any(name.startswith("lowdata") for name in sys.modules)
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    for index, name in enumerate(names):
        assert torch.allclose(torch.load(tmp_path / f"y{index}.pt"), expected[index], atol=1e-4), name
    assert kinds == {name: KINDS[name] for name in names}
