import json
import subprocess
import sys

import pytest
import yaml

from lowdata.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "imagenet-1k"], "unknown dataset 'imagenet-1k'"),
    (["train", "--data", "digits", "--model", "vit-tinyy"], "unknown model 'vit-tinyy'"),
    (["train", "--data", "digits", "--labels", "100000"], "larger than the training split"),
    (["train", "--data", "digits", "--labels", "3"], "smaller than the number of classes"),
    (["train", "--data", "/nonexistent/images"], "does not exist"),
    (["train", "--data", "digits", "lrr=0.1"], "unknown setting 'lrr'"),
    (["train", "--data", "digits", "epochs"], "key=value"),
    (["train", "--data", "digits", "--augment", "strong", "augment_args.mixupp=0.1"], "has no setting mixupp"),
    (["train", "--data", "digits", "--augment", "heavy"], "unknown augmentation policy 'heavy'"),
    (["train", "--data", "digits", "optim_args.lr=1"],
     "only model_args, augment_args, distill, drloc, ema_teacher, guidance, masked, supervised take a dotted key"),
    (["eval", "--checkpoint", "/nonexistent/run"], "no checkpoint"),
    (["train", "--epochs", "1"], "give --data: NAME[:PATH]"),  # no silent demo on digits
])
def test_usage_errors_are_one_line_with_status_2(capsys, tmp_path, argv, message):
    code, out, err = run_cli(capsys, *argv, *(["--out", str(tmp_path / "run")] if argv[0] == "train" else []))
    assert code == 2
    assert message in err
    assert err.startswith("lowdata: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing half-made


def test_unreadable_config_and_empty_image_folder(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    code, _, err = run_cli(capsys, "train", "--config", str(bad))
    assert code == 2 and "not valid YAML" in err
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "dog").mkdir(parents=True)
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "images"))
    assert code == 2 and "no images" in err


def test_train_then_eval(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("data: digits\nepochs: 3\nbatch_size: 64\nlabels: 300\n")
    run = tmp_path / "run"
    code, out, _ = run_cli(capsys, "train", "--config", str(config), "--epochs", "2", "--model", "resnet20",
                           "--out", str(run), "lr=2e-3", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["epochs"] == 2 and summary["labels"] == 300  # flag over YAML, YAML over default
    saved = (run / "config.yaml").read_text()
    assert "lr: 0.002" in saved and "epochs: 2" in saved
    code, out, _ = run_cli(capsys, "eval", "--run", str(run), "--device", "cpu", "--json")
    assert code == 0
    assert json.loads(out)["test_acc"] == pytest.approx(summary["test_acc"])
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", str(run))  # the old name still works
    lines = out.splitlines()  # as a person reads it: accuracy with the test count, classes, named confusion
    assert code == 0 and lines[0].startswith(f"test accuracy {summary['test_acc']:.1%} on 359 images, top-5 ")
    assert lines[1].startswith("per class: 0 ") and lines[2].startswith("confusion (rows: true class")
    assert len(lines) == 4 + 10 and lines[4].split()[0] == "0" and sum(map(int, lines[4].split()[1:])) > 0
    code, _, err = run_cli(capsys, "eval", "--checkpoint", str(run), "--data", "fashion-mnist:" + str(tmp_path))
    assert code == 2


def test_models_lists_presets_with_sizes(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    assert "vit-tiny" in out and "2.70M" in out and "resnet20" in out and "0.27M" in out
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:] if line.strip()}
    assert rows["cct-2/3x2"][0] == "0.28M" and rows["cct-7/3x1"][0] == "3.77M"
    # forward FLOPs at the input size: CCT-7/3x1's 256 tokens cost several times vit-tiny's 64
    assert 4 < float(rows["cct-7/3x1"][1]) / float(rows["vit-tiny"][1]) < 8
    code, out, _ = run_cli(capsys, "models", "--data", "digits")
    assert "digits: 8x8x1, 10 classes" in out and "cct-2/3x2" in out


def test_help_does_not_import_torch():
    script = "import sys; from lowdata.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    help_text = subprocess.run([sys.executable, "-m", "lowdata", "train", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--labels-per-class" in help_text and "key=value" in help_text
    flat = " ".join(help_text.split())  # the defaults, as the settings have them
    assert "training epochs (default: 30)" in flat and "(default: resnet20)" in flat and "(default: None)" not in flat


def test_augment_preview_writes_a_grid(capsys, tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    # the same names as `train`: --augment and augment_args.KEY=VALUE
    code, printed, err = run_cli(capsys, "augment-preview", "--data", "digits", "--augment", "3aug", "--out", str(out),
                                 "--images", "6", "--views", "2", "augment_args.mixup=0")
    assert code == 0 and "wrote" in printed and "solarize and blur only" in err
    width, height = Image.open(out).size
    assert width > height > 100  # 6 columns, 3 rows
    code, _, err = run_cli(capsys, "augment-preview", "--data", "digits", "--policy", "strong", "--out",
                           str(tmp_path / "x.png"), "mix=1")
    assert code == 2 and "has no setting mix" in err and not (tmp_path / "x.png").exists()


def test_settings_may_sit_between_flags(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", "digits", "classes=0,1,2", "--model", "resnet20",
                           "--epochs", "1", "--out", str(tmp_path / "run"), "batch_size=32", "eval_every=1")
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["classes"] == "0,1,2" and config["batch_size"] == 32 and config["eval_every"] == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "classes=0,1", "--epochs", "1", "stray"], "key=value"),
    (["train", "classes=0,1", "--epochs", "1", "lrr=2"], "unknown setting 'lrr'"),
])
def test_settings_after_flags_are_checked_like_the_rest(capsys, tmp_path, argv, message):
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "run"))
    assert code == 2 and message in err and not (tmp_path / "run").exists()


