"""Distill: train a generative model on your own recordings and explore it with musical sliders.

The Python API the CLI and the UI are built on; names are imported on first use so that
`import distill` (and `distill --help`) stays fast:

    import distill
    result = distill.train("~/samples/kicks", name="kicks", max_minutes=15)
    model = distill.load("kicks")                 # library name, id prefix or .distill file
    audio = model.generate(30, seed=7, sliders={"brightness": 4})
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "train": ("distill.training.session", "train"),
    "resume": ("distill.training.session", "resume"),
    "load": ("distill.generation.loaded", "load"),
    "load_model_file": ("distill.model.file", "load_model_file"),
    "Library": ("distill.library.store", "Library"),
    "ExportOptions": ("distill.audio.write", "ExportOptions"),
    "GenerationParams": ("distill.generation.generate", "GenerationParams"),
    "check_dataset": ("distill.audio.check", "check_dataset"),
    "resynthesize": ("distill.generation.resynth", "resynthesize"),
    "TrainingConfig": ("distill.training.config", "TrainingConfig"),
    "LossConfig": ("distill.model.loss", "LossConfig"),
    "SpectralConfig": ("distill.spectral.config", "SpectralConfig"),
    "ModelConfig": ("distill.model.vae", "ModelConfig"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
