import json

import torch
from torch import nn

from lowdata import evaluate_run, export, predict, train
from lowdata.augment.tta import ViewAverage, shift, tta_views


def test_tta_is_the_mean_of_the_explicit_views_logits():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5)).eval()
    images = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        model(images)  # the lazy layer takes its size
        flipped = images.flip(-1)
        explicit = [images, shift(images, -2), shift(images, 2), flipped, shift(flipped, -2), shift(flipped, 2)]
        expected = torch.stack([model(view) for view in explicit]).mean(dim=0)
        assert torch.allclose(ViewAverage(model, flip=True)(images), expected, atol=1e-6)
        assert len(tta_views(images, flip=False)) == 3  # digits: no mirror


def test_shift_moves_the_content_and_reflects_the_border():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    down_right = shift(image, 2)
    assert torch.equal(down_right[0, 0, 2:, 2:], image[0, 0, :2, :2])  # content moved by 2 down and right
    assert torch.equal(shift(image, -2)[0, 0, :2, :2], image[0, 0, 2:, 2:])
    assert shift(image, 0).equal(image)


def test_a_run_with_tta_is_evaluated_and_predicted_with_it(tmp_path):
    out = tmp_path / "run"
    summary = train(data="digits", labels=200, model="resnet20", epochs=2, tta=True, out=str(out))
    assert summary["tta"] is True and summary["input"]["hflip"] is False
    assert evaluate_run(out)["test_acc"] == summary["test_acc"]  # eval averages the same views
    images = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    assert len(predict(out, images)) == 3
    exported = export(out, "torchscript", tmp_path / "m.pt")  # the network itself, without the views
    assert exported["max_abs_diff"] <= 1e-4
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= metrics[-1]["test_acc"] <= 1


def test_eval_turns_tta_on_or_off_for_a_finished_run(tmp_path, capsys):
    from lowdata.cli import main

    out = tmp_path / "run"
    summary = train(data="digits", labels=200, model="resnet20", epochs=2, out=str(out))
    assert evaluate_run(out)["test_acc"] == summary["test_acc"] and evaluate_run(out)["tta"] is False
    with_views = evaluate_run(out, tta=True)
    assert with_views["tta"] is True and with_views["test_acc"] != summary["test_acc"]
    assert main(["eval", "--run", str(out), "--tta", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["test_acc"] == with_views["test_acc"] and said["tta"] is True
