"""bench/heldout.py with a candidate change the settings cannot express: a decoder or an optimizer.

    python bench/heldout_variants.py VARIANT [heldout.py's arguments …]
    python bench/heldout_variants.py refine32 /tmp/material/drums/train \
        --heldout-dir /tmp/material/drums/heldout --minutes 600 --threads 1 --set epochs=120

VARIANT is one of
  base        the product's optimizer and the model of rounds 1–9: no profile map (profile_rank 0)
  refineR     the decoder's last transposed convolution draws R channels at full resolution
              (GroupNorm + LeakyReLU), and a 3 × 3 convolution at full resolution makes the two
              output channels: the seed design has no layer at full resolution that is not linear
  k4          4 × 4 transposed convolutions in the decoder (every output pixel gets the same
              number of inputs: no checkerboard) instead of 3 × 3
  beta99      AdamW with β₂ = 0.99 instead of 0.999
  lowrankK    the profile map of rank K (ModelConfig.profile_rank = K; the product's is 8) beside
              the decoder: an MLP on the latent draws K time and K band profiles, their products
              are added to the decoder's log magnitude (model.vae._Profiles)

The change is patched into this process only (the model registry, torch.optim.AdamW), so the run
trains, saves and resynthesizes through the variant. Settings the product has (learning rate,
dropout, loss weights, seed) go through heldout.py's own options. A model file made this way
loads only in a process patched the same way: it is a measurement, not a model to keep.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import distill.model.vae as vae
from distill.spectral.config import SpectralConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout  # bench/ is not a package: imported from its folder

Decoder = Callable[[tuple[int, ...]], nn.Sequential]  # widths, bottleneck first → decoder


def _with_decoder(decoder: Decoder) -> type[vae.ConvVAE]:
    """The product's model with its decoder replaced by `decoder`'s."""

    class Variant(vae.ConvVAE):
        def __init__(self, config: vae.ModelConfig) -> None:
            super().__init__(config)
            self.decoder = decoder((2, *config.channels)[::-1])

    return Variant


def _refined(width: int) -> Decoder:
    def decoder(widths: tuple[int, ...]) -> nn.Sequential:
        return nn.Sequential(
            *(vae._up(a, b) for a, b in itertools.pairwise(widths[:-1])),
            vae._up(widths[-2], width),
            nn.Conv2d(width, 2, kernel_size=3, padding=1),
        )

    return decoder


def _up4(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
        nn.GroupNorm(vae._groups(c_out), c_out),
        nn.LeakyReLU(0.2),
    )


def _kernel4(widths: tuple[int, ...]) -> nn.Sequential:
    return nn.Sequential(
        *(_up4(a, b) for a, b in itertools.pairwise(widths[:-1])),
        nn.ConvTranspose2d(widths[-2], 2, kernel_size=4, stride=2, padding=1),
    )


def _with_profile_rank(rank: int) -> None:
    """New models get `rank` (ModelConfig.profile_rank) instead of the product's default."""
    for_spectral = vae.ModelConfig.for_spectral.__func__

    def patched(cls, spectral, **overrides):
        return for_spectral(cls, spectral, **{"profile_rank": rank, **overrides})

    vae.ModelConfig.for_spectral = classmethod(patched)


def apply(variant: str) -> None:
    """Patch `variant` into this process (see the module docstring)."""
    if variant == "base":
        _with_profile_rank(0)
    elif variant.startswith("refine") and variant[len("refine") :].isdigit():
        vae.ARCHITECTURES["conv2d"] = _with_decoder(_refined(int(variant[len("refine") :])))
    elif variant == "k4":
        vae.ARCHITECTURES["conv2d"] = _with_decoder(_kernel4)
    elif variant.startswith("lowrank") and variant[len("lowrank") :].isdigit():
        _with_profile_rank(int(variant[len("lowrank") :]))
    elif variant == "beta99":
        torch.optim.AdamW = functools.partial(torch.optim.AdamW, betas=(0.9, 0.99))
    else:
        raise SystemExit(f"unknown variant {variant!r}: base, refineR, k4, lowrankK or beta99")


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    variant = sys.argv[1]
    apply(variant)
    parameters = vae.parameter_count(vae.ModelConfig.for_spectral(SpectralConfig()))
    print(f"variant {variant}: {parameters} parameters", file=sys.stderr)
    return heldout.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
