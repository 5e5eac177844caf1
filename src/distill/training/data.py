"""From the usable files of a checked folder to training and validation chunks, in batches.

split *source files* into train / validation → cache the original of every
file and the augmented variants of the training files only → normalization statistics from the
training chunks → every chunk in two tensors in RAM, read in seeded batches (EpochBatches). A
validation file's augmented copies never exist, so no copy of a validation recording can leak into
training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from distill.data.cache import PreparedFile, dataset_stats, load_entry, prepare_files
from distill.spectral.config import SpectralConfig
from distill.spectral.normalize import ChannelStats
from distill.training.augment import augmentations
from distill.training.config import TrainingConfig
from distill.training.split import split_by_file


class ChunkTensors(torch.utils.data.Dataset):
    """Every chunk of the given files, in file order, in two tensors: normalized specs
    (N, 2, n_mels, frames) and audio (N, samples). A batch is one gather from each (`batch`),
    not a Python loop over items. Loaded at once: a 1 s chunk is 288 KB (192 KB of audio + 96 KB
    of spectrogram), so 500 files of ~3 s (5 chunks each at 50 % overlap) hold ~720 MB, the same
    as the lazily filled per-file cache of data.cache.ChunkDataset once an epoch has read it."""

    def __init__(self, files: list[PreparedFile], stats: ChannelStats) -> None:
        self.files = list(files)
        self.stats = stats
        n = sum(f.n_chunks for f in self.files)
        self.spec = self.audio = torch.empty(0)
        row = 0
        for prepared in self.files:  # filled in place: the peak is the total plus one file
            audio, spec = load_entry(prepared)
            spec = stats.normalize(spec)
            if row == 0:
                self.spec = spec.new_empty((n, *spec.shape[1:]))
                self.audio = audio.new_empty((n, *audio.shape[1:]))
            self.spec[row : row + len(spec)] = spec
            self.audio[row : row + len(audio)] = audio
            row += len(spec)

    def __len__(self) -> int:
        return len(self.spec)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"chunk {index} out of range for {len(self)} chunks")
        return self.spec[index], self.audio[index]

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2, n_mels, frames) specs and (B, samples) audio of the chunks at `indices` (B,)."""
        return self.spec[indices], self.audio[indices]


class EpochBatches(torch.utils.data.Sampler[torch.Tensor]):
    """The training chunks' indices, batch by batch: each epoch a permutation seeded by
    (seed, epoch) alone, cut into `batch_size` slices (the last one may be shorter).

    `set_epoch(epoch, first_step)` before each epoch, as with torch's DistributedSampler; a
    resumed run passes the steps its checkpoint had done and continues at the next batch. Since
    every process can compute an epoch's order from (seed, epoch) without talking to the others,
    a distributed run shards it like DistributedSampler: pad `order` to a multiple of
    `world_size` with its own first items, keep `order[rank::world_size]`, and cut that into
    batches (per-rank batch size; steps per epoch = ceil(N / world_size / batch)). Nothing else
    in the loop changes.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int) -> None:
        super().__init__()
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.steps_per_epoch = -(-n_items // batch_size)  # ceil: the last batch may be short
        self.epoch = self.first_step = 0

    def set_epoch(self, epoch: int, first_step: int = 0) -> None:
        self.epoch, self.first_step = epoch, first_step

    def order(self) -> torch.Tensor:
        """This epoch's permutation of 0…N−1."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n_items, generator=generator)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = self.order()
        for step in range(self.first_step, self.steps_per_epoch):
            yield order[step * self.batch_size : (step + 1) * self.batch_size]

    def __len__(self) -> int:
        return self.steps_per_epoch - self.first_step


@dataclass
class TrainingData:
    train: ChunkTensors
    validation: ChunkTensors
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
        train=ChunkTensors(train_prepared, stats),
        validation=ChunkTensors(validation_prepared, stats),
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
