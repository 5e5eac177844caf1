"""Mel filterbank (Slaney scale: linear below 1 kHz, logarithmic above) and band geometry.

The Slaney scale keeps the lowest bands wider than one STFT bin (31.6 Hz spacing vs 23.4 Hz bins
at 48 kHz / 2048 with 128 bands), so no band is empty; HTK's scale would give bands narrower than a
bin below ~300 Hz.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from distill.spectral.config import SpectralConfig

_F_SP = 200.0 / 3  # Hz per mel below the break
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mels
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(hz, min=1e-9) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log, linear)


@dataclass(frozen=True)
class MelBands:
    """Filterbank and per-band geometry, all in STFT-bin units (float64 → cast at use)."""

    weights: torch.Tensor  # (n_mels, n_freqs): each row sums to 1 (a band = weighted mean of bins)
    center: torch.Tensor  # (n_mels,): band centre, in bins
    half_width: torch.Tensor  # (n_mels,): half the band's support, in bins (≥ 1)
    # The filterbank as sparse CSR matrices (float32), W and Wᵀ: every bin lies under at most two
    # triangles, so products with them cost ~2 % of the dense ones (see inverse.mel_to_linear).
    sparse_weights: torch.Tensor  # (n_mels, n_freqs)
    sparse_weights_t: torch.Tensor  # (n_freqs, n_mels)


def mel_bands(cfg: SpectralConfig) -> MelBands:
    """Triangular filters with edges equally spaced in mel between f_min and f_max."""
    n_freqs = cfg.n_freqs
    bin_hz = cfg.sample_rate / cfg.n_fft
    fft_hz = torch.arange(n_freqs, dtype=torch.float64) * bin_hz
    edges_mel = torch.linspace(
        float(hz_to_mel(torch.tensor(cfg.f_min, dtype=torch.float64))),
        float(hz_to_mel(torch.tensor(cfg.f_max, dtype=torch.float64))),
        cfg.n_mels + 2,
        dtype=torch.float64,
    )
    edges_hz = mel_to_hz(edges_mel)
    lower, center, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (fft_hz[None, :] - lower) / (center - lower)
    falling = (upper - fft_hz[None, :]) / (upper - center)
    tri = torch.clamp(torch.minimum(rising, falling), min=0.0)
    # A band narrower than a bin could miss every bin centre: give it its nearest bin.
    empty = tri.sum(dim=1) <= 0
    if bool(empty.any()):
        nearest = torch.round(center[:, 0] / bin_hz).long().clamp(0, n_freqs - 1)
        tri[empty, nearest[empty]] = 1.0
    weights = tri / tri.sum(dim=1, keepdim=True)
    dense = weights.to(torch.float32)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": matmul with it is stable
        warnings.simplefilter("ignore", UserWarning)
        sparse, sparse_t = dense.to_sparse_csr(), dense.T.contiguous().to_sparse_csr()
    return MelBands(
        weights=weights,
        sparse_weights=sparse,
        sparse_weights_t=sparse_t,
        center=center[:, 0] / bin_hz,
        half_width=torch.clamp((upper[:, 0] - lower[:, 0]) / (2 * bin_hz), min=1.0),
    )
