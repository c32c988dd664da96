"""Feature guidance (locality guidance): the ViT's tokens regress a frozen CNN's normalised feature maps."""
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lowdata import train
from lowdata.data import DatasetInfo
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.config import TrainConfig
from lowdata.objectives.guidance import FeatureGuidance, evenly, guide_stages
from lowdata.objectives.supervised import Supervised
from lowdata.objectives.terms import WithTerms, carry_terms

GUIDED = dict(data="digits", labels=100, epochs=3, batch_size=32, model="vit-tiny", model_args={"depth": 3},
              threads=1)


class Grid(nn.Module):
    """The student's token-grid attributes the guidance reads."""

    def dynamic_feat_size(self, size):
        return (2, 2)


class TinyStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_dim, self.num_prefix_tokens, self.patch_embed = 3, 1, Grid()
        self.blocks = nn.ModuleList([nn.Identity()])

    def forward(self, tokens):
        return self.blocks[0](tokens)


class FixedGuide(nn.Module):
    def __init__(self, maps):
        super().__init__()
        self.maps, self.weight = maps, nn.Parameter(torch.zeros(()))

    def forward_intermediates(self, images, indices=None, intermediates_only=True):
        return [self.maps[i] for i in indices]


def test_the_guidance_term_against_a_closed_form():
    guide_map = torch.tensor([[[[0.0, 2.0], [0.0, 2.0]]]])  # mean 1, variance 1: normalised to -1, 1, -1, 1
    guidance = FeatureGuidance(TinyStudent(), FixedGuide([None, guide_map]), blocks=[0], stages=[1], channels=[1],
                               weight=2.5)
    with torch.no_grad():
        guidance.projections[0].weight.fill_(1.0)  # the map: the sum of the token's three features
        guidance.projections[0].bias.zero_()
    tokens = torch.zeros(1, 5, 3)  # a prefix token, then a 2 x 2 grid
    tokens[0, 1:, 0] = torch.tensor([1.0, 0.0, 0.0, 3.0])
    with guidance.capturing():
        guidance.student[0](tokens)
    loss, logs = guidance.loss(torch.zeros(1, 1, 4, 4), labelled=1)
    target = torch.tensor([-1.0, 1.0, -1.0, 1.0]) / (1 + 1e-5) ** 0.5  # layer norm's epsilon
    expected = 2.5 * ((torch.tensor([1.0, 0.0, 0.0, 3.0]) - target) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("name, extra", [("vit-tiny", {}), ("cct-2/3x2", {}), ("vit-tiny-convstem", {}),
                                         ("vit-tiny-sl", {}), ("vit-tiny", {"distilled": True})])
def test_every_vit_family_preset_is_guided_and_trains_the_projections(name, extra):
    info = DatasetInfo("t", tuple("abc"), 3, (32, 32), True, (0.5,) * 3, (0.2,) * 3)
    guide = create_model("resnet20", 3, 3, (32, 32))
    student = create_model(name, 3, 3, (32, 32), **extra)
    stages, channels = guide_stages(guide, info, "guide")
    assert stages == [1, 2, 3] and channels == [16, 32, 64]  # resnet20's three stages, not its stem
    count = min(len(student.blocks), 3)
    guidance = FeatureGuidance(student, guide, evenly(len(student.blocks), 3), stages[3 - count:], channels[3 - count:],
                               1.0)
    objective = WithTerms(Supervised(student, 0.1), [guidance])
    if extra:
        student.set_distilled_training(False)
    out = objective(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    assert torch.isfinite(out.loss) and out.logs["guide_loss"] > 0
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in guidance.projections.parameters())
    assert guide.weight.grad is None if hasattr(guide, "weight") else True
    assert all(p.grad is None for p in guide.parameters())  # the guide is frozen
    assert not student.blocks[0]._forward_hooks  # hooks live for one forward pass only


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    out = tmp_path_factory.mktemp("guide") / "resnet20"
    train(data="digits", labels=100, epochs=2, batch_size=32, model="resnet20", out=str(out))
    return str(out)


def test_a_guided_run_resumes_bit_for_bit_with_its_projections(tmp_path, guide):
    straight = train(out=str(tmp_path / "straight"), guide=guide, **GUIDED)
    assert straight["guide_blocks"] == [0, 1, 2] and straight["guide_stages"] == [1, 2, 3]
    assert straight["guide_layout"] in ("channels_last", "contiguous")
    assert train(out=str(tmp_path / "resumed"), guide=guide, stop_after_epoch=1, **GUIDED) is None
    train(out=str(tmp_path / "resumed"), resume=True)
    a = load_file(tmp_path / "straight" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert set(a) == set(create_model("vit-tiny", 10, 1, (8, 8), depth=3).state_dict())  # no projections exported


def test_guidance_on_the_pool_reads_no_pool_label(tmp_path, guide, scramble_pool_labels):
    settings = dict(guide=guide, teacher=guide, pool="all", guide_on="pool", **GUIDED)
    train(out=str(tmp_path / "clean"), **settings)
    scramble_pool_labels()
    train(out=str(tmp_path / "wrong"), **settings)
    a = load_file(tmp_path / "clean" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "wrong" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_guide_that_cannot_guide_is_one_line(tmp_path, guide, image_folder_writer):
    with pytest.raises(UsageError, match="guides a ViT-family student's tokens; 'resnet20' has none"):
        train(out=str(tmp_path / "a"), guide=guide, **{**GUIDED, "model": "resnet20", "model_args": {}})
    folder = image_folder_writer(tmp_path / "photos")  # 3-channel 12 x 12
    colour = tmp_path / "colour-guide"
    train(data=str(folder), epochs=1, model="resnet20", out=str(colour))
    with pytest.raises(UsageError, match="trained on 3-channel 12x12 images, the student gets 1-channel 8x8 ones"):
        train(out=str(tmp_path / "b"), guide=str(colour), **GUIDED)
    info = DatasetInfo("t", ("a", "b"), 1, (8, 8), False, (0.5,), (0.2,))
    with pytest.raises(UsageError, match="gives no spatial feature maps"):
        guide_stages(nn.Linear(64, 2), info, "a-linear-model")
    with pytest.raises(UsageError, match="guide_blocks must list increasing block indices from 0 to 2"):
        train(out=str(tmp_path / "c"), guide=guide, guide_blocks="2,0", **GUIDED)


def test_a_guide_trained_on_other_classes_still_guides(tmp_path):
    other = tmp_path / "five"
    train(data="digits", classes="0,1,2,3,4", labels=50, epochs=1, model="resnet20", out=str(other))
    summary = train(out=str(tmp_path / "student"), guide=str(other), **{**GUIDED, "epochs": 1})
    assert summary["guide_stages"] == [1, 2, 3]
    plain = Supervised(nn.Linear(2, 2))  # without a guidance section the method carries no term
    assert carry_terms(plain, {}, TrainConfig(), None, None, None, None) == (plain, {})
