"""Shared fixtures: a tiny model trained once per test session on synthetic sounds (seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from distill.audio import synth
from distill.model.loss import LossConfig, STFTLossConfig
from distill.spectral import SpectralConfig

TINY_SPECTRAL = SpectralConfig(chunk_seconds=0.5)
TINY_TRAINING = dict(
    spectral=TINY_SPECTRAL,
    channels=(4, 8, 8, 16, 16),
    loss=LossConfig(stft=STFTLossConfig(max_items=2)),
    preset="conservative",
    latent_dim=8,
    batch_size=4,
    learning_rate=3e-3,
    augment={"copies": 0},
    preview_every=100,
    checkpoint_every=100,
    # one thread, always: training sets torch's thread count for the whole process, and a model
    # trained with 1 or 2 threads differs in its last bits; pinning it keeps every test's tiny
    # model the same whatever ran before
    threads=1,
)


@dataclass(frozen=True)
class TinyModel:
    home: Path  # the Distill home it was trained in (its library holds the model)
    model_file: Path
    data_dir: Path
    name: str


def write_demo_sounds(folder: Path, count: int = 8, seed: int = 7) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in synth.demo_corpus(seed, count):
        sf.write(folder / f"{name}.wav", audio[: int(0.9 * 48_000)], 48_000, subtype="PCM_24")
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> TinyModel:
    """A tiny ConvVAE (latent 8, 0.5 s chunks) trained for 30 epochs on 8 demo sounds."""
    from distill.training.session import train

    root = tmp_path_factory.mktemp("tiny")
    data = write_demo_sounds(root / "sounds")
    home = root / "home"
    result = train(data, home=home, name="tiny", epochs=30, **TINY_TRAINING)
    assert result.model_file is not None
    return TinyModel(home=home, model_file=result.model_file, data_dir=data, name="tiny")


@pytest.fixture(scope="session")
def tiny_model_b(tiny_model) -> TinyModel:
    """A second tiny model, in the same home as `tiny_model`, trained on other sounds."""
    from distill.training.session import train

    data = write_demo_sounds(tiny_model.home.parent / "sounds-b", seed=11)
    result = train(data, home=tiny_model.home, name="tiny-b", epochs=20, **TINY_TRAINING)
    assert result.model_file is not None
    return TinyModel(
        home=tiny_model.home, model_file=result.model_file, data_dir=data, name="tiny-b"
    )
