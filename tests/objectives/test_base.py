import subprocess
import sys


def test_objectives_are_found_by_registration_alone():
    # a fresh interpreter: no method file is imported by name, each registers itself when discovered
    script = ("import torch\n"
              "from lowdata.config import TrainConfig\n"
              "from lowdata.objectives import OBJECTIVES, build_objective\n"
              "assert OBJECTIVES.names() == []\n"
              "objective, extra = build_objective('supervised', TrainConfig(label_smoothing=0.2), torch.nn.Linear(2, 2),"
              " None, torch.device('cpu'), None)\n"
              "assert type(objective).__name__ == 'Supervised' and objective.label_smoothing == 0.2 and extra == {}\n"
              "assert {'supervised', 'distill'} <= set(OBJECTIVES.names())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]


def test_train_and_pretrain_each_take_their_own_kind_of_method(tmp_path):
    import pytest
    import yaml

    from lowdata import pretrain, train
    from lowdata.errors import UsageError

    with pytest.raises(UsageError, match="unknown objective 'mae'; choose one of: .*supervised"):
        train(data="digits", epochs=1, objective="mae", out=str(tmp_path / "a"))
    with pytest.raises(UsageError, match="unknown pretraining method 'supervised'; choose one of: dino, mae"):
        pretrain(data="digits", epochs=1, method="supervised", out=str(tmp_path / "b"))
    train(data="digits", labels=50, model="resnet20", epochs=1, out=str(tmp_path / "c"))
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["objective"] == "supervised"  # resolved
