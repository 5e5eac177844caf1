"""Resynthesis: run audio of any length through a model (encode → μ → decode → one inverse).

The whole file is analysed once; its frames are cut into chunks of the model's width (94 frames)
every W // 8 frames (RESYNTH_OVERLAP chunks over each frame); each chunk is encoded to μ and
fitted, then consecutive chunks together (model.grid), optionally moved by slider offsets,
decoded, and the decoded chunks are
overlap-added in the spectrogram domain (generation.frames). One inverse over the whole length,
segment by segment with one running phase (spectral.long), turns them into audio of exactly the
input's length: sample-aligned with the input, with no seam to click.
"""

from __future__ import annotations

import numpy as np
import torch

from distill.generation.frames import DecodedFrames
from distill.model.grid import OVERLAP_FIT_STEPS, chunk_hop, encode_grid
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.long import synthesize_long
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import analyze

# Chunks over every frame in resynthesis. Generation's grid has 2 (half-chunk hop); each frame of
# a resynthesis is the weighted mean of 8 fitted chunks instead, which evens out what one chunk
# gets wrong at its edges (level steps of ±1.5 dB every half second on a held clarinet). Held-out
# MR-STFT, five 15-minute models (BENCHMARKS.md, fidelity round 6), 2 → 4 → 8: notes 0.989 →
# 0.977 → 0.963 and 0.988 → 0.978 → 0.967, drums 1.372 → 1.366 → 1.365 and 1.359 → 1.355 →
# 1.354, textures 1.581 → 1.556 → 1.553. The fit runs on 4× the chunks: 54 s of audio took 27 s
# instead of 10 (2 CPU threads); 25 fit steps on the fine grid lost more than it gained.
RESYNTH_OVERLAP = 8
# Steps of each chunk's own fit (model.grid.fit_latents) before the chunks are fitted together
# (model.grid.fit_overlapped, OVERLAP_FIT_STEPS): the fit together takes the rest of the way, and
# 25 steps alone before it did as well as 50 (held-out notes 0.850 against 0.853, BENCHMARKS.md
# "Fidelity", round 15).
RESYNTH_FIT_STEPS = 25
# The silence padded past the input's end is not fitted (model.grid, `fit_padding`): the output
# stops at the input's length, and leaving it out took held-out drums 0.009 closer on average
# (eleven models, 10 better; BENCHMARKS.md "Fidelity", round 15).
RESYNTH_FIT_PADDING = False


def resynthesis_hop(width: int) -> int:
    """Frames between the chunks a resynthesis encodes and decodes (model width `width`)."""
    return chunk_hop(width, RESYNTH_OVERLAP)


@torch.no_grad()
def resynthesize(
    model: ConvVAE,
    audio: torch.Tensor | np.ndarray,
    stats: ChannelStats,
    spectral: SpectralConfig,
    *,
    offset: torch.Tensor | None = None,
    fit_steps: int = RESYNTH_FIT_STEPS,
    overlap_steps: int = OVERLAP_FIT_STEPS,
    fit_padding: bool = RESYNTH_FIT_PADDING,
) -> torch.Tensor:
    """(T,) or (1, T) audio at spectral.sample_rate → the model's version, (T,) float32.

    `offset` (D,) is added to every chunk's μ (slider moves, see controls). `fit_steps`: steps of
    each chunk's latent fit (model.grid.fit_latents; benches vary it), `overlap_steps` those of
    the fit of consecutive chunks together that follows it (model.grid.fit_overlapped).
    `fit_padding`: whether the silence past the input's end is fitted too (RESYNTH_FIT_PADDING).
    """
    model.eval()
    audio = torch.as_tensor(audio).reshape(1, -1).float()
    device = next(model.parameters()).device
    spec = stats.normalize(analyze(audio, spectral)).to(device)
    hop = resynthesis_hop(model.config.frames)
    latents, _ = encode_grid(
        model,
        spec,
        stats,
        spectral,
        fit_steps=fit_steps,
        hop=hop,
        overlap_steps=overlap_steps,
        fit_padding=fit_padding,
    )
    if offset is not None:
        latents = latents + offset.to(latents)
    frames = DecodedFrames(model, latents, hop=hop)
    out = synthesize_long(frames, spectral, length=audio.shape[-1], stats=stats)
    return torch.from_numpy(out)
