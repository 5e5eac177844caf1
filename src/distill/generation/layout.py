"""Time that keeps every attack: events placed on the frame axis, each a decoded chunk sequence.

An *event* is one chunk sequence (generation.sampling) starting at a frame: its chunks overlap-add
among themselves on the model's grid (model.grid), exactly as the recording it came from was cut,
so an attack inside it lies under the previous chunk too and is never faded out, and its first
chunk starts at full weight. Events never cross-fade in: where one is cut short (a texture segment
that ends before its recording did) only its *tail* fades out, over one chunk hop (≈ 0.5 s),
while the next starts at full level.

    one-shot:  one event at frame 0 (the take is trimmed to its natural decay afterwards).
    texture, one-shot corpus:  events at about the corpus's onset rate × `density`, gaps drawn
               from a gamma distribution (shape 4: regular but not mechanical), the first at 0.
    texture, continuous corpus:  segments of 2–6 s from recordings, one after the other, each
               overlapping the previous one by one hop; a segment mostly goes on where the last
               one stopped, sometimes moves to a neighbouring recording (sampling.segment).

Events are mixed in the magnitude domain (generation.blend's rule: linear magnitudes add, each
band's IF follows the louder event), then one inverse over the whole take (spectral.long).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from distill.generation.sampling import LatentSampler
from distill.model.grid import chunk_hop, chunk_weights
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG

RATE_LIMITS = (0.25, 8.0)  # events per second in a texture from one-shots
GAP_SHAPE = 4.0  # gamma shape of the gaps between events: 1 = Poisson, ∞ = a metronome
SEGMENT_SECONDS = (2.0, 6.0)  # texture segments from continuous recordings
DECODE_BATCH = 16


@dataclass(frozen=True)
class Event:
    voice: int  # index of the voice (model) that decodes it
    start: int  # frame of its first chunk's first frame
    latents: torch.Tensor  # (n_chunks, D)
    gain: float = 1.0  # linear magnitude factor (a blend voice's weight)
    cut: bool = False  # True: fade its last hop out (it ends before its recording did)


def event_frames(n_chunks: int, width: int) -> int:
    """Frames an event of `n_chunks` chunks covers."""
    return (n_chunks - 1) * chunk_hop(width) + width


def oneshot_layout(
    sampler: LatentSampler,
    rng,
    *,
    n_frames: int,
    width: int,
    pick: int,
    voice: int = 0,
    gain: float = 1.0,
) -> list[Event]:
    """One event from a recording's start (chosen by `pick`, the take's seed: see
    LatentSampler.base), as many chunks as fit in `n_frames`."""
    max_chunks = max(1, math.ceil(max(0, n_frames - width) / chunk_hop(width)) + 1)
    latents = sampler.draw(rng, chunks=max_chunks, pick=pick)
    return [Event(voice, 0, latents, gain)]


def event_times(rng, *, rate: float, n_frames: int, frame_rate: float) -> list[int]:
    """Start frames of events at `rate` per second: 0, then gamma-distributed gaps."""
    rate = min(max(rate, RATE_LIMITS[0]), RATE_LIMITS[1])
    starts, t = [0], 0.0
    while True:
        t += float(rng.gamma(GAP_SHAPE, 1.0 / (rate * GAP_SHAPE)))
        frame = round(t * frame_rate)
        if frame >= n_frames:
            return starts
        starts.append(frame)


def texture_layout(
    sampler: LatentSampler,
    rng,
    *,
    n_frames: int,
    width: int,
    frame_rate: float,
    density: float,
    voice: int = 0,
    gain: float = 1.0,
) -> list[Event]:
    """Events filling `n_frames`: one-shots at the corpus's rate, or chained segments."""
    corpus = sampler.corpus
    hop = chunk_hop(width)
    if corpus.mode == "oneshot":
        events = []
        for start in event_times(
            rng, rate=corpus.onset_rate * density, n_frames=n_frames, frame_rate=frame_rate
        ):
            left = n_frames - start
            chunks = max(1, math.ceil(max(0, left - width) / hop) + 1)
            events.append(Event(voice, start, sampler.draw(rng, chunks=chunks), gain))
        return events
    events, start, after = [], 0, None
    seconds_per_chunk = hop / frame_rate
    while start < n_frames:
        seconds = float(rng.uniform(*SEGMENT_SECONDS))
        chunks = max(2, round(seconds / seconds_per_chunk))
        latents, after = sampler.segment(rng, chunks, after)
        end = start + event_frames(len(latents), width)
        events.append(Event(voice, start, latents, gain, cut=end < n_frames))
        if end >= n_frames:
            return events
        start = end - hop  # the next segment starts under this one's last hop (its fade)
    return events


