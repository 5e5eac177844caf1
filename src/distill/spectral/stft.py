"""The STFT pair every stage shares (Hann window, centered frames) and phase helpers."""

from __future__ import annotations

import functools
import math

import torch

from distill.spectral.config import SpectralConfig


def window(cfg: SpectralConfig, like: torch.Tensor) -> torch.Tensor:
    dtype = like.real.dtype if like.is_complex() else like.dtype
    return _hann(cfg.n_fft, dtype, like.device)


@functools.lru_cache(maxsize=16)
def _hann(n_fft: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The same window for every call (an immutable constant; nothing writes into it)."""
    return torch.hann_window(n_fft, dtype=dtype, device=device)


def stft(audio: torch.Tensor, cfg: SpectralConfig) -> torch.Tensor:
    """(B, T) float → (B, n_freqs, frames) complex; frames = 1 + T // hop."""
    return torch.stft(
        audio,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=window(cfg, audio),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )


def istft(spec: torch.Tensor, cfg: SpectralConfig, length: int) -> torch.Tensor:
    """(B, n_freqs, frames) complex → (B, length): `length` is explicit so chunks never come back
    short (an earlier design lost 8 ms per 1 s chunk here and clicked at every boundary)."""
    return torch.istft(
        spec,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=window(cfg, spec),
        center=True,
        length=length,
    )


def principal_angle(phase: torch.Tensor) -> torch.Tensor:
    """Wrap radians into [-π, π)."""
    return torch.remainder(phase + math.pi, 2 * math.pi) - math.pi


def expected_advance(cfg: SpectralConfig, like: torch.Tensor) -> torch.Tensor:
    """(n_freqs, 1): phase advance per hop of a sinusoid at each bin's centre, in radians."""
    k = torch.arange(cfg.n_freqs, dtype=like.dtype, device=like.device)
    return (2 * math.pi * cfg.hop_length / cfg.n_fft * k)[:, None]
