"""How well can a trained decoder draw these files at all? Resynthesis with more freedom.

    python bench/decoder_ceiling.py MODEL.distill DIR [--steps 50 200] [--threads 2]

For every audio file in DIR (held-out files, or training files for comparison), the mean
MR-STFT distance to the original of:
  round trip   the representation's own inverse of the true spectrogram (nothing learned)
  latent       what `distill resynth` does: each chunk's latent fitted for N steps (model.grid)
  bottleneck   the same fit, with a free residual added to the decoder's first feature map
               (256 × 4 × 3 = 3 072 numbers per chunk instead of the 128 of the latent)

The bottleneck variant is a diagnostic, not a resynthesis to ship: it frees everything below the
decoder's upsampling stages, so what it still misses is what those stages cannot draw — the
fidelity a better latent, encoder or fit could never reach without a different decoder.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn

from distill.audio.read import read_mono
from distill.generation.resynth import resynthesize
from distill.model.file import load_model_file
from distill.model.vae import ConvVAE
from distill.spectral import analyze, synthesize
from distill.spectral.quality import measure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_file import report_folder  # bench/ is not a package: from its folder

# σ given to the residual's coordinates in the fit's pull back to the encoder: wide enough that the
# pull hardly holds it (the residual starts at 0, where the decoder's own features are).
RESIDUAL_SIGMA = 30.0


class FreeBottleneck(nn.Module):
    """A model whose latent is [the model's latent, a residual on the decoder's first feature map]:
    encode gives the residual μ = 0 and a wide σ, decode adds it after the latent's linear map."""

    def __init__(self, model: ConvVAE) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def encode(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.model.encode(spec)
        width = self.config.flatten_dim
        residual_logvar = logvar.new_full((len(mu), width), 2 * math.log(RESIDUAL_SIGMA))
        return (
            torch.cat([mu, mu.new_zeros(len(mu), width)], dim=1),
            torch.cat([logvar, residual_logvar], dim=1),
        )

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        d = self.config.latent_dim
        z = latent[:, :d]
        return self.model.draw(self.model.from_latent(z) + latent[:, d:], z)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_file", type=Path)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, metadata = load_model_file(args.model_file)
    spectral = metadata.spectral
    free = FreeBottleneck(model)

    def score(path: Path) -> dict[str, float]:
        audio = torch.from_numpy(read_mono(path, spectral.sample_rate))
        trip = synthesize(analyze(audio[None], spectral), spectral, length=len(audio))[0]
        scores = {"round trip": measure(trip, audio).mrstft}
        for steps in args.steps:
            for name, variant in (("latent", model), ("bottleneck", free)):
                rebuilt = resynthesize(
                    variant, audio, metadata.stats, spectral, fit_steps=steps, overlap_steps=0
                )
                scores[f"{name}, {steps} steps"] = measure(rebuilt, audio).mrstft
        return scores

    return report_folder(args.data_dir, score)


if __name__ == "__main__":
    sys.exit(main())