class EventFrames:
    """A frame source (spectral.long.FrameSource) mixing placed events into unnormalized
    (log magnitude, IF) frames; frames must be asked for in increasing order.

    Chunks are decoded lazily, in batches across events, and forgotten once behind the request,
    so memory holds a segment's worth whatever the take's length.
    """

    def __init__(
        self,
        events: list[Event],
        models: list[ConvVAE],
        stats: list[ChannelStats],
        spectral: SpectralConfig,
        precision: str = "fp32",
    ) -> None:
        self.events = sorted(events, key=lambda e: e.start)
        self.models, self.stats = models, stats
        self.precision = precision
        self.width = models[0].config.frames
        self.hop = chunk_hop(self.width)
        self.device = next(models[0].parameters()).device
        self.weights = chunk_weights(self.width).to(self.device)
        self.floor = math.exp(math.log(spectral.log_floor))
        self.n_mels = models[0].config.n_mels
        self._decoded: dict[tuple[int, int], torch.Tensor] = {}  # (event, chunk) → (2, M, W)

    def _span(self, event: Event) -> tuple[int, int]:
        return event.start, event.start + event_frames(len(event.latents), self.width)

    @torch.no_grad()
    def _decode(self, keys: list[tuple[int, int]]) -> None:
        by_voice: dict[int, list[tuple[int, int]]] = {}
        for key in keys:
            by_voice.setdefault(self.events[key[0]].voice, []).append(key)
        for voice, voice_keys in by_voice.items():
            model = self.models[voice]
            for i in range(0, len(voice_keys), DECODE_BATCH):
                batch = voice_keys[i : i + DECODE_BATCH]
                z = torch.stack([self.events[e].latents[c] for e, c in batch])
                z = z.to(self.device, torch.float32)
                with torch.autocast(
                    self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
                ):
                    decoded = model.decode(z).float()
                spec = self.stats[voice].denormalize(decoded)  # (B, 2, M, W) log mag, IF
                for key, one in zip(batch, spec, strict=True):
                    self._decoded[key] = one

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        """(2, M, stop − start) unnormalized frames."""
        n = stop - start
        active = [i for i, e in enumerate(self.events) if self._overlaps(e, start, stop)]
        for key in [k for k in self._decoded if self._span(self.events[k[0]])[1] <= start]:
            del self._decoded[key]
        wanted = []
        for i in active:
            e = self.events[i]
            for c in range(len(e.latents)):
                lo = e.start + c * self.hop
                if lo < stop and lo + self.width > start and (i, c) not in self._decoded:
                    wanted.append((i, c))
        self._decode(wanted)
        magnitude = torch.zeros(self.n_mels, n, device=self.device)
        weighted_if = torch.zeros(self.n_mels, n, device=self.device)
        for i in active:  # each event only over the frames it covers
            lo, hi = self._span(self.events[i])
            lo, hi = max(lo, start), min(hi, stop)
            mag, inst = self._event_frames(i, lo, hi)
            magnitude[:, lo - start : hi - start] += mag
            weighted_if[:, lo - start : hi - start] += mag * inst
        inst_freq = weighted_if / magnitude.clamp(min=1e-30)
        log_mag = torch.log(magnitude.clamp(min=self.floor))
        return torch.stack([log_mag, inst_freq])

    def _overlaps(self, event: Event, start: int, stop: int) -> bool:
        lo, hi = self._span(event)
        return lo < stop and hi > start

    def _event_frames(self, index: int, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear magnitude and IF of one event over [start, stop) (inside its span)."""
        e = self.events[index]
        n = stop - start
        log_mag = torch.zeros(self.n_mels, n, device=self.device)
        inst = torch.zeros(self.n_mels, n, device=self.device)
        weight = torch.zeros(n, device=self.device)
        for c in range(len(e.latents)):
            c_lo = e.start + c * self.hop
            lo, hi = max(start, c_lo), min(stop, c_lo + self.width)
            if lo >= hi:
                continue
            j = slice(lo - c_lo, hi - c_lo)
            spec = self._decoded[(index, c)]
            w = self.weights[j]
            log_mag[:, lo - start : hi - start] += spec[MAG][:, j] * w
            inst[:, lo - start : hi - start] += spec[IF][:, j] * w
            weight[lo - start : hi - start] += w
        covered = weight > 0
        safe = torch.where(covered, weight, torch.ones_like(weight))
        gain = torch.where(covered, torch.full_like(weight, e.gain), torch.zeros_like(weight))
        if e.cut:  # fade the last hop out (raised cosine), the next segment is already in
            span_stop = self._span(e)[1]
            frames = torch.arange(start, stop, device=self.device, dtype=torch.float32)
            u = ((span_stop - frames) / self.hop).clamp(0.0, 1.0)
            gain = gain * (0.5 - 0.5 * torch.cos(math.pi * u))
        magnitude = torch.exp(log_mag / safe) * gain
        return magnitude, inst / safe


def frame_rate(spectral: SpectralConfig) -> float:
    return spectral.sample_rate / spectral.hop_length


def as_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed)))
