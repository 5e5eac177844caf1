"""The chunk grid: how a signal's frames are cut into the model's 1 s chunks, and encoded.

Chunk c covers frames [c·H, c·H + W) with W = the model's chunk width (94 frames = 1 s at 48 kHz,
hop 512) and H = W // 2 = 47 frames (≈ 0.5 s): every frame lies under two chunks, as training
chunks overlap by half. Resynthesis, the corpus memory and generation all use this one grid, so a
file's chunk sequence encoded here decodes back in place. `encode_stream` encodes a signal of any
length from its frames as they arrive (a long resynthesis never holds all of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG

ENCODE_BATCH = 16  # chunks per encoder/decoder call


def chunk_count(n_frames: int, width: int, hop: int) -> int:
    """Chunks needed so that every one of `n_frames` frames lies under at least one."""
    return 1 if n_frames <= width else math.ceil((n_frames - width) / hop) + 1


def chunk_hop(width: int) -> int:
    return max(1, width // 2)


def chunk_weights(width: int) -> torch.Tensor:
    """(width,) periodic Hann weights sin²(π(j + ½)/W), strictly positive, summing to 1 at 50 %
    overlap."""
    j = torch.arange(width, dtype=torch.float32)
    return torch.sin(math.pi * (j + 0.5) / width) ** 2


def silence(stats: ChannelStats, spectral: SpectralConfig) -> tuple[float, float]:
    """Normalized values of a silent frame: log magnitude at the floor, IF masked to 0."""
    log_floor = math.log(spectral.log_floor)
    return ((log_floor - stats.mean[MAG]) / stats.std[MAG], (0.0 - stats.mean[IF]) / stats.std[IF])


@torch.no_grad()
def encode_grid(
    model: ConvVAE, spec: torch.Tensor, stats: ChannelStats, spectral: SpectralConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 2, M, N) normalized frames → (μ, σ) of each chunk on the grid, each (n_chunks, D).

    The last chunk is padded with silent frames (what the model saw after a short file's end).
    """
    width = model.config.frames
    hop = chunk_hop(width)
    n_frames = spec.shape[-1]
    n_chunks = chunk_count(n_frames, width, hop)
    padded_frames = (n_chunks - 1) * hop + width
    padded = torch.empty(1, 2, spec.shape[2], padded_frames, dtype=spec.dtype, device=spec.device)
    for channel, value in enumerate(silence(stats, spectral)):
        padded[:, channel] = value
    padded[..., :n_frames] = spec
    chunks = padded[0].unfold(-1, width, hop).permute(2, 0, 1, 3)  # (n_chunks, 2, M, W)
    mus, sigmas = [], []
    for start in range(0, n_chunks, ENCODE_BATCH):
        mu, logvar = model.encode(chunks[start : start + ENCODE_BATCH].contiguous())
        mus.append(mu.float())
        sigmas.append(torch.exp(0.5 * logvar.float()))
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def encode_stream(
    model: ConvVAE,
    segments: Iterable[torch.Tensor],
    stats: ChannelStats,
    spectral: SpectralConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_grid over frames that arrive as consecutive (2, M, n) normalized segments: the
    same (μ, σ), holding one segment and one batch of chunks at a time, whatever the length."""
    width = model.config.frames
    hop = chunk_hop(width)
    device = next(model.parameters()).device
    pending: torch.Tensor | None = None  # frames from `start` on, not yet under every chunk
    start, chunk = 0, 0  # global index of pending's first frame; the next chunk to encode
    batch: list[torch.Tensor] = []
    mus, sigmas = [], []

    def encode(final: bool = False) -> None:
        if batch and (final or len(batch) == ENCODE_BATCH):
            mu, logvar = model.encode(torch.stack(batch))
            mus.append(mu.float())
            sigmas.append(torch.exp(0.5 * logvar.float()))
            batch.clear()

    for segment in segments:
        segment = segment.to(device)
        pending = segment if pending is None else torch.cat([pending, segment], dim=-1)
        while chunk * hop + width <= start + pending.shape[-1]:
            at = chunk * hop - start
            batch.append(pending[:, :, at : at + width])
            chunk += 1
            encode()
        keep = chunk * hop - start  # frames before the next chunk's first are done with
        pending, start = pending[:, :, keep:], start + keep
    if pending is None:
        raise ValueError("no frames to encode")
    n_chunks = chunk_count(start + pending.shape[-1], width, hop)
    if chunk < n_chunks:  # the last chunks, padded with silent frames past the end
        padded = torch.empty(2, pending.shape[1], (n_chunks - chunk - 1) * hop + width)
        for channel, value in enumerate(silence(stats, spectral)):
            padded[channel] = value
        padded = padded.to(pending)
        padded[:, :, : pending.shape[-1]] = pending
        for c in range(n_chunks - chunk):
            batch.append(padded[:, :, c * hop : c * hop + width])
            encode()
    encode(final=True)
    return torch.cat(mus), torch.cat(sigmas)
