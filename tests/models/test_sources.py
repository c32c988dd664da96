import pickle

import pytest

from lowdata.errors import UsageError
from lowdata.models.sources import read_weights


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_pickle_carrying_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"fc.weight": Payload()}, handle)
    with pytest.raises(UsageError, match="refused"):
        read_weights(path)


def test_a_code_carrying_pickle_is_refused_naming_what_it_would_run(tmp_path):
    import os

    import pytest

    from lowdata.errors import UsageError
    from lowdata.models.sources import read_weights

    class Runs:
        def __reduce__(self):
            return (os.getcwd, ())

    import torch

    path = tmp_path / "evil.pt"
    torch.save({"weight": Runs()}, path)
    with pytest.raises(UsageError) as caught:
        read_weights(path)
    message = str(caught.value)
    assert "a pickle that would run code (it names posix.getcwd)" in message or "(it names os.getcwd)" in message
    assert message.endswith("save a plain state dict or safetensors") and "\n" not in message


def test_init_reads_a_runs_timm_folder(tmp_path):
    import torch

    import lowdata
    from lowdata.models.sources import read_source, source_kind
    from lowdata.rundir import read_run_weights

    run = tmp_path / "run"
    lowdata.train(data="digits", labels=60, model="resnet20", epochs=1, batch_size=30, out=str(run))
    assert source_kind(str(run / "model")) == "timm-folder"
    state, report = read_source(str(run / "model"))
    expected = read_run_weights(run)
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    assert report == [f"read timm's folder format ({run / 'model'})"]
