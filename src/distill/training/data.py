"""From the usable files of a checked folder to training and validation chunks.

split *source files* into train / validation → cache the original of every
file and the augmented variants of the training files only → normalization statistics from the
training chunks. A validation file's augmented copies never exist, so no copy of a validation
recording can leak into training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distill.data.cache import ChunkDataset, PreparedFile, dataset_stats, prepare_files
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.training.augment import augmentations
from distill.training.config import TrainingConfig
from distill.training.split import split_by_file


@dataclass
class TrainingData:
    train: ChunkDataset
    validation: ChunkDataset
    stats: ChannelStats
    train_files: list[Path]  # source files (before augmentation)
    validation_files: list[Path]
    skipped: list[str] = field(default_factory=list)  # one line per file that could not be used
    computed: int = 0  # cache entries computed this time
    reused: int = 0  # cache entries found ready


def prepare_training_data(
    train_files: list[Path],
    validation_files: list[Path],
    config: TrainingConfig,
    spectral: SpectralConfig,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> TrainingData:
    say = progress or (lambda _message: None)
    skipped: list[str] = []
    computed = reused = 0

    def cache(files: list[Path], variant: str = "", augment=None) -> list[PreparedFile]:
        nonlocal computed, reused
        report = prepare_files(files, cache_dir, spectral, variant=variant, augment=augment)
        computed += report.computed
        reused += report.reused
        skipped.extend(f"{e.source.name}: {e.reason}" for e in report.errors if not variant)
        return report.files

    say(f"preparing {len(train_files) + len(validation_files)} files")
    train_prepared = cache(train_files)
    validation_prepared = cache(validation_files)
    for name, augment in augmentations(config.augment):
        say(f"preparing augmented copy {name}")
        train_prepared += cache([p.source for p in train_prepared if not p.variant], name, augment)
    stats = dataset_stats(train_prepared)
    return TrainingData(
        train=ChunkDataset(train_prepared, stats),
        validation=ChunkDataset(validation_prepared, stats),
        stats=stats,
        train_files=[p.source for p in train_prepared if not p.variant],
        validation_files=[p.source for p in validation_prepared],
        skipped=skipped,
        computed=computed,
        reused=reused,
    )


def split_sources(
    usable: list[Path], data_dir: Path, config: TrainingConfig
) -> tuple[list[Path], list[Path]]:
    """Train / validation split by source file, keyed by the path inside the data folder so that
    moving the folder keeps the same split. `usable` must lie under `data_dir` as given (links
    are not resolved: a folder of links to files elsewhere is a valid dataset)."""
    return split_by_file(
        usable,
        config.validation_fraction,
        config.seed,
        key=lambda p: Path(p).relative_to(data_dir).as_posix(),
    )
