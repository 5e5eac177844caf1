"""New audio of any length from a model: slider point → latent path → chunks → one inverse.

    duration T samples → 1 + T // hop frames → chunks of W = 94 frames every H = 47 frames
    → one latent per chunk, taken on the seeded path at the chunk's centre time (trajectory)
    → decoded and overlap-added in the normalized spectrogram domain (frames)
    → blended with the other models' frames, if any, in the magnitude domain (blend)
    → one inverse over the whole signal, IF integrated once, in bounded memory (spectral.long)
    → spatialized: mono, stereo (a second render on a nearby latent path as the side signal)
      or binaural (spatial, binaural).

The same models, parameters and seed give the same samples, bit for bit, on the same device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from distill.errors import UserError
from distill.generation.blend import BlendedFrames, check_compatible
from distill.generation.frames import DecodedFrames, chunk_count, chunk_hop
from distill.generation.spatial import SpatialOptions, spatialize
from distill.generation.trajectory import latent_path
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats

MIN_SECONDS, MAX_SECONDS = 0.5, 600.0
MAX_SEED = 2**63 - 1
MAX_BLEND = 3  # other models in one render (4 in all)
# Stereo's side signal is a render along a path that wanders this far (in standard deviations of
# the training μ) around the main one, with its own seed: close enough to be the same sound, far
# enough to decorrelate the channels.
NEARBY = 0.3
NEARBY_SEED = 0x5EED  # added to the take's seed for the side path


@dataclass(frozen=True)
class BlendVoice:
    """Another model in the mix: `weight` percent of it (the main model gets the rest)."""

    model: str  # library id (or a .distill path)
    weight: float  # percent, > 0; all blend weights together < 100
    sliders: dict[int, float] = field(default_factory=dict)  # its own controls, 0-based

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "weight": self.weight,
            "sliders": {str(k): v for k, v in self.sliders.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> BlendVoice:
        return cls(
            model=str(data["model"]),
            weight=float(data["weight"]),
            sliders={int(k): float(v) for k, v in (data.get("sliders") or {}).items()},
        )


@dataclass(frozen=True)
class GenerationParams:
    """What a user chooses; with the models, everything needed to render the same audio again."""

    duration: float = 10.0  # seconds
    seed: int = 0
    sliders: dict[int, float] = field(default_factory=dict)  # control index → −10…+10
    variation: float = 0.5  # 0 = hold still … 1 = wander far and fast
    spatial: SpatialOptions = field(default_factory=SpatialOptions)
    blend: tuple[BlendVoice, ...] = ()

    @property
    def main_weight(self) -> float:
        """The main model's share of the mix, 0…1."""
        return 1.0 - sum(v.weight for v in self.blend) / 100.0

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
        self.spatial.validate()
        if len(self.blend) > MAX_BLEND:
            raise UserError(
                f"blend at most {MAX_BLEND + 1} models in all, got {len(self.blend) + 1}"
            )
        for voice in self.blend:
            if not voice.weight > 0:
                raise UserError(
                    f"blend weight of {voice.model} must be more than 0 %, got {voice.weight:g}"
                )
        if self.blend and not self.main_weight > 0:
            total = sum(v.weight for v in self.blend)
            raise UserError(
                f"blend weights add up to {total:g} %: keep them under 100 % so the main model "
                "keeps a share"
            )

    def to_dict(self) -> dict:
        return {
            "duration": self.duration,
            "seed": self.seed,
            "sliders": {str(k): v for k, v in self.sliders.items()},
            "variation": self.variation,
            "spatial": self.spatial.to_dict(),
            "blend": [voice.to_dict() for voice in self.blend],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GenerationParams:
        return cls(
            duration=float(data["duration"]),
            seed=int(data["seed"]),
            sliders={int(k): float(v) for k, v in (data.get("sliders") or {}).items()},
            variation=float(data["variation"]),
            spatial=SpatialOptions.from_dict(data.get("spatial") or {}),
            blend=tuple(BlendVoice.from_dict(v) for v in data.get("blend") or ()),
        )


@dataclass(frozen=True)
class Voice:
    """One model's part in a render: where on its latent space, how far to wander, how loud."""

    model: ConvVAE
    spectral: SpectralConfig
    stats: ChannelStats
    center: torch.Tensor  # (D,) the slider point
    spread: torch.Tensor  # (D,) the training μ's standard deviation per dimension
    weight: float = 1.0  # share of the mix, 0…1
    precision: str = "fp32"  # decoder: "bf16" autocast where native (training.device)


def chunk_times(n_chunks: int, width: int, hop: int, spectral: SpectralConfig) -> np.ndarray:
    """Centre of each chunk in seconds."""
    centre_frames = np.arange(n_chunks) * hop + width / 2
    return centre_frames * spectral.hop_length / spectral.sample_rate


@torch.no_grad()
def generate_audio(voices: list[Voice], params: GenerationParams) -> np.ndarray:
    """(T,) float32 mono, or (2, T) for stereo and binaural, at the first voice's sample rate."""
    params.validate()
    mono = render_voices(voices, params)
    rate = voices[0].spectral.sample_rate
    side = None
    if params.spatial.mode == "stereo":
        side = render_voices(voices, params, nearby_seed=params.seed + NEARBY_SEED)
    return spatialize(mono, rate, params.spatial, seed=params.seed, side=side)


@torch.no_grad()
def render_voices(
    voices: list[Voice], params: GenerationParams, *, nearby_seed: int | None = None
) -> np.ndarray:
    """(T,) float32: each voice's latent path decoded; several voices mixed before the inverse.

    `nearby_seed`: follow a path that wanders NEARBY standard deviations around each voice's
    usual one (stereo's side signal) instead of the path itself.
    """
    spectral = voices[0].spectral
    check_compatible([v.spectral for v in voices])
    length = round(params.duration * spectral.sample_rate)
    sources = []
    for voice in voices:
        voice.model.eval()
        width = voice.model.config.frames
        hop = chunk_hop(width)
        n_chunks = chunk_count(voice.spectral.frames_for(length), width, hop)
        times = chunk_times(n_chunks, width, hop, voice.spectral)
        spread = voice.spread.float().cpu()
        latents = latent_path(
            voice.center.float().cpu(),
            spread,
            times,
            variation=params.variation,
            seed=params.seed,
        )
        if nearby_seed is not None:
            zero = torch.zeros_like(spread)
            latents = latents + latent_path(
                zero, NEARBY * spread, times, variation=1.0, seed=nearby_seed
            )
        sources.append(DecodedFrames(voice.model, latents, precision=voice.precision))
    if len(voices) == 1:
        return synthesize_long(sources[0], spectral, length=length, stats=voices[0].stats)
    mixed = BlendedFrames(sources, [v.stats for v in voices], [v.weight for v in voices], spectral)
    return synthesize_long(mixed, spectral, length=length, stats=ChannelStats())
