"""ConvVAE over 2-channel spectrogram chunks.

Shape walk-through for the default 1 s chunk (every size is derived from the config, never lazily):
  input (B, 2, 128, 94) → pad to a multiple of 2⁵ = 32 → (B, 2, 128, 96)
  five stride-2 blocks: 2 → 16 → 32 → 64 → 128 → 256 channels, 128 × 96 → 4 × 3
  flatten 256 · 4 · 3 = 3 072 → linear heads μ, log σ² (latent 128)
  decoder mirrors it: 128 → 3 072 → (256, 4, 3) → … → (2, 128, 96) → crop to (2, 128, 94)
The output layer is linear in both channels: the normalized targets are unbounded (log magnitude
and IF are each zero-mean unit-variance with tails past ±5), and a squashing head (Softplus/Tanh)
would put a noise floor under every sound the model makes.

Beside the upsampling stages, a small MLP on the latent draws `profile_rank` band profiles and as
many time profiles; their products, a rank-K map, are added to the decoder's log-magnitude channel
(`_Profiles`). Five stride-2 transposed convolutions smear what a one-shot is made of: an onset is
a step in time, a ringing partial a line in frequency, and a hit's log magnitude is close to a
spectrum plus a decay rate per band. A rank-K map draws each of these at full resolution in one
step. Measured (BENCHMARKS.md, "Fidelity", round 10), at the same 120 epochs: held-out drums
1.52 → 1.44, log-spectral distance −2 dB, notes 1.056 → 1.037, ~5 % more time per step; at the
same 15 minutes: drums level, notes 0.981 → 0.973, training files better. On both channels it
drew the drums sharper still (1.38) but cost the notes (1.114): the IF of a held-out note's
partials is not a profile of the training notes'.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from distill.spectral.config import SpectralConfig
from distill.spectral.transform import MAG

# Measured: started at log σ² ≈ 0 (σ ≈ 1), a 15-minute model still had σ ≈ 0.6 for a spread of μ
# across files of ≈ 0.6. The decoder saw mostly noise, learned the average, and its notes came out
# without a single harmonic. Started small, the decoder can use the latent from the first step;
# the KL term (after its warm-up) still keeps the posterior a distribution.
INITIAL_LOGVAR = -5.0


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 128  # input height (mel bands)
    frames: int = 94  # input width (STFT frames per chunk)
    latent_dim: int = 128
    # One stride-2 block each. A quarter of the seed design's widths (64 … 1024, 17 M parameters):
    # 2.0 M parameters, ~3× the optimizer steps in the same minutes on a CPU, and better held-out
    # resynthesis after 5 and 15 minutes (BENCHMARKS.md, "Fidelity"). Files keep their own widths.
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    arch: str = "conv2d"  # a key of ARCHITECTURES; files from before the key are conv2d
    dropout: float = 0.1  # on the flattened features, before the latent heads
    # log σ² is soft-clamped to ±logvar_limit: an unbounded log-variance let the KL term reach
    # 1e7–1e8 in an earlier design while its weight was still warming up from 0.
    logvar_limit: float = 8.0
    # Rank of the profile map added to the decoder's log magnitude (_Profiles); 0 = none. Files
    # from before the key have none.
    profile_rank: int = 8

    @classmethod
    def for_spectral(cls, spectral: SpectralConfig, **overrides) -> ModelConfig:
        return cls(n_mels=spectral.n_mels, frames=spectral.chunk_frames, **overrides)

    @property
    def reduction(self) -> int:
        """Total downsampling factor: 2 per block, 32 for five blocks."""
        return 2 ** len(self.channels)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Input padded up to a multiple of `reduction` in both axes: (128, 96) by default."""
        r = self.reduction
        return (math.ceil(self.n_mels / r) * r, math.ceil(self.frames / r) * r)

    @property
    def bottleneck_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) after the encoder: (1024, 4, 3) by default."""
        h, w = self.padded_shape
        return (self.channels[-1], h // self.reduction, w // self.reduction)

    @property
    def flatten_dim(self) -> int:
        c, h, w = self.bottleneck_shape
        return c * h * w  # 3 072 by default

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {sorted(unknown)}")
        values = dict(data)
        values.setdefault("profile_rank", 0)  # files from before the profiles
        if "channels" in values:
            values["channels"] = tuple(int(c) for c in values["channels"])
        return cls(**values)


def _start_nearly_deterministic(to_logvar: nn.Linear) -> None:
    """The log σ² head starts at INITIAL_LOGVAR whatever the input (after the soft clamp log σ² ≈
    −4.4, σ ≈ 0.11), not at ≈ 0 (σ ≈ 1)."""
    nn.init.zeros_(to_logvar.weight)
    nn.init.constant_(to_logvar.bias, INITIAL_LOGVAR)


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 channels per group, at most 32 groups (independent of batch size)."""
    return max(1, min(32, channels // 8))


# 3 × 3 kernels, stride 2: each block halves both axes exactly (128 × 96 → 64 × 48 …; transposed
# convs use output_padding 1 to double them back). 4 × 4 kernels cost 16/9 the FLOPs for no
# measured gain: the bare model trained at 39 vs 68 samples/s (bf16, 2 cores, batch 32).
def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1),
        nn.GroupNorm(_groups(c_out), c_out),
        nn.LeakyReLU(0.2),
    )


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1, output_padding=1),
        nn.GroupNorm(_groups(c_out), c_out),
        nn.LeakyReLU(0.2),
    )


