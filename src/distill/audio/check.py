"""Decide, file by file, whether a folder of recordings can be trained on.

Every candidate file is decoded once from start to end in blocks of the *source* samples (no
resampling: resampling moves peaks, and the check needs none), which catches truncated streams and
measures peak, non-finite and full-scale sample counts in the same pass. Memory stays at a few
blocks (about 1 MB each) whatever the file's length. Nothing in the folder is written or modified.

Verdicts, in the order they are tested (the first that applies wins):

- "not audio" / "unsupported": the extension is not one Distill reads (sidecars such as notes,
  cover art and DAW analysis files are not listed at all).
- "empty": a 0-byte file, or a header with no audio frames.
- "unreadable": libsndfile cannot open it (e.g. a text file renamed .wav).
- "corrupt": decoding fails part-way, or yields clearly fewer frames than the header declares.
- "non-finite": at least one NaN or ±Inf sample (float files only).
- "too short": shorter than `min_seconds` (default 0.01 s): a few milliseconds carry no sound to
  learn. Short one-shots (a 20 ms hat, a 54 ms clap) are normal material: they are used, padded
  with silence to the model's chunk, and their verdict says so.
- "silent": peak below -60 dBFS.
- "clipped": more than 1 % of samples at full scale. The file is still *used*: distortion may be
  the musician's sound, so it is reported, not dropped.
- "ok" (with "padded with silence" for files shorter than one 1 s chunk).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import soundfile as sf

from distill.audio.read import AUDIO_EXTENSIONS, INTERNAL_RATE, sf_path
from distill.audio.thumbnail import WaveformEnvelope, thumbnail_name, write_waveform_png
from distill.errors import UserError

MIN_USABLE_FILES = 5  # training refuses below this many usable files
DEFAULT_MIN_SECONDS = 0.01  # s: ~1 STFT hop of 512 at 48 kHz; a shorter file holds no sound
PADDED_BELOW_SECONDS = 1.0  # s: the model's default chunk; shorter files are padded to it
SILENCE_DBFS = -60.0  # dBFS: a peak below this is treated as silence (noise floor of a quiet room)
CLIP_LEVEL = 0.999  # |sample| at or above this (full scale = 1.0) counts as clipped
CLIP_FRACTION = 0.01  # more than 1 % of samples clipped → "clipped"
# 8-bit and companded encodings cannot reach 0.999: their largest code decodes lower
# (PCM_U8 → 127/128 = 0.992, µ-law → 0.980, A-law → 0.984); clip there instead.
_CLIP_LEVEL_BY_SUBTYPE = {"PCM_U8": 0.99, "PCM_S8": 0.99, "ULAW": 0.98, "ALAW": 0.98}
# A decoded stream shorter than its header by more than this is truncated. MP3 headers hold an
# estimate, so a little slack (1 %, at least 0.1 s) avoids false alarms on valid files.
_TRUNCATION_SLACK = 0.01
_TRUNCATION_MIN_SECONDS = 0.1
LONG_FILE_SECONDS = 30 * 60.0  # s: longer files get a warning (one file can dominate training)
LOW_RATE_HZ = 32_000  # Hz: below this a file has nothing above 16 kHz and sounds dull
_BLOCK_SAMPLES = 1 << 18  # samples (all channels) per read: 1 MB of float32

# Files that often sit beside recordings and are not worth a line in the report.
SIDECAR_EXTENSIONS = frozenset(
    {".json", ".txt", ".md", ".csv", ".log", ".nfo", ".cue", ".xml", ".ini", ".db", ".pdf"}
    | {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}  # cover art, our own thumbnails
    | {".asd", ".reapeaks", ".pk", ".pkf", ".sfk"}  # DAW/editor waveform-cache files
)
# Audio formats people expect to work but Distill does not read: tell them to convert.
UNSUPPORTED_AUDIO_EXTENSIONS = frozenset(
    {".m4a", ".aac", ".mp4", ".m4v", ".mov", ".wma", ".opus", ".alac", ".ape", ".wv", ".caf"}
    | {".w64", ".rf64", ".au", ".snd", ".mpc", ".dsf", ".dff", ".amr", ".webm", ".mka", ".mp2"}
)


class Verdict(str, Enum):
    """One file's verdict; the value is what the table and the JSON show."""

    OK = "ok"
    CLIPPED = "clipped"
    NOT_AUDIO = "not audio"
    UNSUPPORTED = "unsupported"
    EMPTY = "empty"
    UNREADABLE = "unreadable"
    CORRUPT = "corrupt"
    NON_FINITE = "non-finite"
    TOO_SHORT = "too short"
    SILENT = "silent"


