"""Atomic writers: files a teammate can read (the umask decides), and a full disk or a file-size limit said in one
line with the previous version kept."""
import os
import subprocess
import sys
import textwrap

import pytest

from lowdata.io import atomic_write_text, check_writable, make_temp_dir, storage_full
from lowdata.errors import UsageError


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_files_and_temp_folders_follow_the_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "summary.json", "{}")
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o644
    assert make_temp_dir(tmp_path, ".t-").stat().st_mode & 0o777 == 0o755
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.json", "{}")
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


def test_a_training_runs_files_are_readable_by_the_group(tmp_path, umask_022):
    import lowdata

    out = tmp_path / "run"
    lowdata.train(data="digits", labels=50, model="vit-tiny", model_args={"depth": 1}, epochs=1, batch_size=25,
                  out=str(out))
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in out.rglob("*")}
    files = {name: mode for name, mode in modes.items() if (out / name).is_file()}
    folders = {name: mode for name, mode in modes.items() if (out / name).is_dir()}
    assert {"summary.json", "config.yaml", "checkpoint/state.safetensors", "model/model.safetensors"} <= set(files)
    assert set(files.values()) == {0o644}, files
    assert set(folders.values()) == {0o755}, folders


def test_storage_full_reads_os_and_safetensors_errors():
    import errno

    from safetensors import SafetensorError

    assert storage_full(OSError(errno.ENOSPC, "No space left on device")) == "disk full"
    assert "ulimit" in storage_full(OSError(errno.EFBIG, "File too large"))
    assert storage_full(SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"
                                        )) == "disk full"
    assert storage_full(SafetensorError("Error while deserializing header: HeaderTooLarge")) is None
    assert storage_full(OSError(errno.EACCES, "Permission denied")) is None


def test_a_file_size_limit_while_checkpointing_is_one_line_and_keeps_the_checkpoint(tmp_path):
    """The real writer under `ulimit -f`: safetensors raises for EFBIG; the old checkpoint must survive."""
    script = textwrap.dedent(f"""
        import resource, sys, torch
        from pathlib import Path
        from lowdata.training.state import TrainingState, save_checkpoint
        from lowdata.errors import UsageError
        run = Path({str(tmp_path)!r})
        small, big = torch.nn.Linear(2, 2), torch.nn.Linear(600, 600)
        state = TrainingState(1, 1, {{}}, {{}})
        save_checkpoint(run, small, torch.optim.SGD(small.parameters(), lr=0.1), None, state, {{}})
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            save_checkpoint(run, big, torch.optim.SGD(big.parameters(), lr=0.1), None, state, {{}})
        except UsageError as err:
            print("USAGE:", err)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "USAGE: file too large" in result.stdout, result.stdout + result.stderr
    from safetensors.torch import load_file

    assert load_file(str(tmp_path / "checkpoint" / "model.safetensors"))["weight"].shape == (2, 2)
    assert not list(tmp_path.glob(".checkpoint.tmp-*"))


def test_check_writable_names_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "out.csv", "--out")
    check_writable(tmp_path / "new" / "deeper" / "out.csv", "--out")  # creatable: no error


def test_os_errors_about_a_named_file_are_one_line_and_others_stay_tracebacks(monkeypatch, capsys):
    import errno

    from lowdata import cli
    from lowdata.cli import runs

    def fail(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/shared/runs/x/summary.json")

    monkeypatch.setattr(runs, "export_command", fail)
    assert cli.main(["export", "--run", "r"]) == 2
    assert capsys.readouterr().err.strip() == ("lowdata: error: cannot write or read /shared/runs/x/summary.json: "
                                               "permission denied; fix the path or its permissions and run again")

    def other(args):
        raise OSError(errno.ECONNRESET, "Connection reset")

    monkeypatch.setattr(runs, "export_command", other)
    with pytest.raises(OSError):
        cli.main(["export", "--run", "r"])


def test_cache_updates_wait_for_each_other_and_keep_every_entry(tmp_path):
    import fcntl
    import json
    import threading
    import time

    from lowdata.io import atomic_write_json, update_cache

    path = tmp_path / "rates.json"
    update_cache(path, lambda entries: entries.update(first=1))
    holder = open(path.with_name(path.name + ".lock"), "a")
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process in the middle of its read-modify-write
    writer = threading.Thread(target=update_cache, args=(path, lambda entries: entries.update(second=2)))
    writer.start()
    time.sleep(0.3)
    assert writer.is_alive() and json.loads(path.read_text()) == {"first": 1}  # it waits, it does not overwrite
    atomic_write_json(path, {"first": 1, "other": 3})  # what the holder wrote
    holder.close()
    writer.join(5)
    assert json.loads(path.read_text()) == {"first": 1, "other": 3, "second": 2}


def test_a_cached_measurement_keeps_the_first_answer_and_survives_a_folder_it_cannot_write(tmp_path):
    import json

    from lowdata.io import cached_measurement

    path = tmp_path / "probe.json"
    assert cached_measurement(path, "cpu", lambda: 1.234) == 1.23
    assert cached_measurement(path, "cpu", lambda: 9.0) == 1.23  # read, not measured again
    assert json.loads(path.read_text()) == {"cpu": 1.23}

    def raced(path=path):  # another process measures the same key while this one does: its answer, written first, wins
        path.write_text(json.dumps({"cpu": 1.23, "gpu": 5.0}))
        return 7.0

    assert cached_measurement(path, "gpu", raced) == 5.0 and json.loads(path.read_text())["gpu"] == 5.0
    blocked = tmp_path / "file" / "probe.json"  # its folder cannot be made: a file is in the way
    (tmp_path / "file").write_text("")
    assert cached_measurement(blocked, "cpu", lambda: 2.0) == 2.0