def test_unknown_flag_is_still_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", "digits", "classes=0,1", "--epokhs", "1", "x=1"])
    assert stop.value.code == 2
    assert "--epokhs" in capsys.readouterr().err


def test_version_and_train_says_where_its_run_went(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out.startswith("lowdata 0.")
    code, out, err = run_cli(capsys, "train", "--data", "digits", "--labels", "100", "--epochs", "1",
                             "--out", str(tmp_path / "r"))
    assert code == 0 and f"run written to {tmp_path / 'r'}" in err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())  # the end: key figures, not the summary
    assert out == (f"test accuracy {summary['test_acc']:.1%}, top-5 {summary['test_top5_acc']:.1%}, training "
                   f"accuracy {summary['train_acc']:.1%} (resnet20, 100 labels, 1 epoch, "
                   f"{summary['train_seconds'] / 60:.1f} min)\n")


@pytest.mark.parametrize("argv", [["train", "--bogus"], ["predict", "--run", "x", "a.png", "--top", "2", "--nope"],
                                  ["study", "--out", "x", "--jobz", "2"]])
def test_a_wrong_flag_after_a_subcommand_points_to_that_subcommands_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"lowdata {argv[0]}: error: unrecognized arguments") and f"`lowdata {argv[0]} --help`" in err


def test_a_yaml_tag_that_would_run_code_is_refused_and_runs_nothing(capsys, tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"lr: !!python/object/apply:os.system ['touch {tmp_path}/PWNED']\n")
    code, _, err = run_cli(capsys, "train", "--config", str(evil), "--out", str(tmp_path / "run"))
    assert code == 2 and "uses a YAML tag lowdata does not load at line 1" in err
    assert not (tmp_path / "PWNED").exists()


def test_the_api_is_listed_though_it_loads_on_first_use():
    import subprocess
    import sys

    script = ("import sys, lowdata\nnames = dir(lowdata)\n"
              "assert {'train', 'pretrain', 'run_study', 'predict', 'export', 'load_run'} <= set(names), names\n"
              "assert 'torch' not in sys.modules\n")  # listing loads nothing
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]


def test_the_api_has_a_quiet_switch(tmp_path, capsys):
    import lowdata

    with lowdata.quiet():
        lowdata.train(data="digits", labels=50, epochs=2, out=str(tmp_path / "run"))
    said = capsys.readouterr().err
    assert " epoch 1/2" not in said and "lowdata: data: digits" in said


def test_eval_text_of_fewer_than_five_classes_has_no_top5():
    from lowdata.cli.runs import evaluation_text

    result = {"test_acc": 0.5, "test_top5_acc": None, "test_images": 4, "model": "m", "dataset": "photos",
              "per_class_acc": {"cat": 0.5, "dog": 0.5}, "confusion": [[1, 1], [1, 1]]}
    assert evaluation_text(result).splitlines()[0] == "test accuracy 50.0% on 4 images (m, photos)"
