"""Write a take to disk: resample, level (loudness target, peak ceiling), encode, tag, sidecar.

The file is encoded and tagged in memory, then written with `atomic_write` (temp file beside the
target, fsync, rename), so a full disk, a read-only folder or Ctrl-C leaves the old file or the new
one, never half of one. Encoding happens in memory because libsndfile reports a failed disk write
without its cause, while Python's own write raises an OSError that says why (ENOSPC, EACCES, …).
The cost is one copy of the encoded file in RAM, at most the size of the raw PCM
(10 min of 96 kHz stereo 32-bit float ≈ 440 MiB).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from distill.atomic import atomic_write
from distill.audio.tags import embed_tags
from distill.errors import UserError

FORMATS = ("wav", "flac", "mp3", "ogg")
SAMPLE_RATES = (44_100, 48_000, 96_000)  # Hz
BIT_DEPTHS = ("16", "24", "32f")  # "32f" = 32-bit float
MP3_RATES = (44_100, 48_000)  # Hz: MPEG-1 Layer III stops at 48 kHz

_PCM_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
_LOSSY = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS")}  # (container, subtype)
# libsndfile compression level, 0 = best … 1 = smallest, and bitrate mode. MP3: VBR at level 0
# (≈ LAME -V0); OGG: Vorbis quality 1 − level = 0.8. Both measured ≈ 270–300 kbit/s on stereo
# noise, against ≈ 160 kbit/s with libsndfile's defaults.
_COMPRESSION = {"mp3": (0.0, "VARIABLE"), "ogg": (0.2, None)}

LOUDNESS_BLOCK_S = 0.4  # s: BS.1770 gating block; integrated loudness needs at least one
# Linear full scale: one 16-bit step. The peak ceiling is lowered by this much so that rounding to
# PCM can never lift the read-back peak above it (costs < 0.0003 dB at −1 dBFS).
_QUANTIZATION_HEADROOM = 2.0**-15
_LOSSY_PEAK_TRIES = 3  # re-encodes at most, to bring a lossy file's decoded peak under the ceiling


@dataclass(frozen=True)
class ExportOptions:
    format: str = "wav"  # wav | flac | mp3 | ogg
    sample_rate: int = 48_000  # Hz: 44100 | 48000 | 96000
    bit_depth: str = "24"  # "16" | "24" | "32f"; WAV all three, FLAC 16/24, MP3/OGG ignore it
    lufs: float | None = None  # integrated loudness target (LUFS); None = keep the level
    peak_dbfs: float = -1.0  # sample-peak ceiling (dBFS) after all gain: never clipped

    def validate(self) -> None:
        """Raise UserError (one line naming the valid choices) for an option that can't be met."""
        if self.format not in FORMATS:
            raise UserError(f"unknown export format {self.format!r}: choose {_choices(FORMATS)}")
        if self.sample_rate not in SAMPLE_RATES:
            raise UserError(
                f"unsupported sample rate {self.sample_rate} Hz: choose {_choices(SAMPLE_RATES)}"
            )
        if self.format in ("wav", "flac") and self.bit_depth not in BIT_DEPTHS:
            raise UserError(
                f"unsupported bit depth {self.bit_depth!r}: choose {_choices(BIT_DEPTHS)}"
            )
        if self.format == "flac" and self.bit_depth == "32f":
            raise UserError("FLAC has no 32-bit float: choose bit depth 16 or 24, or WAV for 32f")
        if self.format == "mp3" and self.sample_rate not in MP3_RATES:
            raise UserError(
                f"MP3 cannot store {self.sample_rate} Hz: choose {_choices(MP3_RATES)} Hz, "
                "or wav/flac/ogg for 96000 Hz"
            )
        if self.lufs is not None and not (-70.0 <= self.lufs <= 0.0):
            raise UserError(
                f"loudness target {self.lufs} LUFS out of range: choose -70 to 0 (e.g. -14)"
            )
        if not (-60.0 <= self.peak_dbfs <= 0.0):
            raise UserError(
                f"peak ceiling {self.peak_dbfs} dBFS out of range: choose -60 to 0 (e.g. -1)"
            )

    @property
    def suffix(self) -> str:
        return f".{self.format}"

    @property
    def soundfile_format(self) -> tuple[str, str]:
        """(container, subtype) as soundfile names them."""
        if self.format in _LOSSY:
            return _LOSSY[self.format]
        return self.format.upper(), _PCM_SUBTYPES[self.bit_depth]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar_path: Path | None
    format: str
    sample_rate: int  # Hz
    bit_depth: str | None  # None for mp3/ogg (the codec decides)
    frames: int  # samples per channel, at sample_rate
    channels: int
    peak_dbfs: float  # sample peak after processing (before lossy encoding); -inf for silence
    # integrated, after processing; None without a target (not measured), under 400 ms, silent
    loudness_lufs: float | None
    gain_db: float  # total gain applied: loudness target + peak ceiling
    peak_limit_db: float  # the part of gain_db the peak ceiling took off (≤ 0; 0 = not applied)

    @property
    def peak_limited(self) -> bool:
        return self.peak_limit_db < 0.0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def write_audio(
    path: Path,
    audio: np.ndarray,
    source_rate: int,
    options: ExportOptions,
    *,
    tags: dict[str, str] | None = None,
    sidecar: dict | None = None,
) -> ExportResult:
    """Write `audio` (float, (T,) mono or (C, T) with C = 1 or 2, at `source_rate` Hz) to `path`.

    Resamples to options.sample_rate (soxr HQ), applies the loudness target and the peak ceiling,
    encodes, embeds `tags` (keys: see distill.audio.tags.TAG_KEYS) and, if `sidecar` is given,
    writes it with an added "export" section to `path` with a .json suffix. Creates the folder.
    Raises UserError (one line) if the disk refuses the write; nothing half-written is left, and
    neither are the empty placeholders a claimed name (generation.render.take_path) left there.
    """
    try:
        return _write_audio(path, audio, source_rate, options, tags=tags, sidecar=sidecar)
    except BaseException:
        for placeholder in (Path(path), Path(path).with_suffix(".json")):
            with contextlib.suppress(OSError):
                if placeholder.stat().st_size == 0:
                    placeholder.unlink()
        raise


