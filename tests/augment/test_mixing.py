import torch

from lowdata.augment.mixing import MixupCutmix


def constant_batch(n=32):
    """Image i is the constant i, with label i % 10: where a pixel came from can be read off its value."""
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 12, 12).contiguous()
    return images, torch.arange(n) % 10


def test_cutmix_targets_match_the_pasted_area():
    images, labels = constant_batch()
    mixed, targets = MixupCutmix(10, mixup_alpha=0, cutmix_alpha=1.0)(images, labels, torch.Generator().manual_seed(0))
    n = len(images)
    for i in range(n):
        own = (mixed[i] == i).float().mean()
        partner = (mixed[i] == n - 1 - i).float().mean()
        assert torch.isclose(own + partner, torch.tensor(1.0))
        expected = torch.zeros(10)
        expected[labels[i]] += own
        expected[labels[n - 1 - i]] += partner
        assert torch.allclose(targets[i], expected, atol=1e-6)
    assert len({round(t.max().item(), 4) for t in targets}) > 5  # a box per image, not one per batch


def test_mixup_images_and_targets_share_the_weight():
    images, labels = constant_batch()
    labels = torch.arange(32) % 16  # classes 0..15, partner i -> 31 - i has another class
    mixed, targets = MixupCutmix(16, mixup_alpha=0.8, cutmix_alpha=0)(images, labels, torch.Generator().manual_seed(1))
    lam = targets[torch.arange(32), labels]
    assert torch.allclose(mixed[:, 0, 0, 0], lam * torch.arange(32.0) + (1 - lam) * torch.arange(31.0, -1, -1))
    assert torch.allclose(targets.sum(1), torch.ones(32)) and lam.unique().numel() > 20


def test_switches_between_mixup_and_cutmix_per_batch():
    images, labels = constant_batch()
    mixer, generator = MixupCutmix(10), torch.Generator().manual_seed(2)
    kinds = set()
    for _ in range(20):
        mixed, _ = mixer(images, labels, generator)
        integral = torch.equal(mixed, mixed.round())  # CutMix only moves whole pixel values
        kinds.add("cutmix" if integral else "mixup")
    assert kinds == {"cutmix", "mixup"}


def test_same_generator_seed_same_mix():
    images, labels = constant_batch()
    a = MixupCutmix(10)(images, labels, torch.Generator().manual_seed(3))
    b = MixupCutmix(10)(images, labels, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
