import pytest
import torch

from lowdata.models import create_model
from lowdata.training.optim import budget_batch, build_optimizer, build_schedule


def test_no_weight_decay_on_norms_biases_and_position_embeddings():
    model = create_model("vit-tiny", 10, 3, (32, 32), depth=2)
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05)
    assert isinstance(optimizer, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    plain = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {"pos_embed", "cls_token", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias"} <= plain
    assert {"blocks.0.attn.qkv.weight", "patch_embed.proj.weight", "head.weight"} <= decayed
    assert decayed | plain == set(names.values())


def test_cosine_schedule_with_linear_warmup():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = build_schedule(optimizer, total_steps=100, warmup_steps=10, min_lr=1e-5)
    lrs = []
    for step in range(100):
        schedule.step_update(num_updates=step)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-5)
    assert lrs[:10] == sorted(lrs[:10])  # rising
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[10:] == sorted(lrs[10:], reverse=True)  # falling
    assert lrs[55] == pytest.approx((1e-3 + 1e-5) / 2, rel=0.05)  # halfway down the cosine
    assert lrs[-1] < 2e-5


def test_layer_decay_assigns_the_expected_learning_rates():
    model = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(16, 16), depth=3)
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    schedule = build_schedule(optimizer, total_steps=100, warmup_steps=0, min_lr=0.0)
    schedule.step_update(num_updates=0)
    rates = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            rates[next(n for n, p in model.named_parameters() if p is param)] = group["lr"]
    # timm's layers: 0 = embeddings, 1..3 = blocks, 4 = final norm and head
    assert rates["head.weight"] == pytest.approx(1e-3)
    assert rates["blocks.2.attn.qkv.weight"] == pytest.approx(1e-3 * 0.5)
    assert rates["blocks.0.mlp.fc1.weight"] == pytest.approx(1e-3 * 0.5 ** 3)
    assert rates["patch_embed.proj.weight"] == pytest.approx(1e-3 * 0.5 ** 4)


def test_a_run_shorter_than_its_warmup_still_decays_and_says_so(capsys):
    model = torch.nn.Linear(4, 2)
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.0)
    schedule = build_schedule(optimizer, total_steps=12, warmup_steps=30, min_lr=1e-5)
    rates = []
    for step in range(12):
        schedule.step_update(num_updates=step)
        rates.append(optimizer.param_groups[0]["lr"])
    assert "warm-up shortened from 30 to 2 steps" in capsys.readouterr().err
    assert max(rates) == pytest.approx(1e-3, rel=0.05) and rates[-1] < 0.2 * max(rates)


@pytest.mark.parametrize("setting, images, expected", [
    (128, 100, 25),    # one step an epoch at 128; four at 25
    (128, 48, 12), (128, 20, 10), (128, 6, 6),  # never below 8 unless the budget is smaller still
    (128, 300, 64), (128, 1_000, 128), (128, 50_000, 128),  # 1,000 labels keep their 8 steps an epoch
    (16, 100, 16),     # a setting that already gives enough steps is the user's
])
def test_tiny_budgets_get_a_batch_that_makes_an_epoch_several_steps(setting, images, expected):
    assert budget_batch(setting, images) == expected


def test_a_run_on_a_tiny_budget_says_its_batch_and_steps(tmp_path, capsys):
    from lowdata import train
    from lowdata.study.plan import epochs_for_steps
    from lowdata.config import TrainConfig

    summary = train(data="digits", labels=100, epochs=3, threads=1, model="resnet20", out=str(tmp_path / "r"),
                    val_fraction=0.0)
    assert summary["batch_size"] == 25 and summary["steps_per_epoch"] == 4 and summary["steps"] == 12
    assert ("batch 25 instead of 128: 100 training images make 1 step(s) an epoch at 128, 4 at 25 (3 epoch(s): 12 "
            "steps); a batch_size other than the default 128 is kept as set") in capsys.readouterr().err
    kept = train(data="digits", labels=100, epochs=1, threads=1, model="resnet20", out=str(tmp_path / "set"),
                 val_fraction=0.0, batch_size=64)
    assert kept["batch_size"] == 64 and kept["steps_per_epoch"] == 2  # a batch the user chose is theirs
    assert epochs_for_steps(120, 100, TrainConfig(val_fraction=0.0)) == 30  # the study counts the same steps
