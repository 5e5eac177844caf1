"""Split by file: disjoint, sized as documented, deterministic, order-independent."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from distill.training.split import effective_batch_size, split_by_file, validation_count

FILES = [Path(f"/data/my sounds/take_{i:03d}.wav") for i in range(40)]


def test_no_file_is_on_both_sides_and_none_is_lost() -> None:
    train, val = split_by_file(FILES, 0.2, seed=0)
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(FILES)
    assert len(val) == 8
    assert train == sorted(train, key=str) and val == sorted(val, key=str)


@pytest.mark.parametrize(
    ("n", "fraction", "n_val"),
    [(1, 0.2, 0), (2, 0.1, 1), (2, 0.45, 1), (3, 0.2, 1), (5, 0.1, 1), (5, 0.2, 1), (10, 0.15, 2),
     (50, 0.2, 10), (200, 0.15, 30), (500, 0.1, 50)],
)  # fmt: skip
def test_sizes(n: int, fraction: float, n_val: int) -> None:
    assert validation_count(n, fraction) == n_val
    train, val = split_by_file(FILES[:n] if n <= 40 else list(range(n)), fraction, seed=3)
    assert (len(train), len(val)) == (n - n_val, n_val)
    assert len(train) >= 1


def test_deterministic_by_seed_and_independent_of_order() -> None:
    first = split_by_file(FILES, 0.2, seed=11)
    shuffled = FILES.copy()
    random.Random(5).shuffle(shuffled)
    assert split_by_file(shuffled, 0.2, seed=11) == first
    assert split_by_file(tuple(reversed(FILES)), 0.2, seed=11) == first
    others = {tuple(map(str, split_by_file(FILES, 0.2, seed=s)[1])) for s in range(5)}
    assert len(others) > 1  # the seed really chooses the files


def test_adding_a_file_moves_at_most_one_other_file() -> None:
    before = set(split_by_file(FILES[:39], 0.2, seed=2)[1])
    after = set(split_by_file(FILES, 0.2, seed=2)[1]) - {FILES[39]}
    assert len(before ^ after) <= 1


def test_custom_key_and_duplicate_keys() -> None:
    named = [(f"s{i}", i) for i in range(6)]
    train, val = split_by_file(named, 0.2, seed=0, key=lambda item: item[0])
    assert len(val) == 1 and len(train) == 5
    with pytest.raises(ValueError, match="unique key"):
        split_by_file([*FILES[:3], FILES[0]], 0.2, seed=0)


@pytest.mark.parametrize(
    ("requested", "items", "expected"),
    [(32, 1000, 32), (32, 32, 32), (32, 7, 7), (32, 1, 1), (32, 0, 1), (1, 5, 1)],
)
def test_effective_batch_size(requested: int, items: int, expected: int) -> None:
    assert effective_batch_size(requested, items) == expected


def test_effective_batch_size_rejects_nonpositive() -> None:
    with pytest.raises(ValueError):
        effective_batch_size(0, 10)
