"""Latent analysis: the principal axes of a model's training latents, named by what they do.

1. Encode the training chunks to μ (eval mode, no sampling).
2. PCA (SVD of the centred μ matrix, float64): keep the axes explaining ≥ `min_variance` (2 %) of
   the variance, at most `max_components` (8), and at least one if the latents vary at all.
3. Sweep each axis over the data's span (lowest to highest training projection, `sweep_points`
   latents, every other axis at the mean), decode, synthesize one chunk each and compute the
   features of features.py; Spearman ρ of each feature with the sweep position.
4. Label: a feature scores |ρ| · min(1, its change across the sweep / its audible_change): a
   perfectly monotone but inaudible drift (0.05 octave of centroid) must not outvote a 12 dB
   loudness swing. The best score names the axis by the feature's label if it reaches MIN_SCORE;
   exact ties go to the lower rank (brightness before warmth: a lowpass sweep moves both). Both
   come from the feature's record (features.FEATURE_RECORDS). Otherwise the axis
   keeps a neutral "axis N" (N = its 1-based number). A label an earlier axis already has is
   passed over for the next best feature that reaches MIN_SCORE; when none does, the axis is
   neutral: every label means one thing ("brightness, brightness 2, brightness 3" told a user
   nothing about what the second and third change).
5. Orientation: the axis is flipped so + means more of its label (brighter, warmer = more low
   energy, louder, …); a neutral axis so its largest loading is positive.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from scipy import stats as scipy_stats

from distill.audio.check import check_dataset
from distill.controls.features import FEATURE_RECORDS, FEATURES, compute_features
from distill.controls.sliders import Axis, Controls, slider_scale
from distill.data.cache import ChunkDataset, prepare_files
from distill.errors import UserError
from distill.model.file import load_model_file
from distill.model.vae import ConvVAE
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.spectral.transform import synthesize

_RECORDS = {feature.name: feature for feature in FEATURE_RECORDS}
# Feature → musical name, in tie-break order.
LABELS = {f.name: f.label for f in sorted(FEATURE_RECORDS, key=lambda f: f.rank)}
_OCTAVE_FLOOR = 20.0  # Hz (or crossings/s): below this, octaves stop meaning anything
# |ρ| 0.6 over 9 points: clearly monotone (p ≈ 0.09 for one feature); weaker trends stay neutral.
MIN_SCORE = 0.6
MAX_CHUNKS = 2000  # chunks encoded for the analysis: a seeded subsample of bigger datasets
ENCODE_BATCH = 32  # chunks per forward pass


class ChunkSource(Protocol):
    """A dataset of (normalized spec (2, n_mels, frames), audio) items, like ChunkDataset."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...


def chunk_batches(
    dataset: ChunkSource,
    *,
    max_chunks: int = MAX_CHUNKS,
    batch_size: int = ENCODE_BATCH,
    seed: int = 0,
) -> Iterator[torch.Tensor]:
    """(B, 2, n_mels, frames) batches of the dataset's specs: all of them, or a `seed`-chosen
    subsample of `max_chunks` (in dataset order) when there are more."""
    n = len(dataset)
    indices = np.arange(n)
    if n > max_chunks:
        indices = np.sort(np.random.default_rng(seed).choice(n, max_chunks, replace=False))
    for start in range(0, len(indices), batch_size):
        yield torch.stack([dataset[int(i)][0] for i in indices[start : start + batch_size]])


@torch.no_grad()
def encode_means(model: ConvVAE, spec_chunks: Iterable[torch.Tensor]) -> np.ndarray:
    """μ of every chunk, (n, latent_dim) float64, on the model's device in eval mode."""
    device = next(model.parameters()).device
    means = [model.encode(batch.to(device).float())[0].double().cpu() for batch in spec_chunks]
    return torch.cat(means).numpy() if means else np.zeros((0, model.config.latent_dim))


