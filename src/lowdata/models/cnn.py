"""CIFAR-style ResNets (3x3 stem at stride 1, no max-pool), built from timm's ResNet.

An ImageNet stem (7x7 stride 2 + max-pool) shrinks a 32-px image to 8 px before the first block; the CIFAR
variants of He et al. (2016) keep full resolution. timm's ResNet takes the stage widths and depths, so only
the stem is swapped here; forward_features / forward_head and the state-dict keys stay timm's.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lowdata.models.registry import MODELS, ModelSpec


def build_cifar_resnet(layers: tuple[int, ...], channels: tuple[int, ...], num_classes: int, in_chans: int,
                       drop_path: float, **overrides: Any) -> nn.Module:
    from timm.models.resnet import BasicBlock, ResNet

    settings = {"layers": layers, "channels": channels, **overrides}
    stem_out = settings["channels"][0]
    # timm's plain stem is always 64 wide; its 'deep' stem ends at 2 x stem_width, which lets the first stage
    # start at the preset's width with no projection. The deep stem's convolutions are then replaced by one.
    model = ResNet(block=BasicBlock, num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path,
                   stem_type="deep", stem_width=stem_out // 2, **settings)
    model.conv1 = nn.Conv2d(in_chans, stem_out, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    if len(settings["channels"]) == 3:  # timm's forward_features calls layer1..layer4 by name
        model.layer4 = nn.Identity()
    return model


def cifar_resnet(layers: tuple[int, ...], channels: tuple[int, ...]):
    def build(num_classes: int, in_chans: int, img_size: tuple[int, int], drop_path: float, **overrides):
        return build_cifar_resnet(layers, channels, num_classes, in_chans, drop_path, **overrides)

    return build


# Learning rate 4e-3: measured on CIFAR-10, 5,000 labels, 30 epochs, batch 128, AdamW: ResNet-20 reached
# 58.4 % at 1e-3 and 67.6 % at 4e-3 (the ViT default of 1e-3 leaves these small BatchNorm nets underfitted).
MODELS.register("resnet20")(ModelSpec(cifar_resnet((3, 3, 3), (16, 32, 64)), "cnn",
                                      "CIFAR ResNet-20 (He et al. 2016), widths 16/32/64", lr=4e-3))
MODELS.register("resnet56")(ModelSpec(cifar_resnet((9, 9, 9), (16, 32, 64)), "cnn",
                                      "CIFAR ResNet-56 (He et al. 2016), widths 16/32/64", lr=4e-3))
MODELS.register("resnet18-cifar")(ModelSpec(cifar_resnet((2, 2, 2, 2), (64, 128, 256, 512)), "cnn",
                                            "ResNet-18 with a 3x3 stride-1 stem and no max-pool", lr=4e-3))
