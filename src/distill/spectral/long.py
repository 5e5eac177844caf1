"""Synthesis of signals of any length in bounded memory: segment by segment, one phase.

`synthesize` holds a whole signal's linear spectrogram several times over (NNLS, phase,
refinement): 10 min at 48 kHz is 56 251 frames × 1 025 bins, ~460 MB per complex copy. Here the
frames are pulled from a source one segment at a time (2 048 frames ≈ 21.8 s by default) with
`context` extra frames on each side, and:

- each band's phase is integrated **once over the whole signal**: a segment starts from the
  running phase the previous segments left (float64, wrapped), so the phase never restarts;
- the context frames let the consistency refinement see past the segment's edges: one step
  couples frames up to n_fft / hop − 1 = 3 apart, so 8 steps reach 24 frames < 32 and the owned
  frames come out as they would from one inverse over the whole signal (measured: 218 dB SNR
  between the two on 7 s of bell, pluck and noise with 64-frame segments);
- neighbouring segments overlap by `crossfade` frames of audio and are blended with a
  raised-cosine fade; both sides were computed from the same magnitudes and the same running
  phase there, so the blend is between two near-identical signals and cannot comb or click.

Memory: a few segments' worth of spectrogram (~200 MB at the defaults) whatever the length,
plus the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from distill.spectral.config import SpectralConfig
from distill.spectral.inverse import band_phase_advance, mel_to_linear, phase_from_if, refine_phase
from distill.spectral.melscale import MelBands, mel_bands
from distill.spectral.normalize import ChannelStats
from distill.spectral.stft import istft
from distill.spectral.transform import decode_bands, magnitude_scale

# frames(start, stop) → (2, n_mels, stop − start) normalized frames of the signal
FrameSource = Callable[[int, int], torch.Tensor]


def synthesize_long(
    frames: FrameSource,
    cfg: SpectralConfig,
    *,
    length: int,
    stats: ChannelStats,
    segment_frames: int = 2048,
    context_frames: int = 32,
    crossfade_frames: int = 8,
    refine_iterations: int | None = None,
    bands: MelBands | None = None,
) -> np.ndarray:
    """The (length,) float32 waveform of the 1 + length // hop frames that `frames` yields.

    Frames are requested in increasing order, each at most twice (segments overlap by
    2 · context), so a source may decode them lazily and forget what lies behind.
    """
    if not 0 <= crossfade_frames <= context_frames:
        raise ValueError("crossfade_frames must be between 0 and context_frames")
    bands = bands or mel_bands(cfg)
    hop = cfg.hop_length
    n_frames = cfg.frames_for(length)
    iterations = cfg.refine_iterations if refine_iterations is None else refine_iterations
    out = np.zeros(length, dtype=np.float32)
    fade = crossfade_frames * hop  # samples blended between neighbouring segments
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / max(fade, 1)) ** 2  # 0 → 1

    phase: torch.Tensor | None = None  # θ before the segment's first frame (float64, (1, M))
    owned_start = 0
    while owned_start < n_frames:
        owned_stop = min(owned_start + segment_frames, n_frames)
        first = max(0, owned_start - context_frames)
        last = min(owned_stop + context_frames, n_frames)
        spec = stats.denormalize(frames(first, last)[None].float())  # (1, 2, M, last − first)
        band_mag, band_freq = decode_bands(spec, cfg, bands)
        if phase is None:
            phase = torch.zeros(1, cfg.n_mels, dtype=torch.float64, device=spec.device)
        magnitude = mel_to_linear(band_mag, bands, cfg.nnls_iterations)
        bin_phase = phase_from_if(band_freq, band_mag, bands, cfg, start_phase=phase)
        seg_length = length - first * hop if last == n_frames else (last - first - 1) * hop
        spectrum = refine_phase(
            magnitude, bin_phase, cfg, seg_length, iterations, cfg.refine_momentum
        )
        audio = istft(spectrum * magnitude_scale(cfg), cfg, seg_length)[0].cpu().numpy()
        offset = first * hop  # global index of audio[0]

        # Owned samples; the first `fade` of them blend with the tail the previous segment left.
        write_start = owned_start * hop
        write_stop = length if owned_stop == n_frames else owned_stop * hop
        blend_stop = min(write_start + fade, write_stop) if owned_start > 0 else write_start
        n = blend_stop - write_start
        out[write_start:blend_stop] = (
            out[write_start:blend_stop] * (1 - ramp[:n])
            + audio[write_start - offset : blend_stop - offset] * ramp[:n]
        )
        out[blend_stop:write_stop] = audio[blend_stop - offset : write_stop - offset]
        if owned_stop < n_frames:  # the tail the next segment blends into
            tail_stop = min(write_stop + fade, length)
            out[write_stop:tail_stop] = audio[write_stop - offset : tail_stop - offset]

        # θ before the next segment's first frame: this segment's phase plus the advances of
        # its frames in between (the same sum phase_from_if made, so no drift between them).
        next_first = max(0, owned_stop - context_frames)
        advance = band_phase_advance(band_freq[..., : next_first - first], cfg)
        phase = torch.remainder(phase + advance.sum(dim=-1), 2 * math.pi)
        owned_start = owned_stop
    return out
