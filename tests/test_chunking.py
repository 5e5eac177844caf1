"""Chunk cutting: counts, content, padding, silence, and independence from the block size."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data.chunking import ChunkingConfig, cut_chunks, drop_silent

CHUNK = 100  # samples; step 50, shortest kept tail 25 with the default ChunkingConfig
DEFAULT = ChunkingConfig()


def chunks_of(signal: np.ndarray, chunking: ChunkingConfig = DEFAULT) -> list[np.ndarray]:
    return list(cut_chunks([signal], CHUNK, chunking))


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, 0),  # empty: nothing
        (1, 1),  # shorter than a chunk: one padded chunk, whatever its length
        (99, 1),
        (100, 1),  # exactly one chunk, nothing left over
        (124, 1),  # 24 samples after the chunk: < 25, dropped
        (125, 2),  # 25 samples after the chunk: kept as a padded chunk at 50
        (150, 2),  # full chunks at 0 and 50
        (174, 2),  # 24 new samples after the chunk ending at 150
        (175, 3),  # 25 new samples: padded chunk at 100
        (1000, 19),  # 1 + (1000 − 100) // 50 full chunks, last ends at 1000
    ],
)
def test_chunk_counts(length: int, expected: int) -> None:
    assert len(chunks_of(np.ones(length, dtype=np.float32))) == expected


def test_chunks_are_the_overlapping_slices_and_the_tail_is_zero_padded() -> None:
    signal = np.arange(1, 181, dtype=np.float32)  # 180 samples, no zeros
    chunks = chunks_of(signal)
    assert [c.dtype for c in chunks] == [np.float32] * 3
    np.testing.assert_array_equal(chunks[0], signal[0:100])
    np.testing.assert_array_equal(chunks[1], signal[50:150])
    np.testing.assert_array_equal(chunks[2][:80], signal[100:180])  # 30 new samples ≥ 25: kept
    np.testing.assert_array_equal(chunks[2][80:], np.zeros(20, dtype=np.float32))


def test_short_signal_is_padded_at_the_end() -> None:
    (chunk,) = chunks_of(np.full(30, 0.5, dtype=np.float32))
    np.testing.assert_array_equal(chunk[:30], np.full(30, 0.5, dtype=np.float32))
    np.testing.assert_array_equal(chunk[30:], np.zeros(70, dtype=np.float32))


def test_without_overlap_the_tail_counts_its_own_samples() -> None:
    no_overlap = ChunkingConfig(step_fraction=1.0)
    assert len(chunks_of(np.ones(224, dtype=np.float32), no_overlap)) == 2  # tail of 24
    assert len(chunks_of(np.ones(225, dtype=np.float32), no_overlap)) == 3  # tail of 25


def test_chunks_do_not_depend_on_how_the_stream_is_split() -> None:
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(1037).astype(np.float32)
    whole = chunks_of(signal)
    cuts = np.sort(rng.choice(np.arange(1, len(signal)), size=40, replace=False))
    blocks = np.split(signal, cuts)  # blocks of 1 to ~100 samples
    pieces = list(cut_chunks(iter(blocks), CHUNK, ChunkingConfig()))
    assert len(pieces) == len(whole) == 20
    for a, b in zip(pieces, whole, strict=True):
        np.testing.assert_array_equal(a, b)


def test_silent_chunks_are_dropped_at_minus_80_dbfs() -> None:
    loud = np.full(CHUNK, 1.1e-4, dtype=np.float32)  # −79.2 dBFS
    quiet = np.full(CHUNK, 0.9e-4, dtype=np.float32)  # −80.9 dBFS
    kept = list(drop_silent([quiet, loud, quiet], ChunkingConfig()))
    assert len(kept) == 1
    np.testing.assert_array_equal(kept[0], loud)


def test_an_all_silent_file_keeps_its_first_chunk() -> None:
    first, second = np.zeros(CHUNK, np.float32), np.full(CHUNK, 1e-6, np.float32)
    kept = list(drop_silent([first, second], ChunkingConfig()))
    assert len(kept) == 1
    assert kept[0] is first


@pytest.mark.parametrize("step", [0.0, -0.5, 1.5])
def test_step_outside_zero_one_is_refused(step: float) -> None:
    with pytest.raises(ValueError, match="step_fraction"):
        ChunkingConfig(step_fraction=step)