def _write_audio(
    path: Path,
    audio: np.ndarray,
    source_rate: int,
    options: ExportOptions,
    *,
    tags: dict[str, str] | None,
    sidecar: dict | None,
) -> ExportResult:
    options.validate()
    path = Path(path)
    x = _as_frames(audio)  # (T, C) float32
    if source_rate != options.sample_rate:
        x = soxr.resample(x, source_rate, options.sample_rate, quality="HQ")
    x, gain_db, limit_db = _level(x, options)
    encoded = _encode(x, options)
    if options.format in _LOSSY:
        x, encoded, peak, extra_db = _fit_decoded_peak(x, encoded, options)
        gain_db, limit_db = gain_db + extra_db, limit_db + extra_db
    else:
        peak = float(np.max(np.abs(x)))  # within half a step of what is stored
    if tags is not None:
        embed_tags(encoded, options.format, tags)
    result = ExportResult(
        path=path,
        sidecar_path=path.with_suffix(".json") if sidecar is not None else None,
        format=options.format,
        sample_rate=options.sample_rate,
        bit_depth=None if options.format in _LOSSY else options.bit_depth,
        frames=len(x),
        channels=x.shape[1],
        peak_dbfs=20.0 * math.log10(peak) if peak > 0 else -math.inf,
        # measured only with a target: pyloudnorm brings scipy.signal (~0.6 s of start-up)
        loudness_lufs=measure_loudness(x, options.sample_rate)
        if options.lufs is not None
        else None,
        gain_db=gain_db,
        peak_limit_db=limit_db,
    )
    # Serialised before anything touches the disk: a bad sidecar is a bug, not a half-export.
    sidecar_text = None if sidecar is None else _sidecar_json(sidecar, result, options, source_rate)

    _write_or_explain(path, encoded.getbuffer())
    if result.sidecar_path is not None and sidecar_text is not None:
        try:
            _write_or_explain(result.sidecar_path, sidecar_text.encode())
        except UserError:
            # A take without its sidecar cannot be regenerated: all or nothing.
            with contextlib.suppress(OSError):
                path.unlink()
            raise
    return result


