"""Resynthesis: run audio of any length through a model (encode → μ → decode → one inverse).

The whole file is analysed once; its frames are cut into chunks of the model's width (94 frames)
at 50 % overlap, the same grid generation uses; each chunk is encoded to μ, optionally moved by
slider offsets, decoded, and the decoded chunks are overlap-added in the spectrogram domain
(generation.frames). One inverse over the whole length, segment by segment with one running
phase (spectral.long), turns them into audio of exactly the input's length: sample-aligned with
the input, with no seam to click.
"""

from __future__ import annotations

import numpy as np
import torch

from distill.generation.frames import DecodedFrames
from distill.model.grid import encode_grid
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import analyze


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
    latents, _ = encode_grid(model, spec, stats, spectral)
    if offset is not None:
        latents = latents + offset.to(latents)
    frames = DecodedFrames(model, latents)
    out = synthesize_long(frames, spectral, length=audio.shape[-1], stats=stats)
    return torch.from_numpy(out)
