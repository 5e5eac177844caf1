"""New audio from a model: sampled events → placed in time → decoded → one inverse.

    the corpus memory (what the model learned about each training recording)
    → one voice per model: a LatentSampler (generation.sampling) with the sliders' offsets
    → events placed in time by the take's mode (generation.layout):
        one-shot: one event from a recording's start, trimmed to its natural decay;
        texture:  events at the corpus's rate, or chained segments, every attack kept
    → decoded and mixed in the magnitude domain (layout.EventFrames; several models blend here)
    → one inverse over the whole signal, IF integrated once, in bounded memory (spectral.long)
    → spatialized: mono, stereo (the same events, nearby latents, as the side signal) or
      binaural (spatial, binaural)
    → levelled: one-shots peak-normalized, textures at the corpus's loudness (level.py).

The same models, parameters and seed give the same samples, bit for bit, on the same device.
Every default a user sees (variation, density, level) is defined once, in defaults.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from distill.errors import UserError
from distill.generation.blend import check_compatible
from distill.generation.defaults import (
    DEFAULT_DENSITY,
    DEFAULT_LEVEL,
    DEFAULT_VARIATION,
    DENSITY_RANGE,
    LEVELS,
    MODES,
)
from distill.generation.layout import (
    Event,
    EventFrames,
    as_generator,
    event_frames,
    frame_rate,
    oneshot_layout,
    texture_layout,
)
from distill.generation.level import apply_level, oneshot_bounds
from distill.generation.sampling import LatentSampler
from distill.generation.spatial import SpatialOptions, spatialize
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats

MIN_SECONDS, MAX_SECONDS = 0.5, 600.0  # a texture's length
MIN_ONESHOT_SECONDS = 0.05  # a one-shot's -d may cut it this short (a 50 ms hat)
MAX_SEED = 2**63 - 1
MAX_BLEND = 3  # other models in one render (4 in all)
MAX_ONESHOT_SECONDS = 30.0  # a one-shot without -d is at most this long (its natural decay)
TEXTURE_SECONDS = 10.0  # a texture without -d, from a corpus of one-shots
TEXTURE_SECONDS_RANGE = (4.0, 60.0)  # a texture without -d: the corpus's typical length, clamped
# Stereo's side signal is a render of the same events with latents moved this far (in standard
# deviations of the training μ) by their own seed: close enough to be the same sound, far enough
# to decorrelate the channels.
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

    duration: float | None = None  # seconds (a one-shot's maximum); None = the model's typical
    seed: int = 0
    sliders: dict[int, float] = field(default_factory=dict)  # control index → −10…+10
    variation: float = DEFAULT_VARIATION
    spatial: SpatialOptions = field(default_factory=SpatialOptions)
    blend: tuple[BlendVoice, ...] = ()
    mode: str | None = None  # "oneshot" | "texture"; None = the model's own (from its corpus)
    density: float = DEFAULT_DENSITY  # events per second × this (textures from one-shots)
    level: str = DEFAULT_LEVEL  # auto | peak | loudness | raw (see level.py)
    like: str | None = None  # a recording to make variations of (its path)
    like_sha256: str | None = None  # its content when the take was made (replay checks it)

    @property
    def main_weight(self) -> float:
        """The main model's share of the mix, 0…1."""
        return 1.0 - sum(v.weight for v in self.blend) / 100.0

    def validate(self) -> None:
        shortest = MIN_ONESHOT_SECONDS if self.mode == "oneshot" else MIN_SECONDS
        if self.duration is not None and not shortest <= self.duration <= MAX_SECONDS:
            raise UserError(
                f"duration must be between {shortest:g} s and {MAX_SECONDS:g} s "
                f"(10 min), got {self.duration:g}"
                + (" (one-shots may be as short as 0.05 s)" if shortest == MIN_SECONDS else "")
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}")
        if not 0.0 <= self.variation <= 1.0:
            raise UserError(f"variation must be between 0 and 1, got {self.variation:g}")
        if self.mode is not None and self.mode not in MODES:
            raise UserError(f"mode must be oneshot or texture, got {self.mode!r}")
        if not DENSITY_RANGE[0] <= self.density <= DENSITY_RANGE[1]:
            raise UserError(
                f"density must be between {DENSITY_RANGE[0]:g} and {DENSITY_RANGE[1]:g} "
                f"(1 = the corpus's own rate), got {self.density:g}"
            )
        if self.level not in LEVELS:
            raise UserError(f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")
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
            "mode": self.mode,
            "density": self.density,
            "level": self.level,
            "like": self.like,
            "like_sha256": self.like_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict) -> GenerationParams:
        duration = data.get("duration")
        return cls(
            duration=None if duration is None else float(duration),
            seed=int(data["seed"]),
            sliders={int(k): float(v) for k, v in (data.get("sliders") or {}).items()},
            variation=float(data["variation"]),
            spatial=SpatialOptions.from_dict(data.get("spatial") or {}),
            blend=tuple(BlendVoice.from_dict(v) for v in data.get("blend") or ()),
            mode=data.get("mode"),
            density=float(data.get("density", DEFAULT_DENSITY)),
            level=str(data.get("level", DEFAULT_LEVEL)),
            like=data.get("like"),
            like_sha256=data.get("like_sha256"),
        )


