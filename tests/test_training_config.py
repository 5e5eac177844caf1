"""Training config: presets differ as documented, `auto` picks by file count, overrides validate
and name the bad field, and a config survives JSON exactly."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from distill.audio.check import DatasetTooSmallError
from distill.errors import UserError
from distill.model.file import ModelMetadata, load_model_file, save_model_file
from distill.model.loss import LossConfig
from distill.model.vae import ModelConfig, build
from distill.spectral import ChannelStats, SpectralConfig
from distill.training.config import (
    PRESETS,
    AugmentConfig,
    ConfigError,
    TrainingConfig,
    preset_for,
    resolve_config,
)
from distill.training.run import RunFolder, RunSpec

CONSERVATIVE, BALANCED, AGGRESSIVE = (
    PRESETS[n] for n in ("conservative", "balanced", "aggressive")
)


@pytest.mark.parametrize(
    ("count", "preset"),
    [
        (5, "conservative"),
        (50, "conservative"),
        (51, "balanced"),
        (200, "balanced"),
        (201, "aggressive"),
        (500, "aggressive"),
    ],
)
def test_auto_picks_the_preset_by_file_count(count: int, preset: str) -> None:
    assert preset_for(count) == preset
    assert resolve_config("auto", count) == PRESETS[preset]


@pytest.mark.parametrize("count", [0, 1, 4])
def test_auto_refuses_fewer_than_five_files(count: int) -> None:
    with pytest.raises(DatasetTooSmallError, match=rf"only {count} usable .*at least 5"):
        preset_for(count)


def test_smaller_datasets_get_more_regularization_and_augmentation() -> None:
    ladder = (CONSERVATIVE, BALANCED, AGGRESSIVE)
    for name in ("epochs", "dropout", "weight_decay", "validation_fraction", "kl_warmup_fraction"):
        values = [getattr(c, name) for c in ladder]
        assert values == sorted(values, reverse=True) and len(set(values)) == 3, name
    assert [c.augment.copies for c in ladder] == [8, 2, 1]
    assert [c.augment.pitch_semitones for c in ladder] == [7.0, 1.5, 1.0]
    assert [c.dropout for c in ladder] == [0.2, 0.1, 0.05]
    rates = [c.learning_rate for c in ladder]
    assert rates == sorted(rates) and len(set(rates)) == 3
    assert [c.preset for c in ladder] == ["conservative", "balanced", "aggressive"]


def test_explicit_preset_and_overrides_win() -> None:
    config = resolve_config("aggressive", 10, epochs=3, learning_rate=1e-3, max_minutes=None)
    assert (config.preset, config.epochs, config.learning_rate) == ("aggressive", 3, 1e-3)
    assert config.dropout == AGGRESSIVE.dropout
    assert config.max_minutes is None  # None = flag not given: the preset's value stays


def test_unknown_preset_lists_the_valid_names() -> None:
    with pytest.raises(UserError, match=r"unknown preset 'tiny'.*auto, conservative, balanced"):
        resolve_config("tiny", 20)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"epochs": 0}, r"^epochs must be an integer ≥ 1 \(got 0\)$"),
        ({"batch_size": -4}, r"^batch_size must be an integer ≥ 1"),
        ({"learning_rate": 0.0}, r"^learning_rate must be a number in \(0, 1\]"),
        ({"dropout": 1.0}, r"^dropout must be a number in \[0, 1\) \(got 1.0\)$"),
        ({"validation_fraction": 0.5}, r"^validation_fraction must be a number in \(0, 0.5\)"),
        ({"validation_fraction": 0}, r"^validation_fraction must be"),
        ({"epochs": 2.5}, r"^epochs must be an integer"),
        ({"epochs": True}, r"^epochs must be an integer"),
        ({"learning_rate": float("nan")}, r"^learning_rate must be"),
        ({"max_minutes": -1}, r"^max_minutes must be a number > 0 or null"),
        ({"device": "tpu"}, r"^device must be auto, cpu, cuda, cuda:N or mps"),
        ({"lr_schedule": "step"}, r"^lr_schedule must be one of cosine, constant"),
        ({"augment": {"copies": -1}}, r"^augment.copies must be an integer in \[0, 32\]"),
        ({"augment": {"stretch_min": 1.2}}, r"^augment.stretch_min \(1.2\) must not exceed"),
        ({"epoch": 10}, r"^unknown training setting epoch; valid: preset, epochs,"),
        ({"augment": {"pitch": 1}}, r"^unknown training setting augment.pitch; valid: copies"),
    ],
)
def test_bad_overrides_raise_one_line_naming_the_field(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        BALANCED.with_overrides(**override)
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)


def test_overrides_of_augment_merge_into_the_presets_augmentation() -> None:
    config = CONSERVATIVE.with_overrides(augment={"copies": 0, "seed": 7})
    assert config.augment == dataclasses.replace(CONSERVATIVE.augment, copies=0, seed=7)
    replaced = CONSERVATIVE.with_overrides(augment=AugmentConfig(copies=1))
    assert replaced.augment == AugmentConfig(copies=1)
    assert CONSERVATIVE.augment.copies == 8  # presets are never modified


def test_json_round_trip_is_exact() -> None:
    config = resolve_config("auto", 30, epochs=7, max_minutes=2.5, threads=2, device="cuda:1")
    data = json.loads(json.dumps(config.to_dict()))
    assert data["augment"]["copies"] == 8 and data["max_minutes"] == 2.5
    restored = TrainingConfig.from_dict(data)
    assert restored == config
    assert restored.to_dict() == config.to_dict()
    # An int given for a float field is stored as a float, so the saved JSON does not drift.
    assert TrainingConfig.from_dict({**data, "learning_rate": 1}).to_dict()["learning_rate"] == 1.0
    assert type(TrainingConfig.from_dict({**data, "learning_rate": 1}).learning_rate) is float


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    data = BALANCED.to_dict()
    with pytest.raises(ConfigError, match="unknown training setting colour"):
        TrainingConfig.from_dict({**data, "colour": "blue"})
    with pytest.raises(ConfigError, match=r"unknown training setting augment\.speed"):
        TrainingConfig.from_dict({**data, "augment": {**data["augment"], "speed": 2}})
    del data["epochs"]
    with pytest.raises(ConfigError, match="missing epochs"):
        TrainingConfig.from_dict(data)


def test_retired_num_workers_in_old_run_and_model_files_still_loads(tmp_path) -> None:
    """num_workers promised a DataLoader that never existed and is gone; files written while it
    existed hold it, and must still resume and load."""
    assert "num_workers" not in BALANCED.to_dict()
    old = {**BALANCED.to_dict(), "num_workers": 2}
    assert TrainingConfig.from_dict(old) == BALANCED
    with pytest.raises(ConfigError, match="unknown training setting num_workers"):
        BALANCED.with_overrides(num_workers=0)  # asking for it now is a mistake worth a line

    spec = RunSpec(
        name="old run",
        data_dir=tmp_path / "sounds",
        training=BALANCED,
        spectral=SpectralConfig(),
        loss=LossConfig(),
        model=ModelConfig(channels=(4, 8, 8, 16, 16), latent_dim=8),
        train_files=("a.wav",),
        validation_files=("b.wav",),
        created="2024-01-01T00:00:00",
    )
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    spec.save(folder)
    document = json.loads(folder.spec_file.read_text())
    document["training"]["num_workers"] = 0
    folder.spec_file.write_text(json.dumps(document))
    assert RunSpec.load(folder) == spec

    model = build(spec.model)
    metadata = ModelMetadata(
        model=spec.model,
        spectral=spec.spectral,
        stats=ChannelStats(mean=(-9.5, 0.01), std=(3.2, 0.4)),
        training={"epochs": 3, "config": old},
        info={"name": "old", "description": "", "tags": []},
    )
    path = save_model_file(tmp_path / "old.distill", model, metadata)
    loaded, meta = load_model_file(path)
    assert meta.training["config"]["num_workers"] == 2  # the file is read as it was written
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
