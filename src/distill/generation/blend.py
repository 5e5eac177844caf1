"""Blending models: their frames are mixed in the magnitude domain, before the single inverse.

For each frame and mel band, with weights w_v summing to 1 and each model's own statistics
undone first:

    magnitude  m = Σ w_v · m_v                     (linear, not log: a weighted log would be a
                                                    geometric mean, which silences a band that
                                                    any one model leaves quiet)
    frequency  f = Σ w_v · m_v · f_v / Σ w_v · m_v (each band follows the louder model's partial)

Why not sum the waveforms: two renders have unrelated phases, so wherever they share partials
they cancel and reinforce at random (comb filtering, beating). Measured with bench/blend_domain.py
(BENCHMARKS.md), 50/50, 8 s × 3 seeds, as the mean |dB| deviation of the mix's magnitude from the
intended w_a·|A| + w_b·|B| and its ripple across frequency:
  the same material (a model with itself on another seed): waveform sum 4.11 dB (ripple 4.50),
  magnitude mix 1.42 dB (ripple 2.07);
  different material (demo corpus vs its drums only): 1.53 dB (2.09) vs 1.61 dB (2.37) — little
  overlap, so little to cancel, and the magnitude mix pays only its own inverse's error.
One inverse instead of one per model also makes a blend cost about what a single render does.
"""

from __future__ import annotations

import math

import torch

from distill.errors import UserError
from distill.spectral.config import SpectralConfig
from distill.spectral.long import FrameSource
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG

# What must agree for frames to be mixed one to one: the same STFT grid and the same mel bands.
SHARED = ("sample_rate", "hop_length", "n_fft", "n_mels", "f_min", "f_max", "log_floor")


def check_compatible(spectrals: list[SpectralConfig]) -> None:
    first = spectrals[0]
    for other in spectrals[1:]:
        differ = [k for k in SHARED if getattr(other, k) != getattr(first, k)]
        if differ:
            shown = ", ".join(f"{k} {getattr(first, k)} vs {getattr(other, k)}" for k in differ)
            raise UserError(
                f"these models cannot be blended: their representations differ ({shown}); "
                "blend models trained with the same sample rate and hop"
            )


class BlendedFrames:
    """A frame source mixing several normalized sources into unnormalized (log, IF) frames."""

    def __init__(
        self,
        sources: list[FrameSource],
        stats: list[ChannelStats],
        weights: list[float],
        spectral: SpectralConfig,
    ) -> None:
        total = sum(weights)
        self.sources, self.stats = sources, stats
        self.weights = [w / total for w in weights]
        self.log_floor = math.log(spectral.log_floor)

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        magnitude = frequency = None
        for source, stats, weight in zip(self.sources, self.stats, self.weights, strict=True):
            frames = stats.denormalize(source(start, stop).float())  # (2, M, n)
            m = weight * torch.exp(frames[MAG])
            f = m * frames[IF]
            magnitude = m if magnitude is None else magnitude + m
            frequency = f if frequency is None else frequency + f
        assert magnitude is not None and frequency is not None
        inst_freq = frequency / magnitude.clamp(min=1e-30)
        log_mag = torch.log(magnitude.clamp(min=math.exp(self.log_floor)))
        return torch.stack([log_mag, inst_freq])
