import csv
import json

import pytest
import torch

from lowdata import evaluate_run, predict, train
from lowdata.cli import main
from lowdata.errors import UsageError


@pytest.fixture
def run(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "images", per_class=10)
    out = tmp_path / "run"
    train(data=str(root), model="vit-tiny", model_args={"depth": 1}, epochs=3, batch_size=8, out=str(out))
    return root, out


def test_predict_on_a_folder_agrees_with_eval(run):
    root, out = run
    results = predict(out, root / "test", top_k=2)
    assert len(results) == 15 and all(len(r["classes"]) == 2 for r in results)
    assert all(r["probabilities"][0] >= r["probabilities"][1] for r in results)
    correct = sum(r["classes"][0] == r["image"].split("/")[-2] for r in results)
    assert correct / len(results) == pytest.approx(evaluate_run(out)["test_acc"])


def test_predict_on_a_tensor_gives_the_same_classes_as_on_files(run):
    from lowdata.data.imagefolder import decode_all

    root, out = run
    files = sorted((root / "test").rglob("*.png"))
    from_files = predict(out, files)
    from_tensor = predict(out, decode_all(files, None))
    assert [r["classes"] for r in from_files] == [r["classes"] for r in from_tensor]


def test_predict_cli_writes_csv_and_json(run, tmp_path, capsys):
    root, out = run
    assert main(["predict", "--run", str(out), str(root / "test" / "cat"), "--top-k", "3",
                 "--out", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 5 and set(rows[0]) == {"image", "class", "probability", "class_2", "probability_2",
                                               "class_3", "probability_3"}
    assert main(["predict", "--run", str(out), str(root / "test" / "dog" / "000.png"), "--out",
                 str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())[0]["classes"][0] in ("cat", "dog", "frog")
    capsys.readouterr()
    assert main(["predict", "--run", str(out), str(root / "test" / "cat")]) == 0  # CSV on stdout
    assert capsys.readouterr().out.splitlines()[0] == "image,class,probability"
    assert main(["predict", "--run", str(tmp_path), str(root)]) == 2  # not a run
    assert main(["predict", "--run", str(out), str(tmp_path / "missing.png")]) == 2


def test_predict_refuses_a_float_tensor(run):
    with pytest.raises(UsageError, match="must be uint8"):
        predict(run[1], torch.zeros(1, 3, 12, 12))


def test_eval_on_a_folder_takes_it_whole_with_the_runs_statistics(run, tmp_path):
    import shutil

    root, out = run
    results = predict(out, root / "test")  # every test image, the run's preprocessing
    accuracy = sum(r["classes"][0] == r["image"].split("/")[-2] for r in results) / len(results)
    evaluated = evaluate_run(out, data=str(root / "test"))  # a plain class folder: no hold-out
    assert evaluated["test_images"] == 15 and evaluated["test_acc"] == pytest.approx(accuracy)
    two = tmp_path / "two"
    for name in ("dog", "frog"):  # fewer classes than the run learned: labels keep the run's indices
        shutil.copytree(root / "test" / name, two / name)
    subset = [r for r in results if r["image"].split("/")[-2] in ("dog", "frog")]
    expected = sum(r["classes"][0] == r["image"].split("/")[-2] for r in subset) / len(subset)
    assert evaluate_run(out, data=str(two))["test_acc"] == pytest.approx(expected)
    (two / "horse").mkdir()
    shutil.copy(root / "test" / "cat" / "000.png", two / "horse" / "000.png")
    with pytest.raises(UsageError, match="classes the run never learned \\(horse\\)"):
        evaluate_run(out, data=str(two))


def test_sixteen_bit_images_are_scored_as_the_run_scaled_its_data(tmp_path):
    """The bit depth's mapping is the run's (recorded in its summary), so an image's scores do not depend on
    which other images share the call."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 3)):
        for cls in ("a", "b"):
            (tmp_path / "deep" / split / cls).mkdir(parents=True)
            for i in range(count):
                array = rng.integers(0, 4096, (8, 8)).astype(np.uint16)  # 12-bit data in 16-bit files
                Image.fromarray(array).save(tmp_path / "deep" / split / cls / f"{i}.png")
    out = tmp_path / "run"
    train(data=str(tmp_path / "deep"), model="vit-tiny", model_args={"depth": 1}, epochs=1, batch_size=8, out=str(out))
    assert json.loads((out / "summary.json").read_text())["input"]["depth"] == {"integer_bits": 12}
    image = tmp_path / "deep" / "test" / "a" / "0.png"
    bright = tmp_path / "bright.png"
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(bright)
    alone = predict(out, [image], top_k=2)[0]
    beside = predict(out, [image, bright], top_k=2)[0]
    assert alone["probabilities"] == beside["probabilities"] and alone["classes"] == beside["classes"]


def test_predict_out_never_replaces_a_file_it_did_not_write(run, tmp_path, capsys):
    root, out = run
    mine = tmp_path / "notes.csv"
    mine.write_text("my,own,notes\n")
    assert main(["predict", "--run", str(out), str(root / "test"), "--out", str(mine)]) == 2
    assert "not a predictions file lowdata wrote" in capsys.readouterr().err and mine.read_text() == "my,own,notes\n"
    assert main(["predict", "--run", str(out), str(root / "test"), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["predict", "--run", str(out), str(root / "test"), "--out", str(mine / "p.csv")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    again = tmp_path / "p.json"
    assert main(["predict", "--run", str(out), str(root / "test"), "--out", str(again)]) == 0
    assert main(["predict", "--run", str(out), str(root / "test"), "--out", str(again)]) == 0  # its own file


def test_predict_eval_and_the_exports_agree_whatever_precision_the_run_trained_in(tmp_path):
    from lowdata import export
    from lowdata.data.datasets import load_dataset

    out = tmp_path / "bf16"
    summary = train(data="digits", labels=60, model="vit-tiny", model_args={"depth": 1}, epochs=1, threads=1,
                    precision="bf16", out=str(out))
    assert summary["precision"] == "bf16" and summary["inference_precision"] == "fp32"
    images = load_dataset("digits").test_images[:64]
    predicted = predict(out, images, top_k=10)
    program = torch.export.load(export(out, "export", tmp_path / "m.pt2")["path"]).module()
    mean, std = (torch.tensor(summary["input"][key]).view(1, -1, 1, 1) for key in ("mean", "std"))
    exported = program((images.float() / 255 - mean) / std).softmax(dim=1)
    for row, probabilities in zip(predicted, exported):
        by_class = dict(zip(row["classes"], row["probabilities"]))
        assert [by_class[name] for name in summary["classes"]] == pytest.approx(probabilities.tolist(), abs=1e-5)
