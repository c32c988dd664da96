import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from lowdata.training.distributed import Process


def test_ranks_draw_different_streams_from_one_shared_state():
    shared_a, shared_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    rank0 = Process(0, 2).rank_generator(shared_a)
    rank1 = Process(1, 2).rank_generator(shared_b)
    assert torch.equal(shared_a.get_state(), shared_b.get_state())  # the saved state stays the same on every rank
    assert not torch.equal(torch.rand(4, generator=rank0), torch.rand(4, generator=rank1))
    single = torch.Generator().manual_seed(3)
    assert Process().rank_generator(single) is single


def free_port() -> int:
    with socket.socket() as probe:  # a port no earlier test's rendezvous is still holding
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), *args]
    # a guard against a hung process group, far above what even a slow CPU needs (seconds here)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=3600)


def test_two_processes_under_torchrun_train_one_model(tmp_path):
    out = tmp_path / "run"
    done = torchrun(tmp_path, "-m", "lowdata", "train", "--data", "digits", "--labels", "300", "--model", "resnet20",
                    "--epochs", "8", "--batch-size", "64", "--repeated-aug", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    # one process with the same settings reached 0.64 (0.28 after 3 epochs)
    assert summary["processes"] == 2 and summary["test_acc"] > 0.45
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 8 * 5  # 150 images per rank, 32 per rank and step: 5 steps an epoch
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 8  # written once, by rank 0


RESUME_SCRIPT = """
import json, sys, torch
from safetensors.torch import load_file
from lowdata import train
settings = dict(data="digits", labels=200, model="vit-tiny", model_args={"depth": 1}, epochs=4, batch_size=32,
                augment="strong")
train(out="straight", **settings)
assert train(out="resumed", stop_after_epoch=2, **settings) is None
train(out="resumed", resume=True)
if torch.distributed.get_rank() == 0:
    a, b = load_file("straight/checkpoint/model.safetensors"), load_file("resumed/checkpoint/model.safetensors")
    json.dump({"identical": all(torch.equal(a[k], b[k]) for k in a)}, open("result.json", "w"))
"""


def test_resume_under_torchrun_continues_exactly(tmp_path):
    (tmp_path / "script.py").write_text(RESUME_SCRIPT)
    done = torchrun(tmp_path, "script.py")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "result.json").read_text()) == {"identical": True}


def test_replicas_that_drift_apart_are_caught(tmp_path):
    script = """
import torch, torch.distributed as dist
from lowdata.training.distributed import current_process
process = current_process()
model = torch.nn.Linear(2, 2)
torch.nn.init.constant_(model.weight, float(process.rank))  # as if each rank had trained alone
try:
    process.check_in_sync(model)
except RuntimeError as err:
    open(f"caught-{process.rank}.txt", "w").write(str(err))
"""
    (tmp_path / "drift.py").write_text(script)
    done = torchrun(tmp_path, "drift.py")
    assert done.returncode == 0, done.stderr[-2000:]
    for rank in (0, 1):  # every rank stops, not only the one that drifted
        assert "the DDP replicas' weights differ" in (tmp_path / f"caught-{rank}.txt").read_text()


def test_pool_distillation_under_torchrun(tmp_path):
    from lowdata import train

    train(data="digits", labels=100, epochs=2, batch_size=32, model="resnet20", out=str(tmp_path / "teacher"))
    done = torchrun(tmp_path, "-m", "lowdata", "train", "--data", "digits", "--labels", "100", "--model", "vit-tiny",
                    "--epochs", "2", "--batch-size", "32", "--teacher", str(tmp_path / "teacher"), "--distill", "soft",
                    "--pool", "500", "--out", str(tmp_path / "student"), "model_args.depth=1")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "student" / "summary.json").read_text())
    # 2 ranks x 16 labelled and 16 pool images a step, 4 steps an epoch (50 labelled images per rank)
    assert summary["processes"] == 2 and summary["pool_images"] == 500 and summary["pool_images_read"] == 2 * 4 * 32
