"""The Ray backend on a local 2-CPU Ray instance: the same cells, the same results, each unit once."""
import csv
import json
import os
import signal
import socket
import threading
import time
from collections import Counter

import pytest

ray = pytest.importorskip("ray")

from lowdata.study.study import run_study  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def plan(tiny_study):
    # one thread per cell on both backends: the thread count changes floating-point sums
    return {**tiny_study, "settings": {**tiny_study["settings"], "threads": 1}}


def events(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def accuracies(out):
    rows = csv.DictReader((out / "results.csv").read_text().splitlines())
    return {row["cell"]: (row["test_acc"], row["steps"], row["train_acc"]) for row in rows}


def test_ray_runs_every_cell_once_with_the_local_backends_results(tmp_path, plan, local_ray):
    run_study(tmp_path / "local", **plan)
    fits = run_study(tmp_path / "ray", backend="ray", **plan)
    assert fits is not None and (tmp_path / "ray" / "report.md").is_file()
    starts = Counter(e["cell"] for e in events(tmp_path / "ray") if e["event"] == "start")
    assert len(starts) == 12 and set(starts.values()) == {1}
    assert accuracies(tmp_path / "ray") == accuracies(tmp_path / "local")


def test_local_and_ray_resume_each_others_studies(tmp_path, plan, local_ray):
    out = tmp_path / "study"
    assert run_study(out, max_cells=4, **plan) is None  # local, stopped after 4 cells
    assert run_study(out, backend="ray", max_cells=4, **plan) is None  # Ray takes 4 more
    assert run_study(out, **plan) is not None  # local finishes
    starts = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert len(starts) == 12 and set(starts.values()) == {1}
    workers = Counter(e["worker"] for e in events(out) if e["event"] == "done")
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert workers[here] == 8 and sum(workers.values()) == 12  # Ray's workers did the other 4


@pytest.mark.slow  # Ray's retry of a killed cell; the default suite runs Ray's plain and resumed studies
def test_a_killed_cell_is_retried_and_finishes_once(tmp_path, tiny_study, local_ray):
    out = tmp_path / "study"
    study = {**tiny_study, "recipes": ["cnn"], "seeds": [0], "budget_epochs": 40}
    target = "cnn-n120-s0"  # the longest cell: a short one can finish before the kill lands
    killed = {}

    def kill_the_longest_cell_mid_training():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            if (out / "events.jsonl").is_file():
                starts = [e for e in events(out) if e["event"] == "start" and e["cell"] == target]
                if starts:
                    time.sleep(0.5)  # into its training
                    if any(e["event"] == "done" and e["cell"] == target for e in events(out)):
                        return  # it finished first: the assertions below then fail and say so
                    killed[target] = starts[0]["worker"]
                    os.kill(int(starts[0]["worker"].split(":")[1]), signal.SIGKILL)
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_the_longest_cell_mid_training)
    watcher.start()
    fits = run_study(out, backend="ray", retries=2, **study)
    watcher.join()
    assert fits is not None and len(killed) == 1
    (cell,) = killed
    assert Counter(e["cell"] for e in events(out) if e["event"] == "start")[cell] == 2
    assert Counter(e["cell"] for e in events(out) if e["event"] == "done") == {c: 1 for c in ("cnn-n30-s0", "cnn-n60-s0", "cnn-n120-s0")}


def test_a_study_directory_a_node_cannot_write_is_named(tmp_path):
    from lowdata.errors import UsageError
    from lowdata.study.ray_backend import check_writable

    not_a_folder = tmp_path / "mount-missing"
    not_a_folder.write_text("")  # as a node sees a path that is not its shared folder; root can't write into it
    with pytest.raises(UsageError, match="cannot write the study directory .* storage every node sees"):
        check_writable(not_a_folder)
