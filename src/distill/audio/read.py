"""Read any audio file soundfile understands as mono float32 at the internal rate, in blocks.

Long files are never loaded whole: `iter_mono_blocks` reads `block_seconds` of the source at a time,
downmixes, and feeds a streaming soxr resampler, so memory stays at a few blocks whatever the
file's length (a 1-hour 6-channel 96 kHz file needs about the same RAM as a 1-minute one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from distill.errors import UserError

INTERNAL_RATE = 48_000  # Hz: every stage after this one works at this rate

# File extensions treated as audio when scanning a folder (soundfile decodes all of them).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".mp3"}
)


class AudioReadError(UserError):
    """A file could not be decoded as audio."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file's header says, before any sample is decoded."""

    path: Path
    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel; 0 for an empty file
    format: str  # container, e.g. "WAV", "FLAC"
    subtype: str  # sample encoding, e.g. "PCM_24", "FLOAT"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe(path: str | Path) -> AudioInfo:
    """Read the header of `path`; raise AudioReadError if it is not a decodable audio file."""
    path = Path(path)
    _require_file(path)
    try:
        info = sf.info(sf_path(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioReadError(f"{path.name}: cannot read as audio ({_short_reason(err)})") from err
    return AudioInfo(
        path=path,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        format=str(info.format),
        subtype=str(info.subtype),
    )


def iter_mono_blocks(
    path: str | Path, target_rate: int = INTERNAL_RATE, block_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Yield the file as consecutive mono float32 blocks at `target_rate`.

    The blocks concatenate to the whole resampled signal (soxr's streaming resampler keeps its
    state between blocks, so there is no seam). Samples are not cleaned: NaN/Inf pass through so a
    caller can report them.
    """
    path = Path(path)
    _require_file(path)
    try:
        with sf.SoundFile(sf_path(path)) as f:
            rate = int(f.samplerate)
            block = max(1, int(block_seconds * rate))
            resampler = (
                None
                if rate == target_rate
                else soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
            )
            while True:
                data = f.read(frames=block, dtype="float32", always_2d=True)
                last = len(data) < block
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                if resampler is not None:
                    mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
                if len(mono):
                    yield np.ascontiguousarray(mono, dtype=np.float32)
                if last:
                    return
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioReadError(f"{path.name}: cannot decode ({_short_reason(err)})") from err


def read_mono(path: str | Path, target_rate: int = INTERNAL_RATE) -> np.ndarray:
    """The whole file as one mono float32 array at `target_rate` (for files that fit in memory)."""
    blocks = list(iter_mono_blocks(path, target_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def sf_path(path: Path) -> bytes:
    """`path` as libsndfile opens it: the file system's bytes. A name that is not valid UTF-8
    (Python holds it with surrogate escapes) cannot be passed as text, but opens as bytes."""
    return os.fsencode(path)


def _require_file(path: Path) -> None:
    """Say "not found" for a path that is not there (libsndfile would say "System error.")."""
    if not path.exists():
        raise AudioReadError(f"{path}: file not found: check the path")
    if path.is_dir():
        raise AudioReadError(f"{path} is a folder: pass an audio file")


def _short_reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    # libsndfile prefixes messages with "Error opening '<path>': "; the file name is already given.
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text