USABLE_VERDICTS = frozenset({Verdict.OK, Verdict.CLIPPED})


class DatasetTooSmallError(UserError):
    """Fewer than MIN_USABLE_FILES usable files: the check ran, the data is not enough."""

    exit_code = 1


@dataclass
class FileVerdict:
    """The check's result for one file; header fields are None where it could not be opened."""

    path: str  # relative to the checked folder, "/"-separated
    verdict: Verdict
    reason: str  # one short human line, e.g. "silent: peak -inf dBFS (threshold -60 dBFS)"
    sample_rate: int | None = None  # Hz, of the source
    channels: int | None = None
    duration: float | None = None  # s: decoded length, or the header's if decoding failed
    format: str | None = None  # container, e.g. "WAV"
    subtype: str | None = None  # sample encoding, e.g. "PCM_24"
    peak_dbfs: float | None = None  # dBFS over all channels; -inf for digital silence
    clipped_fraction: float | None = None  # share of samples at full scale, 0..1
    thumbnail: str | None = None  # path of the PNG written for it, if any

    @property
    def usable(self) -> bool:
        return self.verdict in USABLE_VERDICTS

    def to_dict(self) -> dict:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["usable"] = self.usable
        # JSON has no -inf: digital silence is reported as null, the verdict says "silent".
        if out["peak_dbfs"] is not None and not math.isfinite(out["peak_dbfs"]):
            out["peak_dbfs"] = None
        return out


@dataclass
class DatasetReport:
    """Every file's verdict plus what holds for the folder as a whole."""

    directory: Path  # absolute
    files: list[FileVerdict]
    min_seconds: float = DEFAULT_MIN_SECONDS
    ignored: int = 0  # sidecar files not listed (notes, cover art, DAW caches)
    thumbnails_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def usable(self) -> list[Path]:
        """Absolute paths of the files training may use, in report order."""
        return [self.directory / f.path for f in self.files if f.usable]

    @property
    def usable_duration(self) -> float:
        """s: total decoded length of the usable files."""
        return sum(f.duration or 0.0 for f in self.files if f.usable)

    @property
    def ok(self) -> bool:
        return len(self.usable) >= MIN_USABLE_FILES

    @property
    def problem(self) -> str | None:
        """Why training would refuse this folder, as one line; None when it has enough files."""
        if self.ok:
            return None
        n = len(self.usable)
        return (
            f"only {n} usable audio file{'' if n == 1 else 's'} in {self.directory} "
            f"(need at least {MIN_USABLE_FILES}): add more recordings or fix the files marked above"
        )

    def require_enough(self) -> None:
        """Raise DatasetTooSmallError (exit code 1) unless enough files are usable."""
        if self.problem:
            raise DatasetTooSmallError(self.problem)

    def summary(self) -> dict:
        usable = [f for f in self.files if f.usable]
        return {
            "directory": str(self.directory),
            "files_checked": len(self.files),
            "usable_files": len(usable),
            "usable_duration": round(self.usable_duration, 3),
            "verdicts": dict(Counter(f.verdict.value for f in self.files)),
            "sample_rates": {str(k): v for k, v in _counts(f.sample_rate for f in usable)},
            "channels": {str(k): v for k, v in _counts(f.channels for f in usable)},
            "ignored_files": self.ignored,
            "min_seconds": self.min_seconds,
            "min_usable_files": MIN_USABLE_FILES,
            "thumbnails_dir": str(self.thumbnails_dir) if self.thumbnails_dir else None,
            "warnings": list(self.warnings),
            "problem": self.problem,
        }

    def to_dict(self) -> dict:
        return {
            "files": [f.to_dict() for f in self.files],
            "summary": self.summary(),
            "ok": self.ok,
        }


