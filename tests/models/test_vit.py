import pytest
import torch

from lowdata.device import Precision
from lowdata.models import create_model
from lowdata.models.vit import use_fused_attention


@pytest.mark.parametrize("name", ["vit-tiny", "vit-tiny-sl"])  # timm's attention and locality attention
def test_attention_kernels_switch_without_changing_the_maths(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32), depth=2).eval()
    x = torch.randn(4, 3, 32, 32)
    assert use_fused_attention(model, True) == 2
    fused = model(x)
    assert use_fused_attention(model, False) == 2 and not model.blocks[0].attn.fused_attn
    torch.testing.assert_close(model(x), fused, rtol=1e-4, atol=1e-5)


def test_the_fused_kernel_is_used_where_it_is_fast():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert not Precision("bf16", "").fused_attention(cpu) and Precision("fp32", "").fused_attention(cpu)
    assert Precision("bf16", "").fused_attention(gpu) and Precision("fp16", "").fused_attention(gpu)
