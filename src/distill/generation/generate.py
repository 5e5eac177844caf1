"""New audio of any length from a model: slider point → latent path → chunks → one inverse.

    duration T samples → 1 + T // hop frames → chunks of W = 94 frames every H = 47 frames
    → one latent per chunk, taken on the seeded path at the chunk's centre time (trajectory)
    → decoded and overlap-added in the normalized spectrogram domain (frames)
    → one inverse over the whole signal, IF integrated once, in bounded memory (spectral.long).

The same model, parameters and seed give the same samples, bit for bit, on the same device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from distill.errors import UserError
from distill.generation.frames import DecodedFrames, chunk_count, chunk_hop
from distill.generation.trajectory import latent_path
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats

MIN_SECONDS, MAX_SECONDS = 0.5, 600.0
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class GenerationParams:
    """What a user chooses; with the model, everything needed to render the same audio again."""

    duration: float = 10.0  # seconds
    seed: int = 0
    sliders: dict[int, float] = field(default_factory=dict)  # control index → −10…+10
    variation: float = 0.5  # 0 = hold still … 1 = wander far and fast

    def validate(self) -> None:
        if not MIN_SECONDS <= self.duration <= MAX_SECONDS:
            raise UserError(
                f"duration must be between {MIN_SECONDS:g} s and {MAX_SECONDS:g} s "
                f"(10 min), got {self.duration:g}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}")
        if not 0.0 <= self.variation <= 1.0:
            raise UserError(f"variation must be between 0 and 1, got {self.variation:g}")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["sliders"] = {str(k): v for k, v in self.sliders.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GenerationParams:
        return cls(
            duration=float(data["duration"]),
            seed=int(data["seed"]),
            sliders={int(k): float(v) for k, v in (data.get("sliders") or {}).items()},
            variation=float(data["variation"]),
        )


def chunk_times(n_chunks: int, width: int, hop: int, spectral: SpectralConfig) -> np.ndarray:
    """Centre of each chunk in seconds."""
    centre_frames = np.arange(n_chunks) * hop + width / 2
    return centre_frames * spectral.hop_length / spectral.sample_rate


@torch.no_grad()
def generate_audio(
    model: ConvVAE,
    spectral: SpectralConfig,
    stats: ChannelStats,
    center: torch.Tensor,
    spread: torch.Tensor,
    params: GenerationParams,
) -> np.ndarray:
    """(T,) float32 audio at spectral.sample_rate around the latent `center` (D,).

    `spread` (D,): the training μ's standard deviation per dimension (how far variation moves).
    """
    params.validate()
    model.eval()
    length = round(params.duration * spectral.sample_rate)
    width = model.config.frames
    hop = chunk_hop(width)
    n_chunks = chunk_count(spectral.frames_for(length), width, hop)
    latents = latent_path(
        center.float().cpu(),
        spread.float().cpu(),
        chunk_times(n_chunks, width, hop, spectral),
        variation=params.variation,
        seed=params.seed,
    )
    frames = DecodedFrames(model, latents)
    return synthesize_long(frames, spectral, length=length, stats=stats)
