"""Train/validation split by source file, and the batch size a small dataset can actually fill.

The split is made on the user's source files BEFORE augmentation: the augmented variants of a
training file are added to training only, and validation uses only the original variant of its
files. No chunk of a validation recording, augmented or not, is ever trained on (an earlier design
validated on a random 30 % of augmented chunks, so copies of one recording sat on both sides).

Which files validate is decided by ranking each file on a hash of (seed, key): deterministic for a
seed, independent of the order the files are listed in, and adding a file to the folder moves at
most one other file across the split instead of reshuffling it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def validation_count(n_files: int, validation_fraction: float) -> int:
    """Files held out: round(n · fraction), but ≥ 1 when n ≥ 2 and always ≤ n − 1.

    5 files at 0.1 → 1 (0.5 rounds up here, and ≥ 1 anyway); 2 files → 1; 1 file → 0.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if n_files < 2:
        return 0
    return min(max(1, math.floor(n_files * validation_fraction + 0.5)), n_files - 1)


def split_by_file(
    files: Sequence[T],
    validation_fraction: float,
    seed: int,
    key: Callable[[T], str] = str,
) -> tuple[list[T], list[T]]:
    """(training files, validation files), each sorted by `key`.

    `key` names a file stably (its path by default) and must be unique per file. Pass source
    files, not augmented variants or chunks: see the module docstring.
    """
    keys = [key(f) for f in files]
    if len(set(keys)) != len(keys):
        raise ValueError("split_by_file needs a unique key per file; got duplicates")
    by_key = sorted(zip(keys, files, strict=True), key=lambda pair: pair[0])
    ranked = sorted(by_key, key=lambda pair: _rank(seed, pair[0]))
    held_out = {k for k, _ in ranked[: validation_count(len(files), validation_fraction)]}
    train = [f for k, f in by_key if k not in held_out]
    validation = [f for k, f in by_key if k in held_out]
    return train, validation


def effective_batch_size(requested: int, n_items: int) -> int:
    """The batch size to use: the requested one, but never more than the items there are (≥ 1)."""
    if requested < 1:
        raise ValueError(f"batch size must be ≥ 1, got {requested}")
    return max(1, min(requested, n_items))


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{key}".encode()).digest()
