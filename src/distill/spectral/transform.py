"""Audio ↔ 2-channel representation: (B, T) ↔ (B, 2, n_mels, frames).

Channel 0: log mel magnitude, ln(max(band magnitude, log_floor)); a band's magnitude is the
           weighted mean of the linear STFT magnitudes under its triangle.
Channel 1: mel-domain instantaneous frequency as a deviation from the band's centre, in units of
           the band's half-width: (f_band − centre) / half_width. f_band is the power-weighted
           mean of the per-bin instantaneous frequencies in the band, each from the phase advance
           over one hop, unwrapped against the bin's expected advance. Absolute frequencies are
           averaged, not per-bin deviations: the bins of one partial all advance at the partial's
           frequency, but their deviations from their own centres differ by a bin (π/2 per hop at
           hop = n_fft/4). Masked to 0 where the band is too quiet for phase to mean anything.
"""

from __future__ import annotations

import math

import torch

from distill.spectral.config import SpectralConfig
from distill.spectral.inverse import mel_to_linear, phase_from_if, refine_phase
from distill.spectral.melscale import MelBands, mel_bands
from distill.spectral.normalize import ChannelStats
from distill.spectral.stft import expected_advance, istft, principal_angle, stft

MAG, IF = 0, 1  # channel indices


def magnitude_scale(cfg: SpectralConfig) -> float:
    """STFT magnitude of a full-scale sine at a bin centre (Hann: n_fft / 4), so that magnitudes
    read in full-scale units and `log_floor` means dBFS."""
    return cfg.n_fft / 4


def bin_frequencies(spec: torch.Tensor, cfg: SpectralConfig) -> torch.Tensor:
    """Per-bin instantaneous frequency in bins, (B, n_freqs, frames) real.

    Frame n's value comes from the phase advance between frames n−1 and n; frame 0 is taken
    against a zero phase before the signal. Valid within ±n_fft/(2·hop) = ±2 bins of the bin.
    """
    phase = torch.angle(spec)
    previous = torch.nn.functional.pad(phase[..., :-1], (1, 0))
    expected = expected_advance(cfg, phase)
    deviation = principal_angle(phase - previous - expected)  # radians per hop
    k = torch.arange(cfg.n_freqs, dtype=phase.dtype, device=phase.device)[:, None]
    return k + deviation * cfg.n_fft / (2 * math.pi * cfg.hop_length)


def analyze(
    audio: torch.Tensor, cfg: SpectralConfig, bands: MelBands | None = None
) -> torch.Tensor:
    """(B, T) float32 audio at cfg.sample_rate → (B, 2, n_mels, 1 + T // hop), unnormalized."""
    bands = bands or mel_bands(cfg)
    spec = stft(audio.to(torch.float32), cfg) / magnitude_scale(cfg)  # (B, F, N) complex
    band_mag, deviation = analysis_bands(spec, cfg, bands)
    peak_db = band_db(band_mag).amax(dim=(1, 2), keepdim=True)
    return assemble(band_mag, deviation, peak_db, cfg)


def analysis_bands(
    spec: torch.Tensor, cfg: SpectralConfig, bands: MelBands
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled STFT frames (B, F, N) → band magnitudes and IF deviations, (B, M, N) each.

    Frame n's IF comes from the phase of frame n − 1 (zero before the first): a caller that
    analyses a signal in segments passes one frame more on the left and drops its values.
    """
    power = spec.real.square() + spec.imag.square()
    weights = bands.weights.to(power)  # (M, F)
    band_mag = torch.einsum("mf,bfn->bmn", weights, power.sqrt())
    freqs = bin_frequencies(spec, cfg)
    band_power = torch.einsum("mf,bfn->bmn", weights, power)
    band_freq = torch.einsum("mf,bfn->bmn", weights, power * freqs) / band_power.clamp(min=1e-30)
    deviation = (band_freq - bands.center.to(power)[:, None]) / bands.half_width.to(power)[:, None]
    return band_mag, deviation


def band_db(band_mag: torch.Tensor) -> torch.Tensor:
    return 20 * torch.log10(torch.clamp(band_mag, min=1e-12))


def assemble(
    band_mag: torch.Tensor, deviation: torch.Tensor, peak_db: torch.Tensor, cfg: SpectralConfig
) -> torch.Tensor:
    """(B, 2, M, N): log magnitude, and IF where the band is within if_mask_db of `peak_db` (the
    signal's loudest band-frame, dB) and above the floor."""
    log_mag = torch.log(torch.clamp(band_mag, min=cfg.log_floor))
    db = band_db(band_mag)
    floor_db = 20 * math.log10(cfg.log_floor)
    audible = (db > peak_db - cfg.if_mask_db) & (db > floor_db)
    inst_freq = torch.where(audible, deviation, torch.zeros_like(deviation))
    return torch.stack([log_mag, inst_freq], dim=1)


# ln of +20 dBFS: predicted log magnitudes are clamped here before exponentiation so an untrained
# decoder cannot overflow the inverse (and the audio loss computed through it).
_MAX_LOG_MAG = math.log(10.0)


def decode_bands(
    spec: torch.Tensor, cfg: SpectralConfig, bands: MelBands
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, M, N) unnormalized → band magnitudes (linear, ≥ 0) and band frequencies (bins).

    Clamped bands (at the log floor) are silence: subtracting the floor makes them exactly 0
    instead of a −140 dBFS carpet whose phases could line up into audible clicks.
    """
    log_mag, inst_freq = spec[:, MAG], spec[:, IF]
    band_mag = torch.relu(torch.exp(log_mag.clamp(max=_MAX_LOG_MAG)) - cfg.log_floor)
    band_freq = bands.center.to(spec)[:, None] + inst_freq * bands.half_width.to(spec)[:, None]
    return band_mag, band_freq


def synthesize(
    spec: torch.Tensor,
    cfg: SpectralConfig,
    *,
    length: int,
    stats: ChannelStats | None = None,
    bands: MelBands | None = None,
    refine_iterations: int | None = None,
) -> torch.Tensor:
    """(B, 2, n_mels, frames) → (B, length) audio; differentiable with respect to `spec`.

    `stats` given: `spec` is normalized and is de-normalized first. `length` is the exact number
    of samples wanted (a chunk of cfg.chunk_samples comes back as cfg.chunk_samples).
    `refine_iterations` overrides cfg.refine_iterations (0 = pure IF phase).
    """
    bands = bands or mel_bands(cfg)
    if stats is not None:
        spec = stats.denormalize(spec)
    band_mag, band_freq = decode_bands(spec, cfg, bands)

    magnitude = mel_to_linear(band_mag, bands, cfg.nnls_iterations)
    phase = phase_from_if(band_freq, band_mag, bands, cfg)
    iterations = cfg.refine_iterations if refine_iterations is None else refine_iterations
    complex_spec = refine_phase(magnitude, phase, cfg, length, iterations, cfg.refine_momentum)
    return istft(complex_spec * magnitude_scale(cfg), cfg, length)
