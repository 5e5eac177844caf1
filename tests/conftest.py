"""Shared fixtures: a tiny model trained once per test session on synthetic sounds (seconds), and
homes for a test to change. Plain helpers are in helpers.py."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from distill.library.store import connect, write
from helpers import TINY_TRAINING, write_demo_sounds


@dataclass(frozen=True)
class TinyModel:
    home: Path  # the Distill home it was trained in (its library holds the model)
    model_file: Path
    data_dir: Path
    name: str


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


@pytest.fixture
def home(tiny_model, tmp_path) -> Path:
    """A private copy of the tiny model's home (its sliders: brightness, warmth, loudness),
    without the presets and takes other tests left in the shared home."""
    home = shutil.copytree(
        tiny_model.home,
        tmp_path / "home",
        ignore=shutil.ignore_patterns("cache", "runs", "history"),
    )
    with connect(home / "library.sqlite") as conn, write(conn):
        conn.execute("DELETE FROM presets")
        conn.execute("DELETE FROM history")
    return home


@pytest.fixture
def empty_home(tmp_path) -> Path:
    """A Distill home that does not exist yet, with a space in its path."""
    return tmp_path / "distill home"
