"""Resynthesis: run audio of any length through a model (encode → μ → decode → one inverse).

The whole file is analysed once; its frames are cut into chunks of the model's width (94 frames)
at 50 % overlap, the same grid generation uses; each chunk is encoded to μ, optionally moved by
slider offsets, decoded, and the decoded chunks are overlap-added in the spectrogram domain
(generation.frames). One inverse over the whole length, segment by segment with one running
phase (spectral.long), turns them into audio of exactly the input's length: sample-aligned with
the input, with no seam to click.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from distill.generation.frames import DECODE_BATCH, DecodedFrames, chunk_count, chunk_hop
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG, analyze


def silence(stats: ChannelStats, spectral: SpectralConfig) -> tuple[float, float]:
    """Normalized values of a silent frame: log magnitude at the floor, IF masked to 0."""
    log_floor = math.log(spectral.log_floor)
    return ((log_floor - stats.mean[MAG]) / stats.std[MAG], (0.0 - stats.mean[IF]) / stats.std[IF])


@torch.no_grad()
def encode_frames(
    model: ConvVAE, spec: torch.Tensor, stats: ChannelStats, spectral: SpectralConfig
) -> torch.Tensor:
    """(1, 2, M, N) normalized frames → μ of each chunk on the generation grid, (n_chunks, D)."""
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
    mus = [
        model.encode(chunks[start : start + DECODE_BATCH].contiguous())[0].float()
        for start in range(0, n_chunks, DECODE_BATCH)
    ]
    return torch.cat(mus)


@torch.no_grad()
def resynthesize(
    model: ConvVAE,
    audio: torch.Tensor | np.ndarray,
    stats: ChannelStats,
    spectral: SpectralConfig,
    *,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """(T,) or (1, T) audio at spectral.sample_rate → the model's version, (T,) float32.

    `offset` (D,) is added to every chunk's μ (slider moves, see controls).
    """
    model.eval()
    audio = torch.as_tensor(audio).reshape(1, -1).float()
    device = next(model.parameters()).device
    spec = stats.normalize(analyze(audio, spectral)).to(device)
    latents = encode_frames(model, spec, stats, spectral)
    if offset is not None:
        latents = latents + offset.to(latents)
    frames = DecodedFrames(model, latents)
    out = synthesize_long(frames, spectral, length=audio.shape[-1], stats=stats)
    return torch.from_numpy(out)
