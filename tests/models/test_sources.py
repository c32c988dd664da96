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

