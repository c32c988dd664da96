"""Joint masked-image modelling (SSAT; Das et al., WACV 2024, arXiv 2310.20704): in every step the classifier's
own encoder also reconstructs a masked view of the step's images, with a light decoder, instead of a separate
MAE pretraining stage; no labels are read.

    loss += weight * MAE loss (the encoder on a random 25 % of the patches, masked patches' pixels predicted)

The paper weighs lambda * CE + (1 - lambda) * MAE; `weight` is (1 - lambda) / lambda of that (1: lambda = 0.5).
The masked pass is objectives/mae.py's MaskedAutoencoder around the same model, so the term's loss is the MAE
objective's on the same masks; the masks come from the term's own random stream (`masked`). The decoder is
trained beside the model, checkpointed and never exported. Patch-token ViTs only (a masked patch must not leak
into its neighbours' tokens), with a class token or average pooling; others are refused in one line.

An auxiliary term (objectives/terms.py): supervised, distill and the EMA teacher carry it, on the labelled
images, the pool's or both (`images`), its weight rising linearly over `warmup_epochs`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lowdata.objectives.mae import MaskedAutoencoder
from lowdata.objectives.terms import APPLIES_TO, ImageTerm, register_term, require_pool
from lowdata.sections import setting

DECODER_PARTS = ("decoder_embed", "decoder_blocks", "decoder_norm", "decoder_pred")


@dataclass(frozen=True)
class MaskedSettings:
    weight: float = setting(1.0, "the masked loss's weight beside the label loss: (1 - lambda) / lambda of the "
                                 "paper's lambda * CE + (1 - lambda) * MAE", low=0)
    mask_ratio: float = setting(0.75, "share of patches hidden from the encoder", low=0, high=1, low_in=False,
                                high_in=False)
    images: str = setting("both", "the images it reads: labelled, pool or both", choices=APPLIES_TO)
    warmup_epochs: int = setting(0, "epochs over which its weight rises linearly from 0", low=0)
    norm_pix_loss: bool = setting(True, "the target is each patch's pixels normalised (MAE's best)")
    decoder_dim: int = setting(128, "the decoder's width", low=1)
    decoder_depth: int = setting(2, "the decoder's blocks", low=1)
    decoder_heads: int = setting(4, "the decoder's attention heads", low=1)


class JointMaskedModelling(ImageTerm):
    state_name, setup_name = "masked_decoder", "masked"
    streams = ("masked",)

    def __init__(self, model: nn.Module, channels: int, settings: MaskedSettings) -> None:
        super().__init__(settings)
        autoencoder = MaskedAutoencoder(model, channels, settings.decoder_dim, settings.decoder_depth,
                                        settings.decoder_heads, settings.norm_pix_loss)
        self.autoencoder = [autoencoder]  # a list: it holds the model, which is not a submodule of the term
        self.decoder = nn.Module()  # the autoencoder's own decoder parts: what the term trains and keeps
        for name in DECODER_PARTS:
            self.decoder.add_module(name, getattr(autoencoder, name))
        self.decoder.mask_token = autoencoder.mask_token

    def trainable_extras(self) -> nn.Module:
        return self.decoder

    def loss(self, model_input: torch.Tensor, labelled: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images = self.rows(model_input, labelled)
        if len(images) == 0:
            return model_input.new_zeros((), dtype=torch.float32), {}
        term, _, _ = self.autoencoder[0](images, self.settings.mask_ratio, self.generator)
        return self.weighted(term), {"masked_loss": term.detach()}

    def cost_parts(self, example: torch.Tensor) -> list:
        """The encoder on the visible patches and the decoder on all, forward and backward (masks from a
        generator of its own: the run's stream is not touched)."""
        from lowdata.objectives.cost import TRAINED, CostPart, flops_of

        masks = torch.Generator(device=example.device).manual_seed(0)
        autoencoder = self.autoencoder[0]
        flops = flops_of(lambda: autoencoder(example, self.settings.mask_ratio, masks), autoencoder)
        return [CostPart("masked", TRAINED * flops, self.settings.images)]

    def summary(self) -> dict[str, Any]:
        s = self.settings
        return {"masked": {"weight": s.weight, "mask_ratio": s.mask_ratio, "images": s.images,
                           "warmup_epochs": s.warmup_epochs, "decoder_dim": s.decoder_dim}}


@register_term("masked", settings=MaskedSettings)
def build_masked(settings: MaskedSettings, config, model: nn.Module, data, device, autocast) -> ImageTerm:
    """Joint masked-image modelling (SSAT, Das et al. 2024): the classifier's encoder also rebuilds masked patches."""
    require_pool("masked", settings, data)
    term = JointMaskedModelling(model, data.info.channels, settings).to(device)
    term.autoencoder[0].to(device)  # its decoder's fixed positions (the model is there already)
    return term
