"""The GPU path: skipped where no CUDA device is present (the CPU suite covers the same code otherwise)."""
import pytest
import torch

from lowdata import evaluate_run, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("model", ["resnet20", "vit-tiny"])
def test_a_cuda_run_trains_resumes_and_evaluates(tmp_path, model):
    out = tmp_path / model
    settings = dict(data="digits", labels=500, model=model, epochs=6, batch_size=64, device="cuda", out=str(out))
    assert train(stop_after_epoch=3, **settings) is None
    summary = train(resume=True, **settings)
    assert summary["device"].startswith("cuda") and summary["precision"] in ("bf16", "fp16")
    assert summary["test_acc"] > 0.5  # ten classes: chance is 0.1
    assert evaluate_run(out, device="cuda")["test_acc"] == pytest.approx(summary["test_acc"], abs=1e-3)
    assert evaluate_run(out, device="cpu")["test_acc"] == pytest.approx(summary["test_acc"], abs=0.02)
