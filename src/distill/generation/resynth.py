"""Resynthesis: run audio of any length through a model (encode → μ → decode → one inverse).

The whole file is analysed once; its frames are cut into blocks of the model's chunk width
(94 frames), each block is encoded to μ and decoded, the decoded blocks are laid back side by
side in the spectrogram domain, and a single inverse STFT over the whole length turns them into
audio — IF is integrated once across block boundaries, so there is no seam to click.
"""

from __future__ import annotations

import math

import torch

from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import IF, MAG, analyze, synthesize

BLOCKS_PER_BATCH = 16


def silence(stats: ChannelStats, spectral: SpectralConfig) -> tuple[float, float]:
    """Normalized values of a silent frame: log magnitude at the floor, IF masked to 0."""
    log_floor = math.log(spectral.log_floor)
    return ((log_floor - stats.mean[MAG]) / stats.std[MAG], (0.0 - stats.mean[IF]) / stats.std[IF])


@torch.no_grad()
def reconstruct_frames(
    model: ConvVAE, spec: torch.Tensor, stats: ChannelStats, spectral: SpectralConfig
) -> torch.Tensor:
    """(1, 2, M, N) normalized frames of any length → the model's (1, 2, M, N) reconstruction."""
    width = model.config.frames
    n_frames = spec.shape[-1]
    blocks = math.ceil(n_frames / width)
    padded = torch.empty(1, 2, spec.shape[2], blocks * width, dtype=spec.dtype, device=spec.device)
    for channel, value in enumerate(silence(stats, spectral)):
        padded[:, channel] = value
    padded[..., :n_frames] = spec
    chunks = padded.reshape(1, 2, spec.shape[2], blocks, width).permute(0, 3, 1, 2, 4)[0]
    decoded = []
    for start in range(0, blocks, BLOCKS_PER_BATCH):
        mu, _ = model.encode(chunks[start : start + BLOCKS_PER_BATCH])
        decoded.append(model.decode(mu).float())
    frames = torch.cat(decoded).permute(1, 2, 0, 3).reshape(2, spec.shape[2], blocks * width)
    return frames[None, ..., :n_frames]


@torch.no_grad()
def resynthesize(
    model: ConvVAE, audio: torch.Tensor, stats: ChannelStats, spectral: SpectralConfig
) -> torch.Tensor:
    """(T,) or (1, T) audio at spectral.sample_rate → the model's version, same length."""
    model.eval()
    audio = audio.reshape(1, -1).float()
    device = next(model.parameters()).device
    spec = stats.normalize(analyze(audio, spectral)).to(device)
    frames = reconstruct_frames(model, spec, stats, spectral)
    return synthesize(frames.cpu(), spectral, length=audio.shape[-1], stats=stats)[0]
