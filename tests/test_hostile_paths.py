"""Issue 41, defect 4 and the timm copy: a path component over 255 bytes is one line in every command, and a
run's model/ folder changed or stale against its checkpoint is said when the run is used."""
import pytest

import lowdata
from lowdata.cli import main

LONG = "x" * 300  # over the 255 bytes a file name may have


@pytest.mark.parametrize("command", [
    ["train", "--data", "digits", "--epochs", "1", "labels=30", "--out", "{tmp}/" + LONG + "/run"],
    ["data", "check", "{tmp}/" + LONG],
    ["predict", "--run", "{tmp}/" + LONG, "{tmp}/" + LONG + ".png"],
    ["train", "--data", "{tmp}/" + LONG, "--epochs", "1"],
])
def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path, capsys, command):
    assert main([part.replace("{tmp}", str(tmp_path)) for part in command]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lowdata: error:") and len(err) < 600, err


def test_a_changed_or_stale_timm_copy_is_said_when_the_run_is_used(tmp_path, capsys):
    import shutil

    from safetensors.torch import load_file, save_file

    from lowdata.rundir import read_run_weights, timm_copy_problem

    out = tmp_path / "run"
    lowdata.train(data="digits", labels=60, model="resnet20", epochs=1, batch_size=30, out=str(out))
    assert timm_copy_problem(out, read_run_weights(out)) is None
    copy = tmp_path / "kept"
    shutil.copytree(out / "model", copy)
    weights = out / "model" / "model.safetensors"
    state = load_file(str(weights))
    first = next(iter(state))
    state[first] = state[first] + 1
    save_file(state, str(weights))
    assert timm_copy_problem(out, read_run_weights(out)) == "changed since lowdata wrote it"
    capsys.readouterr()
    lowdata.evaluate_run(out)
    assert "model is changed since lowdata wrote it; lowdata uses the checkpoint" in capsys.readouterr().err
