import json
import subprocess
import sys

import pytest
import torch

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.weights import load_init
from lowdata.objectives.mae import MAE, MaskedAutoencoder
from lowdata import pretrain


def tiny_mae(norm_pix_loss=True, depth=2, channels=3):
    encoder = create_model("vit-tiny", num_classes=0, in_chans=channels, img_size=(16, 16), depth=depth)
    return MaskedAutoencoder(encoder, channels, decoder_dim=32, decoder_depth=1, norm_pix_loss=norm_pix_loss)


def test_masking_keeps_the_requested_number_per_image_differently_and_reproducibly():
    ids_keep, mask, ids_restore = MaskedAutoencoder.random_masking(64, 16, 0.75, torch.Generator().manual_seed(0),
                                                                   torch.device("cpu"))
    assert ids_keep.shape == (64, 4) and (mask.sum(1) == 12).all()
    assert all(mask[i, ids_keep[i]].sum() == 0 for i in range(64))  # kept patches are the unmasked ones
    assert len({tuple(sorted(row.tolist())) for row in ids_keep}) > 50
    again = MaskedAutoencoder.random_masking(64, 16, 0.75, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert torch.equal(again[0], ids_keep) and torch.equal(again[1], mask)
    assert torch.equal(ids_restore.gather(1, ids_restore.argsort(1)), torch.arange(16).expand(64, 16))


def test_ranks_mask_differently_from_one_checkpointed_state():
    from lowdata.training.distributed import Process
    from lowdata.training.loop import epoch_streams

    def masks_on(rank):
        shared = {"order": torch.Generator().manual_seed(1), "augment": torch.Generator().manual_seed(2),
                  "mask": torch.Generator().manual_seed(3)}
        objective = MAE(create_model("vit-tiny", num_classes=0, in_chans=3, img_size=(16, 16), depth=1), 3,
                        shared["mask"], decoder_dim=32, decoder_depth=1)
        objective.use_streams(epoch_streams(Process(rank, 2), shared))
        _, mask, _ = objective.model.forward_encoder(torch.randn(8, 3, 16, 16), 0.75, objective.generator)
        return mask, shared["mask"].get_state()

    (mask0, state0), (mask1, state1) = masks_on(0), masks_on(1)
    assert not torch.equal(mask0, mask1) and torch.equal(state0, state1)
    alone = {"order": torch.Generator(), "augment": torch.Generator(), "mask": torch.Generator()}
    assert epoch_streams(Process(), alone)["mask"] is alone["mask"]  # one process: the shared stream itself


def test_patchify_round_trip_and_layout():
    model = tiny_mae()
    images = torch.randn(2, 3, 16, 16)
    patches = model.patchify(images)
    assert patches.shape == (2, 16, 4 * 4 * 3)
    assert torch.equal(patches[0, 1].view(4, 4, 3).permute(2, 0, 1), images[0, :, :4, 4:8])  # row-major grid
    assert torch.equal(model.unpatchify(patches), images)


def test_loss_counts_masked_patches_only():
    model = tiny_mae(norm_pix_loss=False)
    images = torch.randn(2, 3, 16, 16)
    target = model.patchify(images)
    mask = torch.zeros(2, 16)
    mask[:, :5] = 1
    pred = torch.where(mask[..., None].bool(), target, target + 100.0)  # perfect where masked, wild elsewhere
    assert model.forward_loss(images, pred, mask) == 0
    pred = torch.where(mask[..., None].bool(), target + 2.0, target)  # off by 2 on every masked pixel
    assert torch.isclose(model.forward_loss(images, pred, mask), torch.tensor(4.0))


def test_encoder_sees_only_the_visible_tokens():
    model = tiny_mae()
    latent, mask, _ = model.forward_encoder(torch.randn(3, 3, 16, 16), 0.75, torch.Generator().manual_seed(1))
    assert latent.shape == (3, 1 + 4, 192) and mask.shape == (3, 16)


def test_loss_falls_on_a_tiny_dataset():
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images[:64], dtype=torch.float32)[:, None] / 16
    images = torch.nn.functional.interpolate(images, size=16).expand(-1, 3, -1, -1)
    torch.manual_seed(0)
    objective = MAE(tiny_mae().encoder, 3, torch.Generator().manual_seed(0), mask_ratio=0.5, decoder_dim=32,
                    decoder_depth=1)
    optimizer = torch.optim.AdamW(objective.model.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        loss = objective(images, torch.zeros(64, dtype=torch.long)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.75 * losses[0]  # measured: 0.99 -> 0.60


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mae") / "run"
    summary = pretrain(data="digits", epochs=2, batch_size=128, model_args={"depth": 2}, knn_memory=300,
                       eval_every=1, method_args={"decoder_dim": 32, "decoder_depth": 1}, out=str(run))
    return run, summary


def test_pretraining_run_writes_its_record(mae_run):
    run, summary = mae_run
    assert summary["images"] == 1438 and 0 < summary["knn_acc"] <= 1  # every training image, no labels
    assert 0 < summary["knn_acc_at_init"] <= 1 and (run / "knn_at_init.json").is_file()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [("knn_acc" in line) for line in lines] == [True, True] and "train_acc" not in lines[0]
    assert (run / "reconstructions.png").stat().st_size > 1000


def test_encoder_weights_round_trip_into_a_classifier(mae_run, tmp_path):
    from safetensors.torch import load_file

    run, _ = mae_run
    classifier = create_model("vit-tiny", num_classes=10, in_chans=1, img_size=(8, 8), depth=2)
    report = load_init(classifier, run)
    saved = load_file(str(run / "checkpoint" / "model.safetensors"))
    assert torch.equal(classifier.state_dict()["blocks.1.mlp.fc2.weight"], saved["encoder.blocks.1.mlp.fc2.weight"])
    assert torch.equal(classifier.state_dict()["pos_embed"], saved["encoder.pos_embed"])
    assert report[0].startswith(f"loaded {len(classifier.state_dict()) - 2} of {len(classifier.state_dict())}")
    assert any("decoder" in line for line in report) and any("head.weight" in line for line in report)
    summary = train(data="digits", labels=200, model="vit-tiny", model_args={"depth": 2}, epochs=1,
                    init=str(run), layer_decay=0.75, out=str(tmp_path / "ft"))
    assert summary["init"] == str(run) and summary["layer_decay"] == 0.75


def test_linear_probe_trains_the_head_only(mae_run, tmp_path):
    from safetensors.torch import load_file

    run, _ = mae_run
    summary = train(data="digits", labels=200, model="vit-tiny", model_args={"depth": 2}, epochs=2, init=str(run),
                    linear_probe=True, out=str(tmp_path / "probe"))
    assert any("linear probe: only head.weight, head.bias train" in line for line in summary["init_report"])
    before = load_file(str(run / "checkpoint" / "model.safetensors"))
    after = load_file(str(tmp_path / "probe" / "checkpoint" / "model.safetensors"))
    assert torch.equal(after["blocks.0.attn.qkv.weight"], before["encoder.blocks.0.attn.qkv.weight"])
    assert not torch.equal(after["head.weight"], create_model("vit-tiny", 10, 1, (8, 8), depth=2).head.weight)


@pytest.mark.parametrize("settings, message", [
    ({"method": "simclr"}, "unknown pretraining method 'simclr'"),
    ({"augment": "strong"}, "pretraining reads no labels"),
    ({"mask_ratio": 1.0}, "setting 'mae.mask_ratio' must be > 0 and < 1"),
])
def test_pretraining_usage_errors(tmp_path, settings, message):
    with pytest.raises(UsageError, match=message):
        pretrain(data="digits", epochs=1, out=str(tmp_path / "run"), **settings)


def test_fine_tuning_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="give the features with --init"):
        train(data="digits", epochs=1, linear_probe=True, out=str(tmp_path / "a"))
    with pytest.raises(UsageError, match="is neither a lowdata run directory, a weights file"):
        train(data="digits", epochs=1, init=str(tmp_path / "missing"), out=str(tmp_path / "b"))


def test_methods_are_found_by_registration_alone():
    # a fresh interpreter: "mae" and "dino" are registered by their own files, found by discovery, never imported
    script = ("from lowdata.objectives.base import OBJECTIVES, load_methods, method_names\n"
              "assert 'mae' not in OBJECTIVES\n"
              "load_methods()\n"
              "assert 'mae' in OBJECTIVES and method_names(reads_labels=False) == ['dino', 'mae']\n"
              "assert 'mae' not in method_names(reads_labels=True)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]


def test_distillation_from_a_teacher_into_an_mae_initialised_student(mae_run, tmp_path):
    run, _ = mae_run
    teacher = tmp_path / "teacher"
    train(data="digits", labels=200, model="resnet20", epochs=2, out=str(teacher))
    summary = train(data="digits", labels=200, model="vit-tiny", model_args={"depth": 2}, epochs=1, init=str(run),
                    teacher=str(teacher), augment="strong", out=str(tmp_path / "student"))
    assert summary["distill"] == "hard" and summary["init"] == str(run)
    assert summary["init_report"][0].startswith("loaded 30 of 32 tensors")


def test_mask_ratio_and_norm_pix_loss_are_maes_own_settings(tmp_path):
    from lowdata.config import PretrainConfig, field_names
    from lowdata.objectives import build_config

    assert "mask_ratio" not in field_names(PretrainConfig) and "norm_pix_loss" not in field_names(PretrainConfig)
    # the top-level names of older configs and scripts land in the mae section, range-checked on the way
    config = build_config(PretrainConfig, {"mask_ratio": 0.6, "norm_pix_loss": False,
                                           "method_args": {"decoder_depth": 1}})
    assert config.sections["mae"] == {"mask_ratio": 0.6, "norm_pix_loss": False, "decoder_depth": 1}
    with pytest.raises(UsageError, match="setting 'mae.mask_ratio' must be > 0 and < 1"):
        pretrain(data="digits", epochs=1, method_args={"mask_ratio": 1.0}, out=str(tmp_path / "run"))