@dataclass(frozen=True)
class Voice:
    """One model's part in a render: what it samples from, how loud."""

    model: ConvVAE
    spectral: SpectralConfig
    stats: ChannelStats
    sampler: LatentSampler
    spread: torch.Tensor  # (D,) the training μ's standard deviation per dimension
    weight: float = 1.0  # share of the mix, 0…1
    precision: str = "fp32"  # decoder: "bf16" autocast where native (training.device)


@dataclass(frozen=True)
class Plan:
    """What a render resolves from the parameters and the main model's corpus."""

    mode: str  # "oneshot" | "texture"
    length: int  # samples requested (a one-shot's maximum)
    loudness: float  # LUFS a texture is matched to


def plan(voices: list[Voice], params: GenerationParams) -> Plan:
    corpus = voices[0].sampler.corpus
    mode = params.mode or corpus.mode
    seconds = params.duration
    if seconds is None and mode == "oneshot":
        seconds = MAX_ONESHOT_SECONDS
    elif seconds is None:
        typical = TEXTURE_SECONDS if corpus.mode == "oneshot" else corpus.typical_seconds
        seconds = min(max(typical, TEXTURE_SECONDS_RANGE[0]), TEXTURE_SECONDS_RANGE[1])
    length = round(seconds * voices[0].spectral.sample_rate)
    return Plan(mode=mode, length=length, loudness=corpus.loudness)


def place_events(voices: list[Voice], params: GenerationParams, mode: str, n_frames: int):
    """Every voice's events: each from its own seeded stream (seed, voice number)."""
    spectral = voices[0].spectral
    events: list[Event] = []
    for number, voice in enumerate(voices):
        rng = (
            as_generator(params.seed)
            if number == 0
            else np.random.default_rng([params.seed, number])
        )
        width = voice.model.config.frames
        if mode == "oneshot":
            events += oneshot_layout(
                voice.sampler,
                rng,
                n_frames=n_frames,
                width=width,
                pick=params.seed,
                voice=number,
                gain=voice.weight,
            )
        else:
            events += texture_layout(
                voice.sampler,
                rng,
                n_frames=n_frames,
                width=width,
                frame_rate=frame_rate(spectral),
                density=params.density,
                voice=number,
                gain=voice.weight,
            )
    return events


def nearby(events: list[Event], voices: list[Voice], seed: int) -> list[Event]:
    """The same events with each one's latents moved NEARBY spreads by its own draw."""
    rng = np.random.default_rng([seed, NEARBY_SEED])
    moved = []
    for e in events:
        spread = voices[e.voice].spread.double()
        eps = torch.from_numpy(rng.standard_normal(spread.numel()))
        moved.append(
            Event(
                e.voice,
                e.start,
                (e.latents.double() + NEARBY * spread * eps).float(),
                e.gain,
                e.cut,
            )
        )
    return moved


@torch.no_grad()
def generate_audio(voices: list[Voice], params: GenerationParams) -> np.ndarray:
    """(T,) float32 mono, or (2, T) for stereo and binaural, at the first voice's sample rate."""
    params.validate()
    check_compatible([v.spectral for v in voices])
    for voice in voices:
        voice.model.eval()
    spectral = voices[0].spectral
    rate = spectral.sample_rate
    resolved = plan(voices, params)
    events = place_events(voices, params, resolved.mode, spectral.frames_for(resolved.length))
    length, cut = resolved.length, resolved.mode == "texture"
    if resolved.mode == "oneshot":  # no longer than the events themselves
        width = voices[0].model.config.frames
        covered = max(e.start + event_frames(len(e.latents), width) for e in events)
        cut = covered * spectral.hop_length > length  # -d ends it before its natural end
        length = min(length, covered * spectral.hop_length)
    mono = render_events(voices, events, length)
    side = None
    if params.spatial.mode == "stereo":
        side = render_events(voices, nearby(events, voices, params.seed), length)
    if resolved.mode == "oneshot":
        mono, side = oneshot_bounds(mono, rate, cut=cut, side=side)
    out = spatialize(mono, rate, params.spatial, seed=params.seed, side=side)
    return apply_level(out, rate, params.level, resolved.mode, resolved.loudness)


def render_events(voices: list[Voice], events: list[Event], length: int) -> np.ndarray:
    """(length,) float32: the events decoded, mixed and inverted once."""
    spectral = voices[0].spectral
    frames = EventFrames(
        events,
        [v.model for v in voices],
        [v.stats for v in voices],
        spectral,
        precision=voices[0].precision,
    )
    return synthesize_long(frames, spectral, length=length, stats=ChannelStats())