def measure_loudness(x: np.ndarray, rate: int, *, loop_short: bool = False) -> float | None:
    """Integrated loudness (LUFS, BS.1770 via pyloudnorm) of (T, C) audio at `rate` Hz.

    None for silence (every block under the −70 LUFS gate) and, unless `loop_short`, for audio
    shorter than one 400 ms block. With `loop_short` a short sound is measured looped to one block:
    repeating it keeps its mean square, where zero-padding would dilute it.
    """
    import pyloudnorm  # here, not at the top: it brings scipy.signal (~0.6 s of start-up)

    if len(x) == 0:
        return None
    block = math.ceil(LOUDNESS_BLOCK_S * rate)  # samples
    if len(x) < block:
        if not loop_short:
            return None
        x = np.tile(x, (math.ceil(block / len(x)), 1))
    # float32 in: pyloudnorm copies it anyway, and it reads within 1e-6 LU of float64.
    with np.errstate(divide="ignore"):  # log10(0) for silence: -inf, handled below
        lufs = float(pyloudnorm.Meter(rate).integrated_loudness(x))
    return lufs if math.isfinite(lufs) else None


def _as_frames(audio: np.ndarray) -> np.ndarray:
    """(T,) or (C, T) → C-contiguous (T, C) float32; a malformed array is a caller bug."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 2 and x.shape[0] in (1, 2):
        x = x.T
    else:
        raise ValueError(f"audio must be (T,) or (C, T) with C = 1 or 2, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("audio is empty: nothing to export")
    if not np.isfinite(x).all():
        raise ValueError("audio holds NaN or Inf samples: a bug upstream of export")
    return np.ascontiguousarray(x)


def _level(x: np.ndarray, options: ExportOptions) -> tuple[np.ndarray, float, float]:
    """Apply the loudness target, then the peak ceiling, as one plain gain (no limiter, no clip).

    Returns (audio, total gain dB, peak-ceiling part dB ≤ 0). Unmeasurable loudness (silence)
    leaves the level alone rather than asking for infinite gain.
    """
    loudness_db = 0.0
    if options.lufs is not None:
        measured = measure_loudness(x, options.sample_rate, loop_short=True)
        if measured is not None:
            loudness_db = options.lufs - measured
    peak = float(np.max(np.abs(x))) * 10.0 ** (loudness_db / 20.0)
    ceiling = _ceiling(options)
    limit_db = 20.0 * math.log10(ceiling / peak) if peak > ceiling else 0.0
    gain_db = loudness_db + limit_db
    if gain_db != 0.0:
        x = x * np.float32(10.0 ** (gain_db / 20.0))
    return x, gain_db, limit_db


def _ceiling(options: ExportOptions) -> float:
    """The peak ceiling as a linear amplitude (full scale = 1)."""
    return 10.0 ** (options.peak_dbfs / 20.0) - _QUANTIZATION_HEADROOM


def _encode(x: np.ndarray, options: ExportOptions) -> io.BytesIO:
    container, subtype = options.soundfile_format
    level, mode = _COMPRESSION.get(options.format, (None, None))
    if subtype in ("PCM_16", "PCM_24"):
        x = _quantize(x, subtype)
    buffer = io.BytesIO()
    sf.write(
        buffer,
        x,
        options.sample_rate,
        format=container,
        subtype=subtype,
        compression_level=level,
        bitrate_mode=mode,
    )
    return buffer


def _fit_decoded_peak(
    x: np.ndarray, encoded: io.BytesIO, options: ExportOptions
) -> tuple[np.ndarray, io.BytesIO, float, float]:
    """Lower the gain until the *decoded* lossy file stays under the ceiling.

    A lossy codec does not keep the waveform, so its decoded peak can exceed the one it was given
    (MP3 by up to ≈ 0.8 dB on a 440 Hz + 3 kHz mix at −1 dBFS). The overshoot scales with the
    level, so one re-encode at (ceiling / decoded peak) nearly always lands under.
    Returns (audio, encoded file, its decoded peak (linear), extra gain dB ≤ 0).
    """
    ceiling, extra_db = _ceiling(options), 0.0
    peak = _decoded_peak(encoded)
    for _ in range(_LOSSY_PEAK_TRIES):
        if peak <= ceiling:
            break
        step_db = 20.0 * math.log10(ceiling / peak) - 0.01  # dB; a hair more, to not loop
        x = x * np.float32(10.0 ** (step_db / 20.0))
        extra_db += step_db
        encoded = _encode(x, options)
        peak = _decoded_peak(encoded)
    return x, encoded, peak, extra_db


def _decoded_peak(encoded: io.BytesIO) -> float:
    """Sample peak of the encoded file as a decoder reads it, block by block (bounded memory)."""
    encoded.seek(0)
    peak = 0.0
    with sf.SoundFile(encoded) as f:
        for block in f.blocks(blocksize=1 << 16, dtype="float32"):
            peak = max(peak, float(np.max(np.abs(block))) if len(block) else 0.0)
    encoded.seek(0)
    return peak


def _quantize(x: np.ndarray, subtype: str) -> np.ndarray:
    """Float (T, C) → integers rounded to the nearest step, for libsndfile to store unchanged.

    libsndfile's own float → WAV PCM conversion truncates (≈ −0.5 LSB offset, 3 dB more noise)
    while its FLAC path rounds; rounding here makes both exact and identical. No dither: the same
    take must give the same bytes. 16-bit goes as int16; 24-bit as int32 with the low 8 bits
    zero, which libsndfile shifts out losslessly. Full scale is 2^15 / 2^23, as soundfile reads it.
    """
    bits = 16 if subtype == "PCM_16" else 24
    steps = np.rint(x * np.float32(2 ** (bits - 1)))
    steps = np.clip(steps, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if bits == 16:
        return steps.astype(np.int16)
    return steps.astype(np.int32) << 8


def _sidecar_json(
    sidecar: dict, result: ExportResult, options: ExportOptions, source_rate: int
) -> str:
    export = {
        "file": result.path.name,
        "options": asdict(options),
        "source_rate": source_rate,  # Hz, before resampling
        "resampler": "soxr HQ" if source_rate != options.sample_rate else None,
        "frames": result.frames,
        "channels": result.channels,
        "gain_db": result.gain_db,
        "peak_limit_db": result.peak_limit_db,
        "peak_dbfs": result.peak_dbfs if math.isfinite(result.peak_dbfs) else None,
        "loudness_lufs": result.loudness_lufs,
        "libsndfile": sf.__libsndfile_version__,
    }
    return json.dumps({**sidecar, "export": export}, indent=2, ensure_ascii=False) + "\n"


def _write_or_explain(path: Path, data: bytes | memoryview) -> None:
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as err:
        raise UserError(f"cannot write {path}: {_reason(err)}") from err


_REASONS = {
    # EDQUOT first: where a platform lacks it, ENOSPC's entry below replaces the stand-in.
    getattr(errno, "EDQUOT", errno.ENOSPC): "disk quota exceeded — free some space or choose "
    "another output folder",
    errno.ENOSPC: "disk full — free some space or choose another output folder",
    errno.EACCES: "permission denied — choose a folder you can write to",
    errno.EPERM: "permission denied — choose a folder you can write to",
    errno.EROFS: "read-only file system — choose another output folder",
    errno.ENOTDIR: "part of the folder path is a file — choose another output folder",
    errno.EEXIST: "part of the folder path is a file — choose another output folder",
    errno.EISDIR: "a folder of that name is in the way — choose another file name",
    errno.ENAMETOOLONG: "name too long — choose a shorter file or folder name",
}


def reason_for(err: OSError) -> str:
    """What a refused write means for the user, and what to do: "disk full — free some space …"."""
    return _reason(err)


def _reason(err: OSError) -> str:
    known = _REASONS.get(err.errno) if err.errno is not None else None
    return known or f"{err.strerror or err} — check the output folder or choose another"


def _choices(values: tuple) -> str:
    *rest, last = [str(v) for v in values]
    return f"{', '.join(rest)} or {last}"
