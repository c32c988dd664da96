"""Masked autoencoder (He et al., 2021): encode a random 25 % of the patches, reconstruct the rest.

Methods are named as in the paper's code: `patchify`, `random_masking`, `forward_encoder`, `forward_decoder`,
`forward_loss`. The encoder is any ViT preset and sees only the visible patches (that is what makes MAE cheap:
at mask ratio 0.75 the encoder runs on 17 tokens instead of 65 at 32 px, patch 4). A light decoder (2 blocks,
width 128 by default: small images, short schedules) predicts the pixels of every patch; the loss counts the
masked ones only, against per-patch normalised pixels by default. Labels are never read.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pathlib import Path

import torch
from torch import nn

from lowdata.models import vit as vit_api
from lowdata.objectives.base import Objective, StepOutput, register_method
from lowdata.sections import setting


class MaskedAutoencoder(nn.Module):
    def __init__(self, encoder: nn.Module, in_chans: int, decoder_dim: int = 128, decoder_depth: int = 2,
                 decoder_heads: int = 4, norm_pix_loss: bool = True) -> None:
        from timm.layers import build_sincos2d_pos_embed
        from timm.models.vision_transformer import Block

        super().__init__()
        vit_api.check_maskable(encoder)
        self.encoder = encoder  # its state dict is the classifier's, without a head
        self.prefix = encoder.num_prefix_tokens  # 1 (a class token) or 0 (average pooling)
        self.grid, self.patch = vit_api.patch_grid(encoder), vit_api.patch_size(encoder)
        # a patch of one value (patch 1, one channel: 8x8 digits) has no variance to normalise its target by
        self.in_chans = in_chans
        self.norm_pix_loss = norm_pix_loss and self.patch ** 2 * in_chans > 1
        width = encoder.embed_dim
        self.decoder_embed = nn.Linear(width, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        # fixed 2-D sin-cos positions for the decoder, as in MAE (the class token's position is zero)
        positions = build_sincos2d_pos_embed(list(self.grid), decoder_dim).reshape(1, -1, decoder_dim)
        self.register_buffer("decoder_pos_embed", torch.cat([torch.zeros(1, 1, decoder_dim), positions], 1),
                             persistent=False)
        self.decoder_blocks = nn.Sequential(*[Block(decoder_dim, decoder_heads, mlp_ratio=4.0)
                                              for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch ** 2 * in_chans)
        nn.init.normal_(self.mask_token, std=0.02)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, L, p*p*C), patches in row-major order, pixels (row, column, channel)."""
        n, c, h, w = images.shape
        p, (gh, gw) = self.patch, self.grid
        x = images.reshape(n, c, gh, p, gw, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(n, gh * gw, p * p * c)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, L, p*p*C) -> (N, C, H, W)"""
        n = patches.shape[0]
        p, (gh, gw), c = self.patch, self.grid, self.in_chans
        x = patches.reshape(n, gh, gw, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(n, c, gh * p, gw * p)

    @staticmethod
    def random_masking(n: int, length: int, mask_ratio: float, generator: torch.Generator,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per image, a random subset of round(L * (1 - ratio)) patches to keep (shuffling by sorted noise).
        Returns ids_keep (N, K), mask (N, L; 1 = masked) and ids_restore (N, L) to undo the shuffle."""
        keep = max(1, int(round(length * (1 - mask_ratio))))
        noise = torch.rand(n, length, generator=generator, device=generator.device).to(device)
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        mask = torch.ones(n, length, device=device)
        mask[:, :keep] = 0
        return ids_shuffle[:, :keep], mask.gather(1, ids_restore), ids_restore

    def forward_encoder(self, images: torch.Tensor, mask_ratio: float, generator: torch.Generator):
        tokens = vit_api.patch_tokens(self.encoder, images)  # (N, L, D)
        n, length, width = tokens.shape
        ids_keep, mask, ids_restore = self.random_masking(n, length, mask_ratio, generator, images.device)
        visible = tokens.gather(1, ids_keep[..., None].expand(-1, -1, width))  # (N, K, D)
        return vit_api.encode_tokens(self.encoder, visible), mask, ids_restore  # (N, P + K, D)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(latent)  # (N, P + K, Dd)
        n, length = ids_restore.shape
        prefix = self.prefix
        masks = self.mask_token.expand(n, length + prefix - x.shape[1], -1)
        patches = torch.cat([x[:, prefix:], masks], dim=1)  # visible first, then masked: the shuffled order
        patches = patches.gather(1, ids_restore[..., None].expand(-1, -1, x.shape[2]))  # back in image order
        x = torch.cat([x[:, :prefix], patches], dim=1) + self.decoder_pos_embed[:, 1 - prefix:]
        x = self.decoder_norm(self.decoder_blocks(x))
        return self.decoder_pred(x)[:, prefix:]  # (N, L, p*p*C), class token dropped

    def forward_loss(self, images: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over the masked patches only."""
        target = self.patchify(images)
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, images: torch.Tensor, mask_ratio: float, generator: torch.Generator):
        latent, mask, ids_restore = self.forward_encoder(images, mask_ratio, generator)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(images, pred, mask), pred, mask

    def reconstruct(self, images: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted pixels for the masked patches (mapped back from normalised-patch space), visible ones kept."""
        target = self.patchify(images)
        if self.norm_pix_loss:
            pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5 + target.mean(dim=-1, keepdim=True)
        return self.unpatchify(torch.where(mask[..., None].bool(), pred, target))


class MAE(Objective):
    streams = ("mask",)  # which patches each image hides

    def __init__(self, encoder: nn.Module, in_chans: int, generator: torch.Generator | None = None,
                 mask_ratio: float = 0.75,
                 decoder_dim: int = 128, decoder_depth: int = 2, decoder_heads: int = 4,
                 norm_pix_loss: bool = True) -> None:
        super().__init__()
        if not 0 < mask_ratio < 1:
            raise ValueError(f"setting 'mask_ratio' must be > 0 and < 1, got {mask_ratio}")
        self.model = MaskedAutoencoder(encoder, in_chans, decoder_dim, decoder_depth, decoder_heads, norm_pix_loss)
        self.mask_ratio, self.generator = mask_ratio, generator

    def cost_parts(self, example: torch.Tensor) -> list:
        """The encoder on the visible patches and the decoder on all, forward and backward (masks drawn from a
        generator of its own: the run's mask stream is not touched)."""
        from lowdata.objectives.cost import TRAINED, CostPart, flops_of

        masks = torch.Generator(device=example.device).manual_seed(0)
        return [CostPart("model", TRAINED * flops_of(lambda: self.model(example, self.mask_ratio, masks),
                                                     self.model))]

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        self.generator = streams["mask"]  # under torchrun each rank masks its images differently

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        loss, _, _ = self.model(images, self.mask_ratio, self.generator)
        return StepOutput(loss=loss)

    @torch.no_grad()
    def write_figures(self, run_dir: Path, images: torch.Tensor, normalize: nn.Module) -> None:
        """`reconstructions.png`: originals, masked inputs and reconstructions of a few test images."""
        from lowdata.objectives.figures import image_rows

        model = self.model
        was_training = model.training
        model.eval()
        x = normalize(images)
        _, pred, mask = model(x, self.mask_ratio, torch.Generator(device=self.generator.device).manual_seed(0))
        masked = model.unpatchify(model.patchify(x) * (1 - mask[..., None]))  # hidden patches at the mean colour
        rows = {"original": x, f"masked {self.mask_ratio:.0%}": masked,
                "reconstruction": model.reconstruct(x, pred.float(), mask)}
        image_rows(run_dir / "reconstructions.png", {k: normalize.inverse(v) for k, v in rows.items()})
        model.train(was_training)


@dataclass(frozen=True)
class MaeSettings:
    mask_ratio: float = setting(0.75, "share of patches hidden from the encoder", low=0, high=1, low_in=False,
                                high_in=False)
    norm_pix_loss: bool = setting(True, "the target is each patch's pixels normalised (MAE's best)")
    decoder_dim: int = setting(128, "the decoder's width", low=1)
    decoder_depth: int = setting(2, "the decoder's blocks", low=1)
    decoder_heads: int = setting(4, "the decoder's attention heads", low=1)


@register_method("mae", reads_labels=False, settings=MaeSettings)
def build_mae(config, settings: MaeSettings, model: nn.Module, data, device, autocast) -> tuple[Objective, dict]:
    """Masked autoencoding (MAE, He et al. 2021), for patch ViTs.

    Around the encoder `model`; its mask stream arrives with the epoch's streams (use_streams)."""
    from lowdata.errors import UsageError

    try:
        objective = MAE(model, data.info.channels, None, **asdict(settings))
    except (TypeError, ValueError) as err:
        raise UsageError(f"pretraining method 'mae' rejected its settings: {err}") from None
    return objective.to(device), {"mask_ratio": objective.mask_ratio}
