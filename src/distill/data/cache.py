"""Preprocessing cache: audio files → chunks and their 2-channel spectrograms, stored on disk.

A second run on the same files computes nothing; changing one file, a forward-transform setting or
a chunking setting recomputes only the entries that depend on it. One entry per (file content,
analysis settings, chunking settings, variant):

  <cache_dir>/<key>.safetensors   "audio" (n, chunk_samples) float32: the chunks, at 48 kHz
                                  "spec"  (n, 2, n_mels, chunk_frames) float32, unnormalized
                                  metadata "distill": JSON with the format marker and version,
                                  the key, source name, duration, chunk count and ChannelSums
  <cache_dir>/content-index.json  (absolute path, size, mtime_ns) → sha256 of the file's bytes,
                                  so an unchanged file is not read again just to be hashed

Keys hash the file's bytes, never its name or folder: a renamed or moved file reuses its entry.
Entries are written to a temporary file and renamed into place; an entry that cannot be read back
or does not match its key is a cache miss and is rebuilt. Nothing is written next to user audio,
and no file here is ever unpickled: safetensors and JSON only.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors

from distill.atomic import atomic_write
from distill.audio.read import AudioReadError, iter_mono_blocks, read_mono
from distill.data.chunking import ChunkingConfig, cut_chunks, drop_silent
from distill.errors import UserError
from distill.spectral.config import SpectralConfig
from distill.spectral.melscale import MelBands, mel_bands
from distill.spectral.normalize import ChannelStats, ChannelSums
from distill.spectral.transform import analyze

FORMAT = "distill-cache"
FORMAT_VERSION = 1  # part of every key: bumping it turns old entries into misses
METADATA_KEY = "distill"
INDEX_NAME = "content-index.json"
ANALYSIS_BATCH = 16  # chunks per analyze() call: 16 × 1 s = 3 MB of audio, ~0.4 s on one CPU
READ_BLOCK_SECONDS = 10.0  # seconds of source audio decoded at a time
_IO_BLOCK = 1 << 20  # bytes read at a time when hashing or copying
# A file rewritten within the filesystem's timestamp resolution (up to 2 s on FAT) can keep its
# size and mtime: its hash is only remembered once its mtime is older than this, in ns.
_RACY_NS = 2_000_000_000

# An augmentation: the whole mono signal at 48 kHz (float32) → a new mono signal, any length.
Augment = Callable[[np.ndarray], np.ndarray]
# Called after each file: (files done, files in total, the file just done).
Progress = Callable[[int, int, Path], None]


class UnusableAudioError(UserError):
    """A file decodes, but its samples cannot be trained on (no samples, NaN or Inf)."""


class CacheError(UserError):
    """The cache folder cannot be written, or a cache entry can no longer be read."""


@dataclass(frozen=True)
class PreparedFile:
    """One file's cache entry, described without loading its tensors."""

    source: Path  # the user's file, as given
    key: str  # the entry's key: hash of content, settings and variant
    n_chunks: int
    duration: float  # seconds of audio (after augmentation) that was chunked
    sums: ChannelSums  # over every value of the stored spectrograms
    entry_path: Path
    variant: str = ""  # "" = the original audio


@dataclass(frozen=True)
class FileError:
    source: Path
    reason: str  # one line, naming the file


