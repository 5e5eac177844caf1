"""Where a model's resynthesis error sits: which channel, which frames, which bins.

    python bench/error_split.py MODEL.distill DIR [--threads 2]

For every audio file in DIR, the model's spectrogram is what `distill resynth` decodes (each
chunk's latent fitted to its frames, model.grid), read back as one (log magnitude,
IF) spectrogram over the whole file. Each column puts the file's true values into one part of
that spectrogram, inverts it with the product's inverse and scores the MR-STFT distance to the
original (lower is better):

  round trip      the true spectrogram (nothing learned: the ceiling)
  model           the model's spectrogram as it is (what a user hears)
  true IF         the model's magnitude with the true IF
  true magnitude  the true magnitude with the model's IF
  attack          true magnitude in the 3 frames around the loudest frame (~30 ms)
  loud            true magnitude in bins within 40 dB of the file's loudest
  quiet           true magnitude in bins more than 80 dB below it (tails, silence)
  low bands       true magnitude in the lowest quarter of the mel bands (kick and tom bodies)

A column far below "model" holds much of the gap; one near it holds little.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from distill.audio.read import read_mono
from distill.generation.frames import DecodedFrames
from distill.generation.resynth import resynthesis_hop
from distill.model.file import load_model_file
from distill.model.grid import encode_grid
from distill.spectral import analyze, synthesize
from distill.spectral.quality import measure
from distill.spectral.transform import IF, MAG

sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_file import report_folder  # bench/ is not a package: from its folder

NEPER_TO_DB = 20 / np.log(10)  # the magnitude channel is a natural log
ATTACK_FRAMES = (-1, 2)  # frames around the loudest one, as range offsets
LOUD_DB = -40.0
QUIET_DB = -80.0

Mask = Callable[[torch.Tensor], torch.Tensor]  # true log magnitude (M, N) → bool (M, N)


def _attack(log_mag: torch.Tensor) -> torch.Tensor:
    frames = torch.arange(log_mag.shape[1])
    loudest = int(torch.argmax(log_mag.amax(dim=0)))
    inside = (frames >= loudest + ATTACK_FRAMES[0]) & (frames < loudest + ATTACK_FRAMES[1])
    return inside[None].expand_as(log_mag)


def _below_peak(log_mag: torch.Tensor) -> torch.Tensor:
    return (log_mag - log_mag.max()) * NEPER_TO_DB


def _low_bands(log_mag: torch.Tensor) -> torch.Tensor:
    bands = torch.arange(log_mag.shape[0])[:, None]
    return (bands < log_mag.shape[0] // 4).expand_as(log_mag)


MAGNITUDE_REGIONS: dict[str, Mask] = {
    "attack": _attack,
    "loud": lambda m: _below_peak(m) > LOUD_DB,
    "quiet": lambda m: _below_peak(m) < QUIET_DB,
    "low bands": _low_bands,
}


def split(model, metadata, audio: torch.Tensor) -> dict[str, float]:
    """MR-STFT of each column of the module docstring for one (T,) file."""
    spectral, stats = metadata.spectral, metadata.stats
    true = analyze(audio[None], spectral)  # (1, 2, M, N), not normalized
    hop = resynthesis_hop(model.config.frames)
    latents, _ = encode_grid(model, stats.normalize(true), stats, spectral, hop=hop)
    decoded = DecodedFrames(model, latents, hop=hop)(0, true.shape[-1])
    drawn = stats.denormalize(decoded[None].to(true))

    def score(spec: torch.Tensor) -> float:
        return measure(synthesize(spec, spectral, length=len(audio))[0], audio).mrstft

    def swapped(channel: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        spec = drawn.clone()
        if mask is None:
            spec[:, channel] = true[:, channel]
        else:
            spec[0, channel][mask] = true[0, channel][mask]
        return spec

    scores = {
        "round trip": score(true),
        "model": score(drawn),
        "true IF": score(swapped(IF)),
        "true magnitude": score(swapped(MAG)),
    }
    for name, region in MAGNITUDE_REGIONS.items():
        scores[name] = score(swapped(MAG, region(true[0, MAG])))
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_file", type=Path)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, metadata = load_model_file(args.model_file)
    rate = metadata.spectral.sample_rate
    return report_folder(
        args.data_dir,
        lambda path: split(model, metadata, torch.from_numpy(read_mono(path, rate))),
    )


if __name__ == "__main__":
    sys.exit(main())
