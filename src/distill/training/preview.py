"""Preview WAVs written during training: a validation file reconstructed (with its original beside
it) and a few random latents decoded, all through the representation's full inverse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from distill.data.chunking import ChunkingConfig
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.transform import synthesize
from distill.training.data import TrainingData

MAX_RECONSTRUCTED_CHUNKS = 4  # ≤ 4 s of the validation file


def _write(path: Path, audio: torch.Tensor, rate: int) -> None:
    samples = audio.detach().cpu().float().numpy().reshape(-1)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > 0.99:  # a preview never clips; its level is only indicative
        samples = samples * (0.99 / peak)
    sf.write(path, samples, rate, subtype="PCM_24")


@torch.no_grad()
def write_previews(
    model: ConvVAE,
    data: TrainingData,
    spectral: SpectralConfig,
    folder: Path,
    latents: int,
    seed: int,
    device: torch.device,
) -> Path:
    was_training = model.training
    model.eval()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stats, rate = data.stats, spectral.sample_rate
        validation = data.validation
        if len(validation.files):
            # Chunks overlap by (1 − step) of their length: every 1/step-th one tiles the file.
            stride = max(1, round(1 / ChunkingConfig().step_fraction))
            first = validation.files[0]
            picks = list(range(0, first.n_chunks, stride))[:MAX_RECONSTRUCTED_CHUNKS]
            items = [validation[i] for i in picks]
            spec = torch.stack([s for s, _ in items]).to(device)
            original = torch.stack([a for _, a in items])
            rebuilt = synthesize(
                model(spec)[0].float(), spectral, length=original.shape[-1], stats=stats
            )
            stem = Path(first.source).stem
            _write(folder / f"{stem}-reconstruction.wav", rebuilt.reshape(-1), rate)
            _write(folder / f"{stem}-original.wav", original.reshape(-1), rate)
        if latents > 0:
            generator = torch.Generator().manual_seed(seed)
            z = torch.randn(latents, model.config.latent_dim, generator=generator).to(device)
            audio = synthesize(
                model.decode(z).float(), spectral, length=spectral.chunk_samples, stats=stats
            )
            for i, clip in enumerate(audio, start=1):
                _write(folder / f"latent-{i}.wav", clip, rate)
        return folder
    finally:
        model.train(was_training)