def check_dataset(
    directory: str | Path,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    thumbnails_dir: str | Path | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
) -> DatasetReport:
    """Check every file under `directory`, writing a waveform PNG per decoded file if asked.

    `on_file(index, total, relative_path)` is called before each file (for progress displays).
    Raises UserError when `directory` is missing, not a folder, or holds no audio files; a folder
    with too few usable files still gives a report (see `DatasetReport.require_enough`).
    """
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise UserError(f"folder not found: {directory}: check the path")
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a folder: pass the folder that holds it")
    directory = directory.resolve()
    out_dir = Path(thumbnails_dir).expanduser().resolve() if thumbnails_dir else None
    relative_paths, ignored = scan_directory(directory, exclude=out_dir)
    if not any(Path(p).suffix.lower() in AUDIO_EXTENSIONS for p in relative_paths):
        kinds = ", ".join(sorted(AUDIO_EXTENSIONS))
        raise UserError(
            f"no audio files in {directory} (looked for {kinds}): "
            "point to the folder that holds your recordings"
        )
    if out_dir is not None:
        _make_thumbnails_dir(out_dir)

    taken_names: set[str] = set()
    files = []
    for index, rel in enumerate(relative_paths):
        if on_file is not None:
            on_file(index, len(relative_paths), rel)
        thumb = out_dir / thumbnail_name(rel, taken_names) if out_dir else None
        files.append(check_file(directory / rel, rel, min_seconds, thumb))
    report = DatasetReport(directory, files, min_seconds, ignored, out_dir)
    report.warnings.extend(dataset_warnings(files))
    return report


def scan_directory(directory: Path, exclude: Path | None = None) -> tuple[list[str], int]:
    """Relative POSIX paths of the files to report, sorted, and how many sidecars were skipped.

    Hidden files and folders (leading ".") are skipped, as is `exclude` (the thumbnail folder when
    the user puts it inside the data folder). Symlinked folders are not followed (no loops).
    """
    found, ignored = [], 0
    for root, dirs, names in os.walk(directory):
        root_path = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and root_path / d != exclude]
        for name in names:
            path = root_path / name
            if name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() in SIDECAR_EXTENSIONS:
                ignored += 1
                continue
            found.append(path.relative_to(directory).as_posix())
    return sorted(found), ignored


@dataclass
class _Stats:
    frames: int = 0  # per channel
    samples: int = 0  # all channels
    peak: float = 0.0  # max |x| over finite samples, full scale = 1.0
    non_finite: int = 0
    clipped: int = 0  # samples with |x| >= clip level


