"""A run's training cost: FLOPs per image as `lowdata models` counts them, times the images each network read."""
import json

import pytest

from lowdata import train
from lowdata.cli import main
from lowdata.errors import UsageError

TINY = dict(data="digits", labels=100, epochs=2, batch_size=50, model="vit-tiny", model_args={"depth": 1}, threads=1)


def vit_flops(depth=1, tokens=17, width=192, hidden=384, patch_values=4, classes=10):
    """One 8x8 digit through vit-tiny (patch 2: 16 patches and the class token), by hand: a multiply-add is two
    FLOPs."""
    patches, head = 2 * (tokens - 1) * patch_values * width, 2 * width * classes
    qkv, attention = 2 * tokens * width * 3 * width, 2 * 2 * tokens * tokens * width
    projection, mlp = 2 * tokens * width * width, 2 * 2 * tokens * width * hidden
    return patches + depth * (qkv + attention + projection + mlp) + head


def test_a_run_records_three_passes_of_its_model_per_image_it_read(tmp_path, capsys):
    forward = vit_flops()
    summary = train(out=str(tmp_path / "plain"), **TINY)
    assert summary["model_flops"] == forward == 10_277_376
    assert summary["images_seen"] == 200 and summary["pool_images_seen"] == 0
    assert summary["train_flops"] == 3 * forward * 200 and summary["flops_per_image"] == {"model": 3 * forward}
    assert summary["cpu_capability"] and summary["train_seconds"] > 0
    assert main(["models", "--data", "digits"]) == 0  # the same count as the listing's (with depth 9)
    listed = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert float(listed["vit-tiny"][2]) == pytest.approx(vit_flops(depth=9) / 1e9, abs=5e-4)


def test_a_pooled_distilled_run_adds_the_pool_and_the_teachers_forward_passes(tmp_path):
    forward = vit_flops()
    teacher = tmp_path / "teacher"
    train(out=str(teacher), **TINY)
    summary = train(out=str(tmp_path / "student"), teacher=str(teacher), pool=200, **TINY)
    labelled, pool = summary["images_seen"], summary["pool_images_seen"]
    assert labelled == 200 and pool == 200  # one pool image per labelled image a step
    # the student forward and backward on both, the teacher (the same architecture) forward on both
    assert summary["flops_per_image"] == {"model": 3 * forward, "teacher": forward}
    assert summary["train_flops"] == (3 * forward + forward) * (labelled + pool)


def test_the_cost_survives_a_resume(tmp_path):
    whole = train(out=str(tmp_path / "whole"), **TINY)
    assert train(out=str(tmp_path / "stopped"), stop_after_epoch=1, **TINY) is None
    with pytest.raises(UsageError, match="model_args="):  # the given model_args must agree with the saved ones,
        train(out=str(tmp_path / "stopped"), resume=True, **{**TINY, "model_args": {"depth": 2}})
    # which hold what the run resolved besides (the patch size the digits' 8x8 images got): depth 1 agrees
    resumed = train(out=str(tmp_path / "stopped"), resume=True, **TINY)
    for key in ("train_flops", "model_flops", "images_seen", "flops_per_image"):
        assert resumed[key] == whole[key], key
    assert json.loads((tmp_path / "stopped" / "summary.json").read_text())["train_flops"] == whole["train_flops"]
