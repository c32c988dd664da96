import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_the_transfer_example_runs_every_step(tmp_path, image_folder_writer):
    # the 4 vehicle classes need 125 training images each for the 500-label target
    image_folder_writer(tmp_path / "cifar", classes=CIFAR_CLASSES, per_class=125, size=(32, 32))
    env = {**os.environ, "QUICK": "1", "LOWDATA": f"{sys.executable} -m lowdata", "OMP_NUM_THREADS": "2"}
    done = subprocess.run(["bash", str(ROOT / "examples" / "transfer_cifar10.sh"), str(tmp_path / "cifar"),
                           str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = ["target-100-probe", "target-100-scratch", "target-100-transfer", "target-500-scratch",
            "target-500-transfer"]
    assert [line.split()[0] for line in done.stdout.strip().splitlines()] == runs
    assert all((tmp_path / "out" / run / "summary.json").is_file() for run in runs)
    assert (tmp_path / "out" / "runs.log").read_text().count('"test_acc"') == 6  # the source and 5 targets
    assert "init: new head for 4 classes (the source's head had 6 outputs)" in done.stderr
