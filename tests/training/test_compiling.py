"""compile=auto: compile where this machine measured it faster for the setup and the run repays it."""
import json
import os

import pytest

from lowdata import train
from lowdata.errors import UsageError
from lowdata.io import cache_root
from lowdata.runs.compiling import CACHE_NAME, choose, record

KEY = "x86_64|AVX512|torch 2|resnet20|supervised|batch 32|bf16|2 threads"
TINY = dict(data="digits", labels=200, epochs=3, batch_size=32, model="resnet20")


def test_asked_for_decides_and_auto_needs_both_rates(tmp_path):
    cache = tmp_path / CACHE_NAME
    assert choose(True, KEY, 10, cache) == (True, "compiled, as asked (compile=true)")
    assert choose(False, KEY, 10**9, cache) == (False, "eager, as asked (compile=false)")
    compiled, reason = choose("auto", KEY, 10**9, cache)
    assert compiled is False and "not measured" in reason
    cache.write_text(json.dumps({KEY: {"eager": 100.0}}))  # eager alone: still unmeasured
    assert choose("auto", KEY, 10**9, cache)[0] is False


def test_auto_compiles_only_where_faster_and_repaid(tmp_path):
    cache = tmp_path / CACHE_NAME
    cache.write_text(json.dumps({KEY: {"eager": 100.0, "compiled": 80.0, "compile_seconds": 1.0}}))
    compiled, reason = choose("auto", KEY, 10**9, cache)
    assert compiled is False and "0.80x" in reason
    cache.write_text(json.dumps({KEY: {"eager": 100.0, "compiled": 150.0, "compile_seconds": 60.0}}))
    # 100,000 images: 1,000 s eager, a third of it saved = 333 s > 2 x 60 s of compiling
    compiled, reason = choose("auto", KEY, 100_000, cache)
    assert compiled is True and "1.50x" in reason and "333 s" in reason
    compiled, reason = choose("auto", KEY, 10_000, cache)  # 33 s saved < 120 s
    assert compiled is False and "would save 33 s for 60 s" in reason


def test_a_run_records_its_steady_rate_and_a_compiled_one_its_compile_seconds(tmp_path):
    cache = tmp_path / CACHE_NAME
    epochs = [{"epoch_seconds": 30.0, "images_per_second": 10.0}, {"epoch_seconds": 2.0, "images_per_second": 150.0},
              {"epoch_seconds": 4.0, "images_per_second": 75.0}, {"epoch_seconds": 2.0, "images_per_second": 150.0}]
    record(KEY, True, epochs, cache)
    record(KEY, False, [{"epoch_seconds": 3.0, "images_per_second": 100.0}] * 3, cache)
    record("other", False, epochs[:1], cache)  # one epoch has no steady rate: nothing kept
    assert json.loads(cache.read_text()) == {KEY: {"compiled": 150.0, "compile_seconds": 28.0, "eager": 100.0}}


def test_runs_record_their_rates_and_auto_reads_them(tmp_path, capsys):
    first = train(out=str(tmp_path / "a"), **TINY)
    assert first["compile"] is False and "not measured" in first["compile_reason"]
    assert "compile:" not in capsys.readouterr().err  # the common case says nothing
    assert "compile: false" in (tmp_path / "a" / "config.yaml").read_text()  # saved resolved: a resume keeps it
    path = cache_root() / CACHE_NAME
    rates = json.loads(path.read_text())
    (key, entry), = ((k, v) for k, v in rates.items() if "|resnet20|supervised|batch 32|" in k)
    assert entry["eager"] > 0 and f"{first['threads']} threads" in key
    rates[key].update(compiled=entry["eager"] / 2, compile_seconds=1.0)  # as a compiled run here would leave
    path.write_text(json.dumps(rates))
    second = train(out=str(tmp_path / "b"), **TINY)
    assert second["compile"] is False and "0.50x" in second["compile_reason"]
    assert "compile: eager: compiled ran 0.50x the eager rate" in capsys.readouterr().err


def test_compile_takes_true_false_or_auto(tmp_path):
    with pytest.raises(UsageError, match="'compile' must be true, false or auto, got 'sometimes'"):
        train(out=str(tmp_path / "run"), compile="sometimes", **TINY)


def test_compiled_code_goes_to_lowdatas_cache_unless_the_user_named_a_place(monkeypatch, tmp_path):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from lowdata.runs.compiling import share_inductor_cache

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what torch writes there itself
    share_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(cache_root() / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    share_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


def test_a_resumed_run_keeps_the_choice_it_started_with(tmp_path):
    assert train(out=str(tmp_path / "run"), stop_after_epoch=1, **TINY) is None
    resumed = train(out=str(tmp_path / "run"), resume=True)
    assert resumed["compile"] is False and resumed["compile_reason"] == "eager, as the run started"
