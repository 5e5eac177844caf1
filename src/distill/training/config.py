"""Training settings: plain frozen dataclasses, three presets, and `auto` choice by file count.

Every value a run uses lives in one TrainingConfig, saved with the run as JSON (`to_dict`) and read
back exactly (`from_dict`). Constructing a config validates it, so a bad CLI flag or a hand-edited
config file fails with one line naming the field and its valid range (a UserError).

Presets, by the number of usable source files (`auto`):
  conservative   5–50 files  most augmentation, strongest regularization, lowest LR, most epochs
  balanced      51–200 files
  aggressive   201+ files    least augmentation and regularization, highest LR, fewest epochs
The epoch counts are upper bounds for the 2 M-parameter conv VAE trained on a CPU: a run usually
ends on `--max-minutes` and keeps its last weights (training.loop: the best epoch's instead when
the last validate more than 10 % worse, or when the run is cut short).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from distill.audio.check import MIN_USABLE_FILES, DatasetTooSmallError
from distill.errors import UserError

PRESET_NAMES = ("conservative", "balanced", "aggressive")
TIME_LIMITED_EPOCHS = 100_000  # with --max-minutes and no --epochs: the time decides
LR_SCHEDULES = ("cosine", "constant")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# Settings that older run.json and model files may hold and that no longer do anything:
# num_workers promised DataLoader workers, but the chunks are batched in RAM (training.data).
RETIRED_KEYS = frozenset({"num_workers"})


class ConfigError(UserError):
    """A training setting is out of range, of the wrong type, or unknown."""


@dataclass(frozen=True)
class AugmentConfig:
    """Deterministic augmentation made once at preprocessing and cached (see augment.py).

    Each of `copies` variants of every training file draws one pitch shift, one time stretch, one
    gain and (with probability `noise_probability`) one noise level from `seed`. The seed is its own
    field, not the training seed, so trying another training seed reuses the cached variants.
    """

    copies: int = 0  # variants per training file; 0 = no augmentation
    pitch_semitones: float = 2.0  # shift drawn uniformly from ±this
    stretch_min: float = 0.9  # duration factor (1.1 = 10 % longer), drawn log-uniformly
    stretch_max: float = 1.1
    noise_probability: float = 0.5  # share of variants that get additive white noise
    noise_snr_min_db: float = 30.0  # signal-to-noise ratio of that noise, drawn uniformly
    noise_snr_max_db: float = 50.0
    gain_db: float = 6.0  # gain drawn uniformly from ±this; the peak is then kept ≤ 0.99
    seed: int = 0

    def __post_init__(self) -> None:
        _validate(self, _AUGMENT_RULES, "augment.")
        if self.stretch_min > self.stretch_max:
            raise ConfigError(
                f"augment.stretch_min ({self.stretch_min}) must not exceed augment.stretch_max "
                f"({self.stretch_max})"
            )
        if self.noise_snr_min_db > self.noise_snr_max_db:
            raise ConfigError(
                f"augment.noise_snr_min_db ({self.noise_snr_min_db}) must not exceed "
                f"augment.noise_snr_max_db ({self.noise_snr_max_db})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        return cls(**_known_keys(cls, data, "augment."))


@dataclass(frozen=True)
class TrainingConfig:
    """One run's settings: build it with `resolve_config`, change it with `with_overrides`."""

    preset: str  # the preset it started from: one of PRESET_NAMES
    epochs: int  # upper bound: `max_minutes` usually ends the run first
    learning_rate: float  # AdamW peak LR, reached after the warm-up
    weight_decay: float  # AdamW decoupled weight decay
    dropout: float  # probability, in the model's conv blocks
    validation_fraction: float  # share of source files held out (split before augmentation)
    augment: AugmentConfig
    # Loss overrides: the loop copies these three into the model's LossConfig (model/loss.py), so a
    # preset's KL warm-up and audio-loss start really reach the loss. Fractions of all steps.
    kl_warmup_fraction: float  # β rises linearly from 0 to kl_beta_max over this share of training
    kl_beta_max: float
    stft_start_fraction: float  # the MR-STFT-on-audio term starts after this share of training
    batch_size: int = 32  # requested; never more than the training chunks (effective_batch_size)
    grad_clip: float = 1.0  # max global L2 norm of the gradients
    lr_schedule: str = "cosine"  # one of LR_SCHEDULES: cosine decay to 0 after a linear warm-up
    warmup_fraction: float = 0.05  # share of steps for the linear LR warm-up from 0
    seed: int = 0  # weights, shuffling, split, dropout
    latent_dim: int = 128
    checkpoint_every: int = 10  # epochs between numbered checkpoints (last/best are always kept)
    keep_checkpoints: int = 3  # numbered checkpoints kept; older ones are deleted
    preview_every: int = 10  # epochs between audio previews
    preview_latents: int = 4  # random latents decoded per preview
    max_minutes: float | None = None  # stop gracefully (and save) after this wall time
    # Without max_minutes: end the run once the validation loss has not improved for this many
    # epochs (the rest of the schedule would only spend time); None = run every epoch.
    patience: int | None = 30
    checkpoint_seconds: float = 60.0  # the resumable "last" checkpoint: at most this old
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    threads: int | None = None  # torch intra-op threads; None = torch's default

    def __post_init__(self) -> None:
        if not isinstance(self.augment, AugmentConfig):
            raise ConfigError("augment must be an AugmentConfig")
        _validate(self, _TRAINING_RULES, "")
        for name, choices in (("preset", PRESET_NAMES), ("lr_schedule", LR_SCHEDULES)):
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"{name} must be one of {', '.join(choices)} (got {getattr(self, name)!r})"
                )
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise ConfigError(
                f"device must be auto, cpu, cuda, cuda:N or mps (got {self.device!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """A saved config (run.json, a model file's metadata); settings that a former version
        wrote and this one no longer has (RETIRED_KEYS) are dropped."""
        data = _known_keys(cls, {k: v for k, v in data.items() if k not in RETIRED_KEYS}, "")
        if "augment" in data:
            augment = data["augment"]
            if not isinstance(augment, dict):
                raise ConfigError("augment must be a mapping of augmentation settings")
            data["augment"] = AugmentConfig.from_dict(augment)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and _required(f)]
        if missing:
            raise ConfigError(f"training config is missing {', '.join(missing)}")
        return cls(**data)

    def with_overrides(self, **overrides: Any) -> TrainingConfig:
        """A copy with some fields replaced, validated. `augment` may be an AugmentConfig or a
        mapping of just the augmentation fields to change."""
        overrides = _known_keys(type(self), overrides, "")
        if isinstance(overrides.get("augment"), dict):
            merged = {**self.augment.to_dict(), **overrides["augment"]}
            overrides["augment"] = AugmentConfig.from_dict(merged)
        return dataclasses.replace(self, **overrides)


# --- validation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Range:
    """A numeric field's valid values; `low_open` / `high_open` exclude the bound itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False  # None allowed

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high is None:
            bound = f" {'>' if self.low_open else '≥'} {self.low:g}" if self.low is not None else ""
        else:
            bound = (
                f" in {'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}"
            )
        return f"{kind}{bound}{' or null' if self.optional else ''}"

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


_COUNT = _Range(low=1, integer=True)
_FRACTION = _Range(low=0, high=1)

_AUGMENT_RULES: dict[str, _Range] = {
    "copies": _Range(low=0, high=32, integer=True),
    "pitch_semitones": _Range(low=0, high=12),
    "stretch_min": _Range(low=0.5, high=2),
    "stretch_max": _Range(low=0.5, high=2),
    "noise_probability": _FRACTION,
    "noise_snr_min_db": _Range(low=0, high=120),
    "noise_snr_max_db": _Range(low=0, high=120),
    "gain_db": _Range(low=0, high=24),
    "seed": _Range(low=0, integer=True),
}

_TRAINING_RULES: dict[str, _Range] = {
    "epochs": _COUNT,
    "learning_rate": _Range(low=0, high=1, low_open=True),
    "weight_decay": _Range(low=0, high=1),
    "dropout": _Range(low=0, high=1, high_open=True),
    "validation_fraction": _Range(low=0, high=0.5, low_open=True, high_open=True),
    "kl_warmup_fraction": _FRACTION,
    "kl_beta_max": _Range(low=0),
    "stft_start_fraction": _Range(low=0, high=1, high_open=True),
    "batch_size": _COUNT,
    "grad_clip": _Range(low=0, low_open=True),
    "warmup_fraction": _Range(low=0, high=1, high_open=True),
    "seed": _Range(low=0, integer=True),
    "latent_dim": _COUNT,
    "checkpoint_every": _COUNT,
    "keep_checkpoints": _COUNT,
    "preview_every": _COUNT,
    "preview_latents": _Range(low=0, integer=True),
    "max_minutes": _Range(low=0, low_open=True, optional=True),
    "patience": _Range(low=1, integer=True, optional=True),
    "checkpoint_seconds": _Range(low=0),
    "threads": _Range(low=1, integer=True, optional=True),
}


def _validate(config: Any, rules: dict[str, _Range], prefix: str) -> None:
    """Check every ruled field; store float fields as float so to_dict → from_dict is exact."""
    for name, rule in rules.items():
        value = getattr(config, name)
        if not rule.accepts(value):
            raise ConfigError(f"{prefix}{name} must be {rule.describe()} (got {value!r})")
        if not rule.integer and value is not None:
            object.__setattr__(config, name, float(value))


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _known_keys(cls: type, data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A copy of `data`; an unknown key raises ConfigError listing the valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown training setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(prefix + k for k in unknown)}; valid: {', '.join(names)}"
        )
    return dict(data)


# --- presets --------------------------------------------------------------------------------------

# β after the warm-up, every preset. Generation samples from what the model learned about its
# recordings (the corpus memory), not from the prior N(0, I), so the KL term only has to keep the
# latent space smooth: 2·10⁻⁴ instead of 1–2·10⁻³ gave held-out notes 1.742 instead of 1.913
# MR-STFT after the same 40 epochs (BENCHMARKS.md, "Fidelity").
KL_BETA_MAX = 2e-4

PRESETS: dict[str, TrainingConfig] = {
    # 5–50 files: a few minutes of audio. Everything that fights memorization is turned up: eight
    # augmented copies shifted by up to ±7 semitones, dropout 0.2, weight decay 0.05, a low LR, a
    # long KL warm-up (the posterior learns to encode before β pulls it to the prior), and a fifth
    # of the files for validation so early stopping sees more than one recording. Eight copies at
    # ±7 semitones instead of four at ±2: after 5 minutes held-out notes 1.401 → 1.275 and drums
    # 1.955 → 1.876, validation magnitude error 0.283 → 0.230 and 0.203 → 0.154 (BENCHMARKS.md,
    # "Fidelity", round 3). A held-out note is often pitched outside its instrument's training
    # notes, where ±2 semitones did not reach.
    "conservative": TrainingConfig(
        preset="conservative",
        epochs=200,
        learning_rate=5e-4,
        weight_decay=0.05,
        dropout=0.2,
        validation_fraction=0.2,
        augment=AugmentConfig(copies=8, pitch_semitones=7.0),
        kl_warmup_fraction=0.4,
        kl_beta_max=KL_BETA_MAX,
        stft_start_fraction=0.25,
        preview_every=20,
    ),
    "balanced": TrainingConfig(
        preset="balanced",
        epochs=120,
        learning_rate=7e-4,
        weight_decay=0.01,
        dropout=0.1,
        validation_fraction=0.15,
        augment=AugmentConfig(copies=2, pitch_semitones=1.5, stretch_min=0.92, stretch_max=1.08),
        kl_warmup_fraction=0.3,
        kl_beta_max=KL_BETA_MAX,
        stft_start_fraction=0.25,
        preview_every=10,
    ),
    # 201–500 files: the data itself varies enough; one mild copy, light regularization, a higher
    # LR and a shorter warm-up, and a tenth of the files (≥ 20) still validates reliably.
    "aggressive": TrainingConfig(
        preset="aggressive",
        epochs=80,
        learning_rate=1e-3,
        weight_decay=0.005,
        dropout=0.05,
        validation_fraction=0.1,
        augment=AugmentConfig(copies=1, pitch_semitones=1.0, stretch_min=0.95, stretch_max=1.05),
        kl_warmup_fraction=0.2,
        kl_beta_max=KL_BETA_MAX,
        stft_start_fraction=0.25,
        preview_every=5,
    ),
}

# Upper file counts of the first two presets (inclusive); more files than the last → aggressive.
_AUTO_LIMITS = ((50, "conservative"), (200, "balanced"))


def preset_for(file_count: int) -> str:
    """The preset `auto` picks: conservative 5–50 files, balanced 51–200, aggressive 201+."""
    if file_count < MIN_USABLE_FILES:
        raise DatasetTooSmallError(
            f"only {file_count} usable audio file{'' if file_count == 1 else 's'} "
            f"(need at least {MIN_USABLE_FILES}): add more recordings to the folder"
        )
    return next((name for limit, name in _AUTO_LIMITS if file_count <= limit), "aggressive")


def resolve_config(preset: str, file_count: int, **overrides: Any) -> TrainingConfig:
    """The preset's config (`auto`: chosen by `file_count`) with `overrides` applied.

    An override whose value is None is ignored: it stands for a CLI flag that was not given.
    """
    if preset == "auto":
        preset = preset_for(file_count)
    if preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}: choose one of auto, {', '.join(PRESET_NAMES)}"
        )
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("max_minutes") and "epochs" not in given:
        # The time is the budget: the schedule fits into it (Trainer.progress), and a preset's
        # epoch count must not end a run that still has minutes to learn in.
        given["epochs"] = TIME_LIMITED_EPOCHS
    return PRESETS[preset].with_overrides(**given)
