"""Issue 41, defect 4: a path component over 255 bytes is one line in every command."""
import pytest

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

