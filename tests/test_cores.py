import os
import subprocess
import sys

import json

import pytest
import torch

from lowdata import cores as cores_module
from lowdata.cores import CoreShare, usable_cores
from lowdata.errors import UsageError


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(cores_module, "usable_cores", lambda: 4)


@pytest.fixture
def other_process():
    """A live process standing for another lowdata training process on this host."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def test_usable_cores_follow_the_affinity():
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() <= len(os.sched_getaffinity(0))


def test_a_container_quota_caps_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 CPUs
    assert usable_cores(quota) == 2
    quota.write_text("max 100000\n")
    assert usable_cores(quota) == 4
    assert usable_cores(tmp_path / "missing") == 4


def test_alone_a_process_takes_every_core_and_restores_the_threads_after(tmp_path, four_cores):
    before = torch.get_num_threads()
    with CoreShare(folder=tmp_path) as share:
        assert (tmp_path / str(os.getpid())).is_file()
        assert share.choose() == 4 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    assert not list(tmp_path.iterdir())


def test_processes_on_one_host_share_the_cores(tmp_path, four_cores, other_process, monkeypatch):
    (tmp_path / str(other_process)).touch()  # another process is training
    with CoreShare(folder=tmp_path) as share:
        assert share.choose() == 2 == torch.get_num_threads()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun's ranks on this host, registered or not yet
    with CoreShare(folder=tmp_path) as share:
        assert share.choose() == 1


def test_a_resumed_run_keeps_the_threads_it_started_with(tmp_path, four_cores, other_process):
    (tmp_path / str(other_process)).touch()
    with CoreShare(folder=tmp_path) as share:
        assert share.choose(recorded=4) == 4


def test_finished_processes_are_forgotten(tmp_path, four_cores):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / done.stdout.strip()
    gone.touch()
    with CoreShare(folder=tmp_path) as share:
        assert share.choose() == 4
    assert not gone.exists()


def test_a_fixed_count_overrides_the_share_but_is_still_counted(tmp_path, four_cores):
    with CoreShare(fixed=1, folder=tmp_path) as share:
        assert share.choose() == 1 == torch.get_num_threads()
        assert (tmp_path / str(os.getpid())).is_file()
    with pytest.raises(UsageError, match="threads must be at least 1"):
        CoreShare(fixed=0)


def test_a_run_records_its_threads(tmp_path):
    from lowdata import train

    summary = train(data="digits", labels=100, epochs=1, batch_size=50, out=str(tmp_path / "run"), threads=1)
    assert summary["threads"] == 1
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["extra"]["threads"] == 1  # what a --resume continues with


def test_a_reused_pid_does_not_count_as_a_training_process(tmp_path, four_cores, other_process):
    from lowdata.cores import process_start

    (tmp_path / str(other_process)).write_text("1")  # registered by a process that started at tick 1: not this one
    with CoreShare(folder=tmp_path) as share:
        assert share.choose() == 4
    assert not (tmp_path / str(other_process)).exists()
    (tmp_path / str(other_process)).write_text(process_start(other_process))  # the process itself: it counts
    with CoreShare(folder=tmp_path) as share:
        assert share.choose() == 2


def test_a_stopped_process_holds_no_share_until_it_continues(tmp_path, four_cores, other_process):
    import signal
    import time

    (tmp_path / str(other_process)).touch()  # another training process, which the user pauses (Ctrl-Z)
    os.kill(other_process, signal.SIGSTOP)
    try:
        for _ in range(100):  # the kernel marks it stopped at once; /proc may show it a moment later
            if cores_module.process_stopped(other_process):
                break
            time.sleep(0.01)
        with CoreShare(folder=tmp_path) as share:
            assert share.choose() == 4 and share.live_processes() == [os.getpid()]
        assert (tmp_path / str(other_process)).exists()  # still registered: it counts again once continued
    finally:
        os.kill(other_process, signal.SIGCONT)
    with CoreShare(folder=tmp_path) as share:
        assert share.choose() == 2 and other_process in share.live_processes()