def check_file(
    path: Path,
    relative: str,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    thumbnail: Path | None = None,
) -> FileVerdict:
    """Verdict for one file; decodes it once, in blocks. Writes `thumbnail` if it decodes fully."""
    ext = path.suffix.lower()
    if ext in UNSUPPORTED_AUDIO_EXTENSIONS:
        why = f"unsupported format {ext}: convert it to WAV, FLAC, AIFF, OGG or MP3"
        return FileVerdict(relative, Verdict.UNSUPPORTED, why)
    if ext not in AUDIO_EXTENSIONS:
        return FileVerdict(relative, Verdict.NOT_AUDIO, f"not audio ({ext or 'no extension'})")
    kind = ext.lstrip(".").upper()
    try:
        if path.stat().st_size == 0:
            return FileVerdict(relative, Verdict.EMPTY, "empty: 0-byte file")
        handle = sf.SoundFile(sf_path(path))  # bytes: any name the file system allows
    except (RuntimeError, OSError, ValueError) as err:
        why = _libsndfile_reason(err, kind)
        return FileVerdict(relative, Verdict.UNREADABLE, f"unreadable: {why}")
    with handle:
        result = FileVerdict(
            relative,
            Verdict.OK,
            "ok",
            sample_rate=int(handle.samplerate),
            channels=int(handle.channels),
            duration=handle.frames / handle.samplerate,
            format=str(handle.format),
            subtype=str(handle.subtype),
        )
        clip_level = _CLIP_LEVEL_BY_SUBTYPE.get(result.subtype, CLIP_LEVEL)
        envelope = WaveformEnvelope(handle.frames) if thumbnail else None
        try:
            stats = _stream_stats(handle, clip_level, envelope)
        except (RuntimeError, OSError, ValueError) as err:
            result.verdict = Verdict.CORRUPT
            # No position in the message: libsndfile drops the whole block that failed, so
            # the frames read so far say little about where the damage is.
            result.reason = (
                f"truncated or corrupt {kind}: decoding fails before the end of its "
                f"{result.duration:.2f} s ({_libsndfile_reason(err, kind)})"
            )
            return result
        declared = handle.frames

    _judge(result, stats, declared, min_seconds)
    if envelope is not None and result.verdict not in (Verdict.CORRUPT, Verdict.EMPTY):
        try:
            result.thumbnail = str(write_waveform_png(envelope, thumbnail, clip_level))
        except OSError as err:  # the thumbnail folder's problem, not the recording's
            raise UserError(f"cannot write thumbnail {thumbnail}: {err.strerror or err}") from err
    return result


