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