@dataclass
class PrepareReport:
    files: list[PreparedFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    computed: int = 0  # entries analysed in this run
    reused: int = 0  # entries read back from the cache
    hashed: int = 0  # files whose bytes were hashed (not found unchanged in the index)


def prepare_files(
    files: Sequence[Path],
    cache_dir: Path,
    spectral: SpectralConfig,
    chunking: ChunkingConfig = ChunkingConfig(),  # noqa: B008 (frozen, so sharing it is safe)
    variant: str = "",
    augment: Augment | None = None,
    progress: Progress | None = None,
) -> PrepareReport:
    """Make sure every file has a cache entry; compute only the missing ones.

    `variant` names a deterministic augmentation and `augment` applies it (both or neither). A file
    that cannot be used is reported in `errors` with a one-line reason and skipped; it never stops
    the others. Raises CacheError if `cache_dir` cannot be written.
    """
    if bool(variant) != (augment is not None):
        raise ValueError("give both a variant name and an augment function, or neither")
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _cache_write_error(cache_dir, err) from err
    index = _ContentIndex.load(cache_dir / INDEX_NAME)
    job = _Job(cache_dir, spectral, chunking, variant, augment, mel_bands(spectral))
    report = PrepareReport()
    for done, source in enumerate(map(Path, files), start=1):
        try:
            prepared, computed = job.prepare(source, index)
        except (AudioReadError, UnusableAudioError) as err:
            report.errors.append(FileError(source, str(err)))
        else:
            report.files.append(prepared)
            if computed:
                report.computed += 1
            else:
                report.reused += 1
        if progress is not None:
            progress(done, len(files), source)
    report.hashed = index.hashed
    index.save()
    return report


def load_entry(prepared: PreparedFile) -> tuple[torch.Tensor, torch.Tensor]:
    """One file's chunks: audio (n, chunk_samples) and spec (n, 2, n_mels, chunk_frames)."""
    try:
        # Read into memory rather than memory-map: tensors kept by a dataset must not fault (SIGBUS)
        # if the entry file is later truncated or rewritten in place.
        tensors = load_safetensors(prepared.entry_path.read_bytes())
        audio, spec = tensors["audio"], tensors["spec"]
    except (OSError, SafetensorError, KeyError) as err:
        raise CacheError(
            f"{prepared.source.name}: its cache entry {prepared.entry_path} cannot be read "
            f"({err}); prepare the files again to rebuild it"
        ) from err
    if len(audio) != prepared.n_chunks or len(spec) != prepared.n_chunks:
        raise CacheError(
            f"{prepared.source.name}: its cache entry {prepared.entry_path} changed since it was "
            "prepared; prepare the files again"
        )
    return audio, spec


def dataset_stats(files: Sequence[PreparedFile]) -> ChannelStats:
    """Per-channel mean and std over every stored spectrogram value, from the cached sums."""
    if not files:
        raise ValueError("no prepared files to compute statistics from")
    return ChannelStats.from_sums(sum((f.sums for f in files), ChannelSums()))


class ChunkDataset(torch.utils.data.Dataset):
    """Every chunk of the given files: (normalized spec (2, n_mels, frames), audio (samples,)).

    Entries are loaded on first use and kept in memory for the life of the dataset: a 1 s chunk
    is 288 KB (192 KB of audio + 96 KB of spectrogram), so 500 files of ~3 s (5 chunks each at
    50 % overlap) hold ~720 MB.
    """

    def __init__(self, files: Sequence[PreparedFile], stats: ChannelStats) -> None:
        self.files = list(files)
        self.stats = stats
        counts = [f.n_chunks for f in self.files]
        self._starts = [0, *np.cumsum(counts).tolist()]  # first global index of each file
        self._loaded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"chunk {index} out of range for {len(self)} chunks")
        file_index = bisect.bisect_right(self._starts, index) - 1
        audio, spec = self._entry(file_index)
        row = index - self._starts[file_index]
        return spec[row], audio[row]

    def _entry(self, file_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if file_index not in self._loaded:
            audio, spec = load_entry(self.files[file_index])
            self._loaded[file_index] = (audio, self.stats.normalize(spec))
        return self._loaded[file_index]


@dataclass(frozen=True)
class _Job:
    """The settings shared by every file of one prepare_files call."""

    cache_dir: Path
    spectral: SpectralConfig
    chunking: ChunkingConfig
    variant: str
    augment: Augment | None
    bands: MelBands  # computed once per call, not once per batch

    def prepare(self, source: Path, index: _ContentIndex) -> tuple[PreparedFile, bool]:
        """The file's entry, and whether it had to be computed."""
        content = index.content_hash(source)
        key = self.key(content)
        entry_path = self.cache_dir / f"{key}.safetensors"
        metadata = self.read_metadata(entry_path, key)
        computed = metadata is None
        if metadata is None:
            try:
                metadata = self.build(source, entry_path, key, content)
            except OSError as err:  # reading the source raises AudioReadError, so this is a write
                raise _cache_write_error(self.cache_dir, err) from err
        return _prepared(metadata, source, entry_path), computed

    def key(self, content_sha256: str) -> str:
        parts = {
            "version": FORMAT_VERSION,
            "content": content_sha256,
            "analysis": self.spectral.analysis_key(),
            "chunking": self.chunking.to_dict(),
            "variant": self.variant,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]

    def read_metadata(self, entry_path: Path, key: str) -> dict | None:
        """The entry's metadata if it is a complete entry for `key`; None means (re)build it."""
        if not entry_path.is_file():
            return None
        try:
            # safe_open checks the header and that the data covers it exactly: truncation fails.
            with safe_open(str(entry_path), framework="pt") as entry:
                metadata = json.loads((entry.metadata() or {})[METADATA_KEY])
                shapes = {name: tuple(entry.get_slice(name).get_shape()) for name in _SHAPES}
        except (OSError, SafetensorError, KeyError, ValueError):
            return None
        if not isinstance(metadata, dict):
            return None
        n = metadata.get("chunks")
        expected = {name: (n, *tail(self.spectral)) for name, tail in _SHAPES.items()}
        valid = (
            metadata.get("format") == FORMAT
            and metadata.get("version") == FORMAT_VERSION
            and metadata.get("key") == key
            and isinstance(n, int)
            and n > 0
            and shapes == expected
        )
        return metadata if valid else None

    def build(self, source: Path, entry_path: Path, key: str, content: str) -> dict:
        """Chunk and analyse `source`, write its entry, and return the entry's metadata."""
        if self.augment is None:
            rate = self.spectral.sample_rate
            blocks = _Counted(iter_mono_blocks(source, rate, READ_BLOCK_SECONDS))
        else:
            # Augmentations such as pitch shift or time stretch need the whole signal; variants are
            # made for small datasets, and only one file is held at a time.
            signal = self.augment(read_mono(source, self.spectral.sample_rate))
            blocks = _Counted([np.asarray(signal, dtype=np.float32)])
        chunks = cut_chunks(blocks, self.spectral.chunk_samples, self.chunking)
        chunks = drop_silent(_require_finite(chunks, source), self.chunking)
        sums = ChannelSums()
        with _EntryWriter(self.cache_dir) as writer:
            for batch in _batched(chunks, ANALYSIS_BATCH):
                audio = np.stack(batch)  # (b, chunk_samples)
                spec = analyze(torch.from_numpy(audio), self.spectral, self.bands)  # (b, 2, M, N)
                sums = sums + ChannelSums.of(spec)
                writer.append(audio=audio, spec=spec.numpy())
            if writer.rows == 0:
                raise UnusableAudioError(f"{source.name}: contains no audio samples")
            metadata = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "key": key,
                "source": source.name,
                "content_sha256": content,
                "variant": self.variant,
                "duration_s": blocks.samples / self.spectral.sample_rate,
                "chunks": writer.rows,
                "sums": sums.to_dict(),
            }
            writer.commit(entry_path, metadata)
        return metadata