def _stream_stats(
    handle: sf.SoundFile, clip_level: float, envelope: WaveformEnvelope | None
) -> _Stats:
    """One pass over the source samples in blocks; raises what libsndfile raises on bad data."""
    stats = _Stats()
    block_frames = max(1024, _BLOCK_SAMPLES // max(1, handle.channels))
    while True:
        block = handle.read(frames=block_frames, dtype="float32", always_2d=True)  # (frames, ch)
        if len(block):
            magnitude = np.abs(block)
            finite = np.isfinite(magnitude)
            bad = block.size - int(np.count_nonzero(finite))
            if bad:
                stats.non_finite += bad
                magnitude = np.where(finite, magnitude, 0.0)
                block = np.where(finite, block, 0.0)
            stats.peak = max(stats.peak, float(magnitude.max()))
            stats.clipped += int(np.count_nonzero(magnitude >= clip_level))
            stats.frames += len(block)
            stats.samples += block.size
            if envelope is not None:
                envelope.add(block.mean(axis=1, dtype=np.float32))  # mono, as training hears it
        if len(block) < block_frames:
            return stats


def _judge(result: FileVerdict, stats: _Stats, declared: int, min_seconds: float) -> None:
    """Fill in the measured fields and the verdict of a fully decoded file."""
    rate = result.sample_rate or 1
    result.duration = stats.frames / rate
    result.peak_dbfs = 20.0 * math.log10(stats.peak) if stats.peak > 0 else -math.inf
    result.clipped_fraction = stats.clipped / stats.samples if stats.samples else 0.0
    kind = Path(result.path).suffix.lstrip(".").upper()
    slack = max(_TRUNCATION_SLACK * declared, _TRUNCATION_MIN_SECONDS * rate)

    if stats.frames == 0:
        result.verdict, result.reason = Verdict.EMPTY, "empty: header only, no audio frames"
    elif declared - stats.frames > slack:
        result.verdict = Verdict.CORRUPT
        result.reason = (
            f"truncated {kind}: only {stats.frames / rate:.2f} s of the "
            f"{declared / rate:.2f} s its header declares could be decoded"
        )
    elif stats.non_finite:
        result.verdict = Verdict.NON_FINITE
        result.reason = f"non-finite samples: {stats.non_finite} of {stats.samples} are NaN or Inf"
    elif result.duration < min_seconds:
        result.verdict = Verdict.TOO_SHORT
        result.reason = f"too short: {result.duration:.3f} s (minimum {min_seconds:g} s)"
    elif result.peak_dbfs < SILENCE_DBFS:
        result.verdict = Verdict.SILENT
        result.reason = (
            f"silent: peak {result.peak_dbfs:.1f} dBFS (threshold {SILENCE_DBFS:g} dBFS)"
        )
    elif result.clipped_fraction > CLIP_FRACTION:
        result.verdict = Verdict.CLIPPED
        result.reason = (
            f"heavily clipped: {100 * result.clipped_fraction:.1f} % of samples at full scale "
            f"(limit {100 * CLIP_FRACTION:g} %); used anyway"
        )
    elif result.duration < PADDED_BELOW_SECONDS:
        result.reason = (
            f"ok: {1000 * result.duration:.0f} ms, padded with silence to the model's "
            f"{PADDED_BELOW_SECONDS:g} s chunk"
        )


def dataset_warnings(files: list[FileVerdict]) -> list[str]:
    """Problems of the usable set as a whole (none of them stops training)."""
    usable = [f for f in files if f.usable]
    warnings = []
    rates = _counts(f.sample_rate for f in usable)
    if len(rates) > 1:
        listed = ", ".join(f"{rate} Hz ×{n}" for rate, n in rates)
        warnings.append(
            f"mixed sample rates: {listed}; all will be resampled to {INTERNAL_RATE // 1000} kHz"
        )
    low = [(rate, n) for rate, n in rates if rate < LOW_RATE_HZ]
    if low:
        listed = ", ".join(f"{rate} Hz ×{n}" for rate, n in low)
        warnings.append(
            f"low sample rates: {listed}; nothing above half the rate is in those files, "
            "so they will sound duller than the rest"
        )
    channels = _counts(f.channels for f in usable)
    if len(channels) > 1:
        listed = ", ".join(f"{_channel_name(c)} ×{n}" for c, n in channels)
        warnings.append(f"mixed channel counts: {listed}; all will be downmixed to mono")
    long_files = [f for f in usable if (f.duration or 0.0) > LONG_FILE_SECONDS]
    if long_files:
        listed = ", ".join(f"{f.path} ({(f.duration or 0.0) / 60:.0f} min)" for f in long_files)
        warnings.append(
            f"very long files: {listed}; they are read in blocks, "
            "but one long file can dominate what the model learns"
        )
    clipped = sum(f.verdict is Verdict.CLIPPED for f in usable)
    if clipped:
        warnings.append(
            f"{clipped} heavily clipped file{'' if clipped == 1 else 's'} will be used: "
            "the model will learn the distortion as part of your sound"
        )
    return warnings


def _make_thumbnails_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file: pass a folder for --thumbnails")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create thumbnail folder {out_dir}: {err.strerror}") from err


def _counts(values) -> list[tuple[int, int]]:
    """(value, count) pairs sorted by value, ignoring None."""
    return sorted(Counter(v for v in values if v is not None).items())


def _channel_name(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels} ch")


def _libsndfile_reason(err: Exception, kind: str) -> str:
    """libsndfile's message, without the path it repeats and without its misleading wording."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if text.startswith("Error opening"):  # "Error opening '<path>': Format not recognised."
        text = text.split("': ", 1)[-1]
    if "does not exist or is not a regular file" in text:
        # What libsndfile (via mpg123) says about an existing file that holds no MP3 frames.
        return f"not a valid {kind} stream"
    if text.lower().startswith("format not recognised"):
        return f"not a {kind} file (format not recognised; is it really audio?)"
    return text.rstrip(".").removeprefix("Error : ").removeprefix("Internal ")
