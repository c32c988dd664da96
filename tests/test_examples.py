import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.mark.slow  # a minute on 2 cores: the default suite keeps the digits example end to end
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
    assert (tmp_path / "out" / "runs.log").read_text().count("test accuracy ") == 6  # the source and 5 targets
    assert "init: new head for 4 classes (the source's head had 6 outputs)" in done.stderr


def test_the_digits_example_goes_end_to_end(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "digits_end_to_end.py"), str(tmp_path)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("test accuracy with 200 labels: resnet20 ")
    assert lines[1].startswith("- With 50 labels, use **")
    assert [line.split(":")[0] for line in lines[2:7]] == [f"digit-{i}.png" for i in range(5)]
    assert json.loads(lines[-1])["max_abs_diff"] < 1e-4  # the export gives the run's own logits
    assert (tmp_path / "study" / "report.html").is_file() and (tmp_path / "cnn-timm" / "config.json").is_file()