class _Profiles(nn.Module):
    """(B, latent_dim) → (B, H, W): Σₖ band profileₖ(h) · time profileₖ(w), a rank-K map.

    The band side starts at 0, so a new model starts as the upsampling stages alone; the time
    side keeps its random start so that the band side gets a gradient from the first step.
    """

    def __init__(self, latent_dim: int, rank: int, height: int, width: int) -> None:
        super().__init__()
        self.rank, self.height, self.width = rank, height, width
        hidden = 4 * latent_dim
        self.hidden = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2))
        self.times = nn.Linear(hidden, rank * width)
        self.bands = nn.Linear(hidden, rank * height)
        nn.init.zeros_(self.bands.weight)
        nn.init.zeros_(self.bands.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(z)
        times = self.times(hidden).view(-1, self.rank, self.width)
        bands = self.bands(hidden).view(-1, self.rank, self.height)
        return torch.einsum("bkh,bkw->bhw", bands, times)


class ConvVAE(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = (2, *config.channels)
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in itertools.pairwise(widths)))
        self.dropout = nn.Dropout(config.dropout)
        self.to_mu = nn.Linear(config.flatten_dim, config.latent_dim)
        self.to_logvar = nn.Linear(config.flatten_dim, config.latent_dim)
        _start_nearly_deterministic(self.to_logvar)
        self.from_latent = nn.Linear(config.latent_dim, config.flatten_dim)
        reversed_widths = widths[::-1]  # 1024 → … → 64 → 2
        self.decoder = nn.Sequential(
            *(_up(a, b) for a, b in itertools.pairwise(reversed_widths[:-1])),
            # Final layer: linear output (no norm, no activation) for both channels.
            nn.ConvTranspose2d(
                reversed_widths[-2], 2, kernel_size=3, stride=2, padding=1, output_padding=1
            ),
        )
        self.profiles = (
            _Profiles(config.latent_dim, config.profile_rank, *config.padded_shape)
            if config.profile_rank
            else None
        )

    def encode(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2, n_mels, frames) normalized → μ, log σ², each (B, latent_dim)."""
        h, w = self.config.padded_shape
        x = nn.functional.pad(spec, (0, w - spec.shape[-1], 0, h - spec.shape[-2]))
        features = self.dropout(self.encoder(x).flatten(1))  # (B, flatten_dim)
        limit = self.config.logvar_limit
        logvar = limit * torch.tanh(self.to_logvar(features) / limit)
        return self.to_mu(features), logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) → (B, 2, n_mels, frames) normalized."""
        return self.draw(self.from_latent(z), z)

    def draw(self, features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The decoder from its first feature map: `features` (B, flatten_dim), what
        `from_latent` makes of z, through the upsampling stages, plus z's profile map."""
        x = self.decoder(features.view(-1, *self.config.bottleneck_shape))
        if self.profiles is not None:
            magnitude = x[:, MAG] + self.profiles(z)
            x = torch.cat([magnitude.unsqueeze(1), x[:, MAG + 1 :]], dim=1)
        return x[..., : self.config.n_mels, : self.config.frames]

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction, μ, log σ²); samples z = μ + σ·ε in training mode only."""
        mu, logvar = self.encode(spec)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


# Every architecture a model file may name in its "arch" key. One was tried and measured worse
# (BENCHMARKS.md): "frames", time-only 1-D convolutions with the 2 × 128 bands of a frame as
# channels, 2.3× faster per step but far behind per step and per minute on held-out notes.
ARCHITECTURES: dict[str, type[ConvVAE]] = {"conv2d": ConvVAE}


def parameter_count(config: ModelConfig) -> int:
    """Weights of the model `config` describes, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in build(config).parameters())


def build(config: ModelConfig) -> ConvVAE:
    """The model a config describes (its `arch`), with fresh weights."""
    return ARCHITECTURES[config.arch](config)
