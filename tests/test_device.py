import json

import pytest
import torch

from lowdata import device as device_module
from lowdata.device import Precision, cpu_native_bf16, pick_precision, probed_cpu_precision
from lowdata.errors import UsageError

CPU = torch.device("cpu")
ZEN4_FLAGS = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
AVX2_FLAGS = "processor\t: 0\nflags\t\t: fpu sse avx avx2 fma f16c\n"
SAPPHIRE_RAPIDS_FLAGS = "flags\t\t: avx512f amx_tile amx_bf16 amx_int8\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve bf16 i8mm\n"
GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1\n"


@pytest.mark.parametrize("cpuinfo, native", [(ZEN4_FLAGS, True), (AVX2_FLAGS, False), (SAPPHIRE_RAPIDS_FLAGS, True),
                                             (GRAVITON3, True), (GRAVITON2, False), ("model name : ?\n", None)])
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert cpu_native_bf16(cpuinfo) is native


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_picks_bf16_only_where_the_cpu_runs_it_natively(monkeypatch, native, expected):
    monkeypatch.setattr(device_module, "cpu_native_bf16", lambda: native)
    monkeypatch.setattr(device_module, "bf16_speedup", lambda: pytest.fail("flags were conclusive: no probe"))
    picked = pick_precision("auto", CPU)
    assert picked.name == expected
    assert ("native bf16" in picked.reason) and (("no native" in picked.reason) == (not native))


def test_inconclusive_flags_ask_a_timed_probe_once_and_cache_its_answer(monkeypatch, tmp_path):
    monkeypatch.setattr(device_module, "cpu_native_bf16", lambda: None)
    calls = []
    monkeypatch.setattr(device_module, "bf16_speedup", lambda: calls.append(1) or 3.0)
    first = pick_precision("auto", CPU)
    second = pick_precision("auto", CPU)
    assert first == second and first.name == "bf16" and "3.0x" in first.reason
    assert len(calls) == 1
    monkeypatch.setattr(device_module, "bf16_speedup", lambda: 0.05)  # an emulating CPU
    assert probed_cpu_precision(tmp_path / "probe.json").name == "fp32"
    assert list(json.loads((tmp_path / "probe.json").read_text()).values()) == [0.05]


def test_explicit_precisions_are_kept_and_unknown_ones_refused():
    assert pick_precision("fp32", CPU) == Precision("fp32", "asked for")
    assert pick_precision("bf16", CPU).name == "bf16"
    with pytest.raises(UsageError, match="unknown precision 'half'.*auto, bf16, fp16, fp32"):
        pick_precision("half", CPU)


def test_autocast_and_loss_scaling_follow_the_precision():
    x = torch.randn(4, 8)
    with Precision("bf16", "").autocast(CPU)():
        assert (x @ x.T).dtype == torch.bfloat16
    with Precision("fp32", "").autocast(CPU)():
        assert (x @ x.T).dtype == torch.float32
    assert Precision("fp16", "").grad_scaler(CPU).is_enabled()
    assert not Precision("bf16", "").grad_scaler(CPU).is_enabled()


def test_the_probe_measures_a_ratio():
    assert device_module.bf16_speedup(size=32, rows=32, repeats=1) > 0
