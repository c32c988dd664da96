"""Issue 41, defect 7: weights that do not fit the model name the first tensors that differ (expected and
found shapes) and what to do, in eval, predict, export, --resume and a teacher's weights file."""
import pytest
import torch

import lowdata
from lowdata.cli import main
from lowdata.errors import UsageError
from lowdata.models.strict import load_exactly, mismatch


def test_mismatch_names_shapes_then_missing_then_extra_names():
    own = {"a.weight": torch.zeros(3, 2), "b.bias": torch.zeros(3)}
    found = {"a.weight": torch.zeros(4, 2), "c": torch.zeros(1)}
    assert mismatch(own, found) == ("a.weight is 4x2 in the file, 3x2 in the model; 1 missing from the file: "
                                    "b.bias; 1 not in the model: c")
    assert mismatch(own, dict(own)) is None
    many = {f"x{i}": torch.zeros(1) for i in range(5)}
    assert "5 not in the model: x0, x1 and 3 more" in mismatch({}, many)


def test_load_exactly_refuses_in_one_line_with_the_fix():
    with pytest.raises(UsageError) as caught:
        load_exactly(torch.nn.Linear(2, 3), {"weight": torch.zeros(3, 5), "bias": torch.zeros(3)}, "w.pt",
                     "give the right file")
    message = str(caught.value)
    assert "weight is 3x5 in the file, 3x2 in the model" in message and message.endswith("give the right file")
    assert "Error(s) in loading" not in message and "\n" not in message


@pytest.fixture(scope="module")
def tampered_run(tmp_path_factory):
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("strict") / "run"
    lowdata.train(data="digits", labels=60, model="resnet20", epochs=2, batch_size=30, out=str(out),
                  stop_after_epoch=1)
    path = out / "checkpoint" / "model.safetensors"
    state = load_file(str(path))
    key = next(k for k, v in state.items() if v.ndim == 2)  # the head
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    state["extra.tensor"] = torch.zeros(1)
    save_file(state, str(path))
    from lowdata.ledger import Ledger

    Ledger(path.parent).record_files()  # bytes lowdata wrote, for a model that changed since (an upgrade, say)
    return out, key


def test_resume_names_the_tensor_that_differs(tampered_run, capsys):
    out, key = tampered_run
    assert main(["train", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{key} is" in err and "in the file" in err and "extra.tensor" in err and "start a new run" in err


def test_a_teacher_weights_file_of_another_shape_names_it_and_the_fix(tampered_run, tmp_path, capsys):
    out, key = tampered_run
    assert main(["train", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "s"), "labels=30",
                 "--teacher", str(out / "checkpoint" / "model.safetensors"), "teacher_model=resnet20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{key} is" in err and "give weights of a resnet20 for 10 classes" in err
