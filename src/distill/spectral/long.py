"""Analysis and synthesis of signals of any length in bounded memory: segment by segment.

Analysis (`LongAnalysis`) reads the signal as blocks, twice: once for the loudest band-frame
(the IF mask is relative to it), once to make the frames, a segment at a time, exactly as
`analyze` makes them from the whole signal (each frame's samples are the same, and a segment
starts one frame early so its first frame's IF has the phase before it).

Synthesis:

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
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from distill.spectral.config import SpectralConfig
from distill.spectral.inverse import band_phase_advance, mel_to_linear, phase_from_if, refine_phase
from distill.spectral.melscale import MelBands, mel_bands
from distill.spectral.normalize import ChannelStats
from distill.spectral.stft import istft, window
from distill.spectral.transform import (
    analysis_bands,
    assemble,
    band_db,
    decode_bands,
    magnitude_scale,
)

# frames(start, stop) → (2, n_mels, stop − start) normalized frames of the signal
FrameSource = Callable[[int, int], torch.Tensor]


# () → an iterable of consecutive float32 sample blocks of the signal (called once per pass)
BlockSource = Callable[[], Iterable[np.ndarray]]


class LongAnalysis:
    """`analyze`'s frames of a long signal, as (2, M, n) unnormalized segments in order.

    Iterate it once; `length` (samples) is known when the iteration has ended. Memory holds a
    segment's samples and frames (~60 MB at 2 048 frames), whatever the signal's length.
    """

    def __init__(
        self,
        blocks: BlockSource,
        cfg: SpectralConfig,
        *,
        segment_frames: int = 2048,
        bands: MelBands | None = None,
    ) -> None:
        self.blocks, self.cfg, self.segment_frames = blocks, cfg, segment_frames
        self.bands = bands or mel_bands(cfg)
        self.length: int | None = None
        self._total = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        peak_db = torch.tensor(-math.inf)  # the whole signal's loudest band-frame, dB
        for band_mag, _ in self._segments():
            peak_db = torch.maximum(peak_db, band_db(band_mag).amax())
        for band_mag, deviation in self._segments():
            yield assemble(band_mag, deviation, peak_db, self.cfg)[0]
        self.length = self._total

    def _segments(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(band magnitudes, IF deviations) of consecutive frame segments."""
        cfg, hop, half = self.cfg, self.cfg.hop_length, self.cfg.n_fft // 2
        # Frame n (centred) covers samples [n·hop − half, n·hop + half); before sample 0 and
        # after the end the signal is zeros, as stft's constant padding makes it.
        buffer, buffer_start = np.zeros(half, dtype=np.float32), -half
        first, total = 0, 0  # the next frame to make; samples read
        for block in self.blocks():
            buffer = np.concatenate([buffer, np.asarray(block, dtype=np.float32)])
            total += len(block)
            while (first + self.segment_frames - 1) * hop + half <= total:
                stop = first + self.segment_frames
                yield self._frames(buffer, buffer_start, first, stop)
                first = stop
                keep = (first - 1) * hop - half  # the samples the next segment starts with
                buffer, buffer_start = buffer[keep - buffer_start :], keep
        self._total = total
        n_frames = cfg.frames_for(total)
        end = (n_frames - 1) * hop + half
        buffer = np.pad(buffer, (0, max(0, end - (buffer_start + len(buffer)))))
        while first < n_frames:
            stop = min(first + self.segment_frames, n_frames)
            yield self._frames(buffer, buffer_start, first, stop)
            first = stop

    def _frames(
        self, buffer: np.ndarray, buffer_start: int, first: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Band magnitudes and IF of frames [first, stop), each (1, M, stop − first)."""
        cfg, hop, half = self.cfg, self.cfg.hop_length, self.cfg.n_fft // 2
        lead = 1 if first > 0 else 0  # the frame before: its phase is the first one's reference
        lo = (first - lead) * hop - half - buffer_start
        hi = (stop - 1) * hop + half - buffer_start
        samples = torch.from_numpy(buffer[lo:hi])[None]
        spec = torch.stft(
            samples,
            n_fft=cfg.n_fft,
            hop_length=hop,
            window=window(cfg, samples),
            center=False,
            return_complex=True,
        ) / magnitude_scale(cfg)
        band_mag, deviation = analysis_bands(spec, cfg, self.bands)
        return band_mag[..., lead:], deviation[..., lead:]


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
    out = np.empty(length, dtype=np.float32)
    at = 0
    for block in iter_synthesize_long(
        frames,
        cfg,
        length=length,
        stats=stats,
        segment_frames=segment_frames,
        context_frames=context_frames,
        crossfade_frames=crossfade_frames,
        refine_iterations=refine_iterations,
        bands=bands,
    ):
        out[at : at + len(block)] = block
        at += len(block)
    return out


def iter_synthesize_long(
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
) -> Iterator[np.ndarray]:
    """synthesize_long's waveform as consecutive float32 blocks (one per segment) that
    concatenate to it: memory holds a segment, never the whole output."""
    if not 0 <= crossfade_frames <= context_frames:
        raise ValueError("crossfade_frames must be between 0 and context_frames")
    bands = bands or mel_bands(cfg)
    hop = cfg.hop_length
    n_frames = cfg.frames_for(length)
    iterations = cfg.refine_iterations if refine_iterations is None else refine_iterations
    fade = crossfade_frames * hop  # samples blended between neighbouring segments
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / max(fade, 1)) ** 2  # 0 → 1
    tail = np.zeros(0, dtype=np.float32)  # the previous segment's audio past its owned samples

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
        bin_phase = phase_from_if(
            band_freq, band_mag, bands, cfg, start_phase=phase, first_frame=first
        )
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
        block = np.empty(write_stop - write_start, dtype=np.float32)
        block[:n] = (
            tail[:n] * (1 - ramp[:n]) + audio[write_start - offset : blend_stop - offset] * ramp[:n]
        )
        block[n:] = audio[blend_stop - offset : write_stop - offset]
        if owned_stop < n_frames:  # the tail the next segment blends into
            tail_stop = min(write_stop + fade, length)
            tail = audio[write_stop - offset : tail_stop - offset].copy()
        yield block

        # θ before the next segment's first frame: this segment's phase plus the advances of
        # its frames in between (the same sum phase_from_if made, so no drift between them).
        next_first = max(0, owned_stop - context_frames)
        advance = band_phase_advance(band_freq[..., : next_first - first], cfg)
        phase = torch.remainder(phase + advance.sum(dim=-1), 2 * math.pi)
        owned_start = owned_stop