# Each tensor's shape after the chunk axis, from the spectral settings.
_SHAPES: dict[str, Callable[[SpectralConfig], tuple[int, ...]]] = {
    "audio": lambda cfg: (cfg.chunk_samples,),
    "spec": lambda cfg: (2, cfg.n_mels, cfg.chunk_frames),
}


def _prepared(metadata: dict, source: Path, entry_path: Path) -> PreparedFile:
    return PreparedFile(
        source=source,
        key=metadata["key"],
        n_chunks=metadata["chunks"],
        duration=metadata["duration_s"],
        sums=ChannelSums.from_dict(metadata["sums"]),
        entry_path=entry_path,
        variant=metadata["variant"],
    )


class _Counted:
    """Passes blocks through, counting their samples (the duration of what was chunked)."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self._blocks = blocks
        self.samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            self.samples += len(block)
            yield block


def _require_finite(chunks: Iterable[np.ndarray], source: Path) -> Iterator[np.ndarray]:
    for chunk in chunks:
        if not np.isfinite(chunk).all():
            raise UnusableAudioError(
                f"{source.name}: contains NaN or infinite samples; re-export it from its source"
            )
        yield chunk


def _batched(items: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _EntryWriter:
    """Streams one entry's tensors to disk, so a long file's chunks are never all in memory.

    The safetensors library only saves tensors that are already in memory, so its layout is written
    here: an 8-byte little-endian header size, the JSON header, then each tensor's raw
    little-endian bytes in header order. Entries are read back with the library, which checks it.
    """

    def __init__(self, directory: Path) -> None:
        # Anonymous temporary files in the cache folder: they vanish when closed, or on a crash.
        # They are closed by __exit__ (the writer is only used in a with statement).
        self._parts = {name: tempfile.TemporaryFile(dir=directory) for name in _SHAPES}  # noqa: SIM115
        self._shapes: dict[str, tuple[int, ...]] = {}
        self.rows = 0

    def __enter__(self) -> _EntryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        for part in self._parts.values():
            part.close()

    def append(self, **arrays: np.ndarray) -> None:
        """Add rows to every tensor: arrays are (rows, ...) with the same rows."""
        for name, array in arrays.items():
            self._parts[name].write(np.ascontiguousarray(array, dtype="<f4").tobytes())
            self._shapes[name] = array.shape[1:]
        self.rows += len(arrays["audio"])

    def commit(self, path: Path, metadata: dict) -> None:
        header: dict = {"__metadata__": {METADATA_KEY: json.dumps(metadata)}}
        offset = 0
        for name, part in self._parts.items():
            size = part.tell()  # bytes written so far
            header[name] = {
                "dtype": "F32",
                "shape": [self.rows, *self._shapes[name]],
                "data_offsets": [offset, offset + size],
            }
            offset += size
        blob = json.dumps(header).encode()
        blob += b" " * (-(8 + len(blob)) % 8)  # pad with spaces: tensor data starts 8-byte aligned

        def write(out: BinaryIO) -> None:
            out.write(struct.pack("<Q", len(blob)))
            out.write(blob)
            for part in self._parts.values():
                part.seek(0)
                shutil.copyfileobj(part, out, _IO_BLOCK)

        atomic_write(path, write)


class _ContentIndex:
    """(absolute path, size, mtime_ns) → sha256 of the file's bytes, kept in one JSON file.

    Losing it costs only time: an unreadable index is an empty one, and two runs saving at once
    just keep the later run's view.
    """

    def __init__(self, path: Path, entries: dict) -> None:
        self._path = path
        self._entries = entries
        self._changed = False
        self.hashed = 0

    @classmethod
    def load(cls, path: Path) -> _ContentIndex:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["files"] if data.get("version") == FORMAT_VERSION else {}
        except (OSError, ValueError, KeyError, AttributeError):
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {})

    def content_hash(self, source: Path) -> str:
        try:
            stat = source.stat()
            name = str(source.resolve())
        except OSError as err:
            raise AudioReadError(f"{source.name}: cannot read ({err.strerror or err})") from err
        known = self._entries.get(name)
        if (
            isinstance(known, dict)
            and known.get("size") == stat.st_size
            and known.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(known.get("sha256"), str)
        ):
            return known["sha256"]
        digest = _file_sha256(source)
        self.hashed += 1
        if time.time_ns() - stat.st_mtime_ns > _RACY_NS:
            self._entries[name] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": digest,
            }
            self._changed = True
        elif self._entries.pop(name, None) is not None:
            self._changed = True
        return digest

    def save(self) -> None:
        if not self._changed:
            return
        text = json.dumps({"version": FORMAT_VERSION, "files": self._entries}, ensure_ascii=False)
        try:
            atomic_write(self._path, lambda out: out.write(text.encode("utf-8")))
        except OSError as err:
            raise _cache_write_error(self._path.parent, err) from err


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(_IO_BLOCK):
                digest.update(block)
    except OSError as err:
        raise AudioReadError(f"{path.name}: cannot read ({err.strerror or err})") from err
    return digest.hexdigest()


def _cache_write_error(cache_dir: Path, err: OSError) -> CacheError:
    return CacheError(
        f"cannot write the preprocessing cache in {cache_dir} ({err.strerror or err}); "
        "free some disk space or choose another Distill home"
    )
