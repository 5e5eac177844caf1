"""Cut a stream of mono audio into the fixed-length chunks the model trains on.

With the defaults (1 s chunks at 48 kHz, step 0.5, tail 0.25, silence −80 dBFS):
  chunk = 48 000 samples, step = 24 000 samples: consecutive chunks overlap by 50 %.
  A file of T ≥ 48 000 samples gives 1 + (T − 48 000) // 24 000 full chunks, plus one zero-padded
  chunk at the next step if the audio after the last full chunk's end is ≥ 12 000 samples (0.25 s).
  A file shorter than one chunk gives one chunk, zero-padded at the end.
  Chunks whose peak is below −80 dBFS (1e-4 full scale) are dropped, unless every chunk of the file
  is that quiet: then its first chunk is kept, so no file silently vanishes from the dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkingConfig:
    # Step between chunk starts, as a fraction of the chunk (0.5 → 50 % overlap; 1.0 → none).
    step_fraction: float = 0.5
    # The audio left after the last full chunk becomes one more (zero-padded) chunk only if it is at
    # least this fraction of a chunk long: shorter tails would teach the model mostly padding.
    min_tail_fraction: float = 0.25
    # dBFS: chunks whose peak is below this are silence (the log floor of the analysis is −100).
    silence_db: float = -80.0

    def __post_init__(self) -> None:
        if not 0.0 < self.step_fraction <= 1.0:
            raise ValueError(f"step_fraction must be in (0, 1], got {self.step_fraction}")
        if not 0.0 <= self.min_tail_fraction <= 1.0:
            raise ValueError(f"min_tail_fraction must be in [0, 1], got {self.min_tail_fraction}")

    def step_samples(self, chunk_samples: int) -> int:
        """Samples between chunk starts: 24 000 for 1 s chunks by default."""
        return max(1, round(self.step_fraction * chunk_samples))

    def min_tail_samples(self, chunk_samples: int) -> int:
        """Shortest tail kept as a chunk: 12 000 samples (0.25 s) for 1 s chunks by default."""
        return max(1, round(self.min_tail_fraction * chunk_samples))

    @property
    def silence_peak(self) -> float:
        """The silence threshold in linear full-scale units: 1e-4 for −80 dBFS."""
        return 10.0 ** (self.silence_db / 20.0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def cut_chunks(
    blocks: Iterable[np.ndarray], chunk_samples: int, chunking: ChunkingConfig
) -> Iterator[np.ndarray]:
    """Yield float32 chunks of exactly `chunk_samples` from consecutive mono blocks.

    Only a rolling buffer of at most one block plus one chunk is held, so a file of any length
    streams through. The chunks do not depend on how the stream is split into blocks.
    """
    step = chunking.step_samples(chunk_samples)
    buffer = np.zeros(0, dtype=np.float32)  # audio from the next chunk start onwards
    full_chunks = 0
    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, dtype=np.float32)])
        while len(buffer) >= chunk_samples:
            yield buffer[:chunk_samples].copy()
            full_chunks += 1
            buffer = buffer[step:]
    # The buffer now starts at the next step; its first (chunk − step) samples, if any chunk was
    # cut, were already in the last full chunk, so only the rest is new audio.
    new_audio = len(buffer) - (chunk_samples - step) if full_chunks else len(buffer)
    too_short_tail = full_chunks > 0 and new_audio < chunking.min_tail_samples(chunk_samples)
    if new_audio > 0 and not too_short_tail:
        yield _pad(buffer, chunk_samples)


def drop_silent(chunks: Iterable[np.ndarray], chunking: ChunkingConfig) -> Iterator[np.ndarray]:
    """Skip chunks quieter than `chunking.silence_db`, keeping the first one if all are silent."""
    first_silent = None
    kept = 0
    for chunk in chunks:
        if float(np.max(np.abs(chunk))) >= chunking.silence_peak:
            kept += 1
            yield chunk
        elif first_silent is None:
            first_silent = chunk
    if kept == 0 and first_silent is not None:
        yield first_silent


def _pad(audio: np.ndarray, length: int) -> np.ndarray:
    padded = np.zeros(length, dtype=np.float32)
    padded[: len(audio)] = audio
    return padded
