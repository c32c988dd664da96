"""ViT-family presets keep their design token grid (the one they have at 32 px) on smaller and larger images."""
import pytest
import yaml

from lowdata import train
from lowdata.models import create_model, sized_model_args

# the grids docs/training.md promises: (preset, image side) -> grid side
PROMISED = {("vit-tiny", 8): 4, ("vit-tiny", 28): 7, ("vit-tiny", 32): 8, ("vit-tiny", 64): 8,
            ("vit-mini", 8): 4, ("vit-mini", 28): 7, ("vit-tiny-convstem", 8): 4, ("vit-tiny-convstem", 28): 7,
            ("vit-tiny-convstem", 32): 8, ("cct-2/3x2", 8): 4, ("cct-2/3x2", 28): 7, ("cct-2/3x2", 32): 8,
            ("cct-7/3x1", 32): 16, ("cct-7/3x1", 64): 16}


@pytest.mark.parametrize("name, side", sorted(PROMISED))
def test_a_preset_gets_the_promised_grid(name, side):
    args = sized_model_args(name, {}, (side, side))
    model = create_model(name, num_classes=10, in_chans=1, img_size=(side, side), **args)
    assert tuple(model.patch_embed.grid_size) == (PROMISED[name, side],) * 2


def test_what_the_user_sets_wins_and_cnns_and_timm_models_are_left_alone():
    assert sized_model_args("vit-tiny", {"patch_size": 2}, (8, 8)) == {"patch_size": 2}
    assert sized_model_args("vit-tiny", {"tokenizer": "spt"}, (8, 8)) == {"tokenizer": "spt"}
    assert sized_model_args("vit-tiny", {"depth": 2}, (8, 8)) == {"patch_size": 2, "depth": 2}
    assert sized_model_args("resnet20", {}, (8, 8)) == {}
    assert sized_model_args("vit_tiny_patch16_224", {}, (8, 8)) == {}


def test_a_run_records_the_grid_it_chose_and_is_rebuilt_with_it(tmp_path, capsys):
    from lowdata import evaluate_run
    from lowdata.cli import main

    out = tmp_path / "vit"
    summary = train(data="digits", labels=100, epochs=1, batch_size=50, model="vit-tiny", model_args={"depth": 1},
                    out=str(out), threads=1)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model_args"] == {"depth": 1, "patch_size": 2}  # 8x8 digits: patch 2 (2x2 pixels), a 4x4 grid
    assert evaluate_run(out)["test_acc"] == summary["test_acc"]  # rebuilt with the recorded patch
    assert main(["models", "--data", "digits"]) == 0
    listing = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert listing["vit-tiny"][3] == "4x4" and listing["cct-2/3x2"][3] == "4x4" and listing["resnet20"][3] == "-"


def test_the_grid_a_preset_takes_at_another_size_is_said_once():
    from lowdata.models import sized_model_args
    from lowdata.models.factory import grid_note

    sized = sized_model_args("cct-2/3x2", {}, (96, 96))
    assert grid_note("cct-2/3x2", {}, sized, (96, 96)) == (
        "model: cct-2/3x2 at 96x96 takes 4 conv-pool stages (about a 6x6 token grid, the nearest to its design's at "
        "32 px); model_args.tokenizer_layers= chooses another")
    assert grid_note("vit-tiny", {}, sized_model_args("vit-tiny", {}, (64, 48)), (64, 48)).startswith(
        "model: vit-tiny at 48x64 takes patch 8")
    assert grid_note("cct-2/3x2", {}, sized_model_args("cct-2/3x2", {}, (32, 32)), (32, 32)) is None  # the design
    chosen = {"tokenizer_layers": 3}
    assert grid_note("cct-2/3x2", chosen, sized_model_args("cct-2/3x2", chosen, (96, 96)), (96, 96)) is None
