"""Write a take to disk: resample, level (loudness target, peak ceiling), encode, tag, sidecar.

The file is encoded and tagged in memory, then written with `atomic_write` (temp file beside the
target, fsync, rename), so a full disk, a read-only folder or Ctrl-C leaves the old file or the new
one, never half of one. Encoding happens in memory because libsndfile reports a failed disk write
without its cause, while Python's own write raises an OSError that says why (ENOSPC, EACCES, …).
The cost is one copy of the encoded file in RAM, at most the size of the raw PCM
(10 min of 96 kHz stereo 32-bit float ≈ 440 MiB).

What a format stores (bit depths, rates), how it is encoded and tagged, and whether its peak is
checked on the decoded file all come from its record in distill.audio.formats.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from distill.atomic import atomic_write
from distill.audio.formats import (
    BIT_DEPTHS,
    DEPTH_WORDS,
    FORMATS,
    SAMPLE_RATES,
    ExportFormat,
    choices,
    formats_with,
)
from distill.errors import UserError

LOUDNESS_BLOCK_S = 0.4  # s: BS.1770 gating block; integrated loudness needs at least one
# Linear full scale: one 16-bit step. The peak ceiling is lowered by this much so that rounding to
# PCM can never lift the read-back peak above it (costs < 0.0003 dB at −1 dBFS).
_QUANTIZATION_HEADROOM = 2.0**-15
_LOSSY_PEAK_TRIES = 3  # re-encodes at most, to bring a lossy file's decoded peak under the ceiling


@dataclass(frozen=True)
class ExportOptions:
    format: str = "wav"  # a name in formats.FORMATS: wav | flac | mp3 | ogg
    sample_rate: int = 48_000  # Hz: one of formats.SAMPLE_RATES that the format stores
    bit_depth: str = "24"  # "16" | "24" | "32f", as the format stores; lossy formats ignore it
    lufs: float | None = None  # integrated loudness target (LUFS); None = keep the level
    peak_dbfs: float = -1.0  # sample-peak ceiling (dBFS) after all gain: never clipped

    def validate(self) -> None:
        """Raise UserError (one line naming the valid choices) for an option that can't be met."""
        if self.format not in FORMATS:
            raise UserError(f"unknown export format {self.format!r}: choose {choices(FORMATS)}")
        if self.sample_rate not in SAMPLE_RATES:
            raise UserError(
                f"unsupported sample rate {self.sample_rate} Hz: choose {choices(SAMPLE_RATES)}"
            )
        fmt, depth, rate = self.export_format, self.bit_depth, self.sample_rate
        if fmt.bit_depths and depth not in BIT_DEPTHS:
            raise UserError(f"unsupported bit depth {depth!r}: choose {choices(BIT_DEPTHS)}")
        if fmt.bit_depths and depth not in fmt.bit_depths:
            holders = "/".join(name.upper() for name in formats_with(bit_depth=depth))
            raise UserError(
                f"{fmt.name.upper()} has no {DEPTH_WORDS[depth]}: choose bit depth "
                f"{choices(fmt.bit_depths)}, or {holders} for {depth}"
            )
        if rate not in fmt.sample_rates:
            raise UserError(
                f"{fmt.name.upper()} cannot store {rate} Hz: choose {choices(fmt.sample_rates)} "
                f"Hz, or {'/'.join(formats_with(sample_rate=rate))} for {rate} Hz"
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
    def export_format(self) -> ExportFormat:
        """The format's record in formats.FORMATS (KeyError for an unknown one: validate first)."""
        return FORMATS[self.format]

    @property
    def suffix(self) -> str:
        return f".{self.format}"  # as ExportFormat.suffix, and defined before validate()

    @property
    def soundfile_format(self) -> tuple[str, str]:
        """(container, subtype) as soundfile names them."""
        return self.export_format.container, self.export_format.subtype(self.bit_depth)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar_path: Path | None
    format: str
    sample_rate: int  # Hz
    bit_depth: str | None  # None where the codec decides (mp3, ogg)
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
    if options.export_format.lossy:
        x, encoded, peak, extra_db = _fit_decoded_peak(x, encoded, options)
        gain_db, limit_db = gain_db + extra_db, limit_db + extra_db
    else:
        peak = float(np.max(np.abs(x)))  # within half a step of what is stored
    if tags is not None:
        options.export_format.tag(encoded, tags)
    result = _result(
        path,
        options,
        sidecar=sidecar is not None,
        frames=len(x),
        channels=x.shape[1],
        peak=peak,
        # measured only with a target: pyloudnorm brings scipy.signal (~0.6 s of start-up)
        loudness_lufs=measure_loudness(x, options.sample_rate)
        if options.lufs is not None
        else None,
        gain_db=gain_db,
        limit_db=limit_db,
    )
    # Serialised before anything touches the disk: a bad sidecar is a bug, not a half-export.
    sidecar_text = None if sidecar is None else _sidecar_json(sidecar, result, options, source_rate)

    _write_or_explain(path, encoded.getbuffer())
    if result.sidecar_path is not None and sidecar_text is not None:
        _write_sidecar(path, result.sidecar_path, sidecar_text)
    return result


def _result(
    path: Path,
    options: ExportOptions,
    *,
    sidecar: bool,
    frames: int,
    channels: int,
    peak: float,
    loudness_lufs: float | None,
    gain_db: float,
    limit_db: float,
) -> ExportResult:
    """The ExportResult of a file at `path` whose stored sample peak is `peak` (linear)."""
    return ExportResult(
        path=path,
        sidecar_path=path.with_suffix(".json") if sidecar else None,
        format=options.format,
        sample_rate=options.sample_rate,
        bit_depth=options.bit_depth if options.export_format.bit_depths else None,
        frames=frames,
        channels=channels,
        peak_dbfs=20.0 * math.log10(peak) if peak > 0 else -math.inf,
        loudness_lufs=loudness_lufs,
        gain_db=gain_db,
        peak_limit_db=limit_db,
    )


def _write_sidecar(take: Path, sidecar: Path, text: str) -> None:
    """Write the sidecar of the written `take`; a take without its sidecar cannot be
    regenerated, so when the sidecar fails the take goes too: all or nothing."""
    try:
        _write_or_explain(sidecar, text.encode())
    except UserError:
        with contextlib.suppress(OSError):
            take.unlink()
        raise


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

    Returns (audio, total gain dB, peak-ceiling part dB ≤ 0).
    """
    measured = None
    if options.lufs is not None:
        measured = measure_loudness(x, options.sample_rate, loop_short=True)
    gain_db, limit_db = _level_gain(float(np.max(np.abs(x))), measured, options)
    if gain_db != 0.0:
        x = x * np.float32(10.0 ** (gain_db / 20.0))
    return x, gain_db, limit_db


def _level_gain(peak: float, loudness: float | None, options: ExportOptions) -> tuple[float, float]:
    """(total gain dB, its peak-ceiling part dB ≤ 0) for audio of sample `peak` (linear) and
    integrated `loudness` (LUFS; None = not measured or unmeasurable): the loudness target, then
    the peak ceiling. Unmeasurable loudness (silence) leaves the level alone rather than asking
    for infinite gain."""
    loudness_db = 0.0
    if options.lufs is not None and loudness is not None:
        loudness_db = options.lufs - loudness
    raised = peak * 10.0 ** (loudness_db / 20.0)
    ceiling = _ceiling(options)
    limit_db = 20.0 * math.log10(ceiling / raised) if raised > ceiling else 0.0
    return loudness_db + limit_db, limit_db


def _ceiling(options: ExportOptions) -> float:
    """The peak ceiling as a linear amplitude (full scale = 1)."""
    return 10.0 ** (options.peak_dbfs / 20.0) - _QUANTIZATION_HEADROOM


def _encode(x: np.ndarray, options: ExportOptions) -> io.BytesIO:
    buffer = io.BytesIO()
    settings = _soundfile_settings(options)
    sf.write(buffer, _stored(x, settings["subtype"]), options.sample_rate, **settings)
    return buffer


def _soundfile_settings(options: ExportOptions) -> dict:
    """The format's encoder settings, as soundfile's write and SoundFile take them."""
    fmt = options.export_format
    return {
        "format": fmt.container,
        "subtype": fmt.subtype(options.bit_depth),
        "compression_level": fmt.compression_level,
        "bitrate_mode": fmt.bitrate_mode,
    }


def _stored(x: np.ndarray, subtype: str) -> np.ndarray:
    """What libsndfile is handed for `subtype`: integers for 16/24-bit PCM (see _quantize)."""
    return _quantize(x, subtype) if subtype in ("PCM_16", "PCM_24") else x


def _fit_decoded_peak(
    x: np.ndarray, encoded: io.BytesIO, options: ExportOptions
) -> tuple[np.ndarray, io.BytesIO, float, float]:
    """Lower the gain until the *decoded* lossy file stays under the ceiling.

    A lossy codec does not keep the waveform, so its decoded peak can exceed the one it was given
    (MP3 by up to ≈ 0.8 dB on a 440 Hz + 3 kHz mix at −1 dBFS). The overshoot scales with the
    level, so one re-encode at (ceiling / decoded peak) nearly always lands under.
    Returns (audio, encoded file, its decoded peak (linear), extra gain dB ≤ 0).
    """
    extra_db = 0.0

    def lower(step_db: float) -> float:
        nonlocal x, encoded, extra_db
        x = x * np.float32(10.0 ** (step_db / 20.0))
        extra_db += step_db
        encoded = _encode(x, options)
        return _decoded_peak(encoded)

    peak = _lower_under_ceiling(_decoded_peak(encoded), _ceiling(options), lower)
    return x, encoded, peak, extra_db


def _lower_under_ceiling(peak: float, ceiling: float, lower: Callable[[float], float]) -> float:
    """Call `lower(step dB < 0)` (re-encode that much quieter; returns the new decoded peak) until
    the decoded `peak` is under `ceiling`, at most _LOSSY_PEAK_TRIES times; returns the peak."""
    for _ in range(_LOSSY_PEAK_TRIES):
        if peak <= ceiling:
            break
        peak = lower(20.0 * math.log10(ceiling / peak) - 0.01)  # dB; a hair more, to not loop
    return peak


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