def principal_axes(
    latents: np.ndarray, max_components: int, min_variance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of (n, d) latents → mean (d,), kept unit directions (k, d), variance ratios (k,)."""
    mean = latents.mean(axis=0)
    if len(latents) < 2:
        return mean, np.zeros((0, latents.shape[1])), np.zeros(0)
    _, singular, directions = np.linalg.svd(latents - mean, full_matrices=False)
    power = singular**2
    if power.sum() <= 1e-24:  # every chunk encodes to the same point: nothing to slide along
        return mean, directions[:0], power[:0]
    ratios = power / power.sum()
    keep = max(1, int(np.count_nonzero(ratios[:max_components] >= min_variance)))
    return mean, directions[:keep], ratios[:keep]


@torch.no_grad()
def sweep_features(
    model: ConvVAE,
    latents: np.ndarray,
    stats: ChannelStats,
    spectral: SpectralConfig,
) -> dict[str, np.ndarray]:
    """Decode (P, d) latents, synthesize one chunk each → {feature: (P,) values}."""
    device = next(model.parameters()).device
    z = torch.from_numpy(latents).float().to(device)
    spec = model.decode(z).float().cpu()  # (P, 2, n_mels, frames) normalized
    audio = synthesize(spec, spectral, length=spectral.chunk_samples, stats=stats).numpy()
    rows = [compute_features(clip, spectral.sample_rate) for clip in audio]
    return {name: np.array([row[name] for row in rows]) for name in FEATURES}


def spearman(values: np.ndarray) -> float:
    """Rank correlation of `values` with their position (0, 1, …); 0 for a constant feature."""
    if np.ptp(values) == 0:
        return 0.0
    rho = scipy_stats.spearmanr(np.arange(len(values)), values).statistic
    return float(rho) if math.isfinite(rho) else 0.0


def audible_change(name: str, values: np.ndarray) -> float:
    """How far a feature moves across the sweep, in units of its audible_change (1 = clearly)."""
    feature = _RECORDS[name]
    if feature.octaves:
        floored = np.maximum(values, _OCTAVE_FLOOR)
        change = float(np.log2(floored.max() / floored.min()))
    else:
        change = float(np.ptp(values))
    return change / feature.audible_change


def change(name: str, values: np.ndarray) -> float:
    """A feature's signed change from the sweep's low end to its high end, in its display unit:
    octaves for the frequency-like features, else the feature's own unit (dB, 0…1, per s)."""
    if _RECORDS[name].octaves:
        floored = np.maximum(values, _OCTAVE_FLOOR)
        return float(np.log2(floored[-1] / floored[0]))
    return float(values[-1] - values[0])


def best_feature(
    features: dict[str, np.ndarray], taken: frozenset[str] = frozenset()
) -> tuple[str | None, dict[str, float]]:
    """The feature that names the axis (None if none scores MIN_SCORE), and every ρ.

    A feature whose label an earlier (stronger) axis already has is passed over for the best
    one that still scores MIN_SCORE, so five axes that all move the centroid a little do not
    all become "brightness": the second may be the "noisiness" it also clearly changes.
    """
    rhos = {name: spearman(features[name]) for name in FEATURES}
    scores = {
        name: abs(rhos[name]) * min(1.0, audible_change(name, features[name])) for name in LABELS
    }
    ranked = sorted(LABELS, key=lambda name: -scores[name])  # stable: ties keep LABELS order
    fresh = [name for name in ranked if LABELS[name] not in taken]
    if fresh and scores[fresh[0]] >= MIN_SCORE:
        return fresh[0], rhos
    return None, rhos  # nothing new to name it by: a neutral "axis N", never "brightness 2"


def analyze_controls(
    model: ConvVAE,
    spec_chunks: Iterable[torch.Tensor],
    stats: ChannelStats,
    spectral: SpectralConfig,
    *,
    max_components: int = 8,
    min_variance: float = 0.02,
    sweep_points: int = 9,
) -> Controls:
    """Labelled sliders for `model` from its training chunks ((B, 2, M, N) normalized batches)."""
    was_training = model.training
    model.eval()
    try:
        latents = encode_means(model, spec_chunks)
        if len(latents) == 0:
            raise ValueError("no chunks to analyse")
        mean, directions, ratios = principal_axes(latents, max_components, min_variance)
        axes: list[Axis] = []
        for number, (direction, ratio) in enumerate(zip(directions, ratios, strict=True), 1):
            projections = (latents - mean) @ direction
            low, high = float(projections.min()), float(projections.max())
            sweep = mean + np.linspace(low, high, sweep_points)[:, None] * direction
            taken = frozenset(axis.label for axis in axes)
            features = sweep_features(model, sweep, stats, spectral)
            feature, rhos = best_feature(features, taken)
            flip = rhos[feature] < 0 if feature else direction[np.argmax(np.abs(direction))] < 0
            sign = -1.0 if flip else 1.0
            low, high = (-high, -low) if flip else (low, high)
            axes.append(
                Axis(
                    label=LABELS[feature] if feature else f"axis {number}",
                    variance=float(ratio),
                    direction=tuple(float(v) for v in sign * direction),
                    std=float(projections.std()),
                    low=low,
                    high=high,
                    scale=slider_scale(low, high),
                    correlations={name: sign * rho for name, rho in rhos.items()},
                    changes={name: sign * change(name, features[name]) for name in FEATURES},
                )
            )
        return Controls(
            mean=tuple(float(v) for v in mean),
            axes=tuple(axes),
            latent_std=tuple(float(v) for v in latents.std(axis=0)),
        )
    finally:
        model.train(was_training)


def recompute_controls(
    model_file: Path,
    data_dir: Path,
    *,
    cache_dir: Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Controls:
    """Analyse a saved model again on the recordings in `data_dir` (all usable files: the model
    file does not record which were held out). `cache_dir` defaults to a temporary folder; pass
    the Distill cache to reuse its entries. Store the result in a library model with
    `Library.set_controls(ref, controls.to_dict())` (`distill model analyze` does both)."""
    model, metadata = load_model_file(model_file, device)
    report = check_dataset(data_dir)
    with tempfile.TemporaryDirectory(prefix="distill-controls-") as scratch:
        prepared = prepare_files(report.usable, Path(cache_dir or scratch), metadata.spectral)
        if not prepared.files:
            raise UserError(
                f"no usable recordings in {report.directory}: pass the folder the model was "
                "trained on"
            )
        dataset = ChunkDataset(prepared.files, metadata.stats)
        batches = chunk_batches(dataset, seed=seed)
        return analyze_controls(model, batches, metadata.stats, metadata.spectral)
