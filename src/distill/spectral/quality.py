"""How close a waveform is to a reference: the figures every benchmark reports.

- MR-STFT distance: auraloss' MultiResolutionSTFTLoss with its defaults (FFT 1024/2048/512,
  spectral convergence + log magnitude); 0 = identical, lower is better.
- Log-spectral distance (dB): RMS over bins of the dB difference of power spectra, averaged over
  frames (2048-point STFT, hop 512), with a −100 dB floor so silence does not dominate.
- SI-SDR (dB): scale-invariant signal-to-distortion ratio; phase-sensitive, higher is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Quality:
    mrstft: float
    lsd_db: float
    sisdr_db: float

    def to_dict(self) -> dict:
        return {"mrstft": self.mrstft, "lsd_db": self.lsd_db, "sisdr_db": self.sisdr_db}


def mrstft_distance(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    import auraloss  # imported here: only benchmarks and tests measure quality

    loss = auraloss.freq.MultiResolutionSTFTLoss()
    with torch.no_grad():
        return float(loss(_as_batch(estimate)[:, None], _as_batch(reference)[:, None]))


def log_spectral_distance(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    window = torch.hann_window(2048, dtype=torch.float64)

    def power_db(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(_as_batch(x).double(), 2048, 512, window=window, return_complex=True)
        return 10 * torch.log10(spec.abs().square().clamp(min=1e-10))

    diff = power_db(estimate) - power_db(reference)  # (B, F, N) dB
    return float(diff.square().mean(dim=1).sqrt().mean())


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    est, ref = _as_batch(estimate).double(), _as_batch(reference).double()
    est, ref = est - est.mean(-1, keepdim=True), ref - ref.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / ref.square().sum(-1, keepdim=True).clamp(min=1e-12)
    target = scale * ref
    noise = est - target
    ratio = target.square().sum(-1) / noise.square().sum(-1).clamp(min=1e-20)
    return (
        float((10 * torch.log10(ratio.clamp(min=1e-20))).mean())
        if math.isfinite(float(ratio.mean()))
        else float("inf")
    )


def measure(estimate: torch.Tensor, reference: torch.Tensor) -> Quality:
    """All three figures for two equally long waveforms (T,) or (B, T)."""
    if estimate.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(estimate.shape)} vs {tuple(reference.shape)}")
    return Quality(
        mrstft=mrstft_distance(estimate, reference),
        lsd_db=log_spectral_distance(estimate, reference),
        sisdr_db=si_sdr(estimate, reference),
    )


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    return (x if x.dim() == 2 else x[None]).to(torch.float32)
