"""What the per-file benches share: the audio files of a folder, and a table of mean scores."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distill.audio.read import AUDIO_EXTENSIONS


def audio_files(folder: Path) -> list[Path]:
    """Every audio file under `folder`, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)


def score_files(files: list[Path], score: Callable[[Path], dict[str, float]]) -> dict[str, float]:
    """`score` each file (printing its row as it goes); returns each column's mean."""
    columns: dict[str, list[float]] = {}
    for path in files:
        scores = score(path)
        for name, value in scores.items():
            columns.setdefault(name, []).append(value)
        print(f"  {path.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return {name: float(np.mean(values)) for name, values in columns.items()}


def report_folder(folder: Path, score: Callable[[Path], dict[str, float]]) -> int:
    """Score every audio file of `folder`, then print each column's mean; the exit status."""
    files = audio_files(folder)
    if not files:
        print(f"no audio files in {folder}", file=sys.stderr)
        return 1
    means = score_files(files, score)
    print(f"\n{folder} ({len(files)} files), mean MR-STFT:")
    width = max(len(name) for name in means)
    for name, value in means.items():
        print(f"  {name:{width}s} {value:.3f}")
    return 0
