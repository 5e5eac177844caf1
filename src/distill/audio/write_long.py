"""Export audio that arrives block by block, in bounded memory: what `write_audio` does to a whole
array (loudness target, peak ceiling, encoding, tags, sidecar), for any length.

The gain depends on the whole signal (its peak; its loudness for a target), so the blocks are
spooled first, as float32, to a hidden temp file beside the target (4 bytes a sample: 690 MB for
an hour at 48 kHz), measuring peak and loudness on the way. Then the file is encoded from the
spool a block at a time into a second temp file, tagged there, fsynced and renamed over the
target; the sidecar follows, as write_audio writes it. Short signals (`in_memory_seconds`) are
read back and handed to write_audio itself, so they come out byte for byte as before.

Loudness is ITU BS.1770 as pyloudnorm measures it, computed while spooling: the K-weighting
filters (pyloudnorm's own coefficients) keep their state from block to block, and the mean
squares of 100 ms steps are kept (36 000 numbers an hour) to form the gated 400 ms blocks.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

from distill.audio.write import (
    ExportOptions,
    ExportResult,
    _ceiling,
    _level_gain,
    _lower_under_ceiling,
    _result,
    _sidecar_json,
    _soundfile_settings,
    _stored,
    _write_sidecar,
    reason_for,
    write_audio,
)
from distill.errors import UserError

BLOCK = 1 << 18  # samples per read and encode step (1 MB of float32)
IN_MEMORY_SECONDS = 120.0  # shorter signals go through write_audio whole


def write_audio_blocks(
    path: Path,
    blocks: Iterable[np.ndarray],
    rate: int,
    options: ExportOptions,
    *,
    tags: dict[str, str] | None = None,
    sidecar: dict | None = None,
    in_memory_seconds: float = IN_MEMORY_SECONDS,
) -> ExportResult:
    """Write mono float32 `blocks` at `rate` Hz (= options.sample_rate) to `path`, as write_audio
    writes an array; memory holds a block or two, whatever the length."""
    options.validate()
    if rate != options.sample_rate:
        raise ValueError(
            f"blocks at {rate} Hz for a {options.sample_rate} Hz export: resample first"
        )
    path = Path(path)
    spool = _temp_beside(path)
    try:
        peak, frames, loudness = _spool(blocks, spool, rate, measure=options.lufs is not None)
        if frames == 0:
            raise ValueError("audio is empty: nothing to export")
        if frames <= in_memory_seconds * rate:
            audio = np.fromfile(spool, dtype=np.float32)
            spool.unlink()
            return write_audio(path, audio, rate, options, tags=tags, sidecar=sidecar)
        return _write_from_spool(path, spool, frames, peak, loudness, options, tags, sidecar)
    except OSError as err:
        raise UserError(f"cannot write {path}: {reason_for(err)}") from err
    finally:
        with contextlib.suppress(OSError):
            spool.unlink()


def _spool(
    blocks: Iterable[np.ndarray], spool: Path, rate: int, *, measure: bool
) -> tuple[float, int, float | None]:
    """Write the blocks to `spool` as raw float32; returns (peak, frames, loudness or None)."""
    meter = _Loudness(rate) if measure else None
    peak, frames = 0.0, 0
    with spool.open("wb") as f:
        for block in blocks:
            x = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
            if not np.isfinite(x).all():
                raise ValueError("audio holds NaN or Inf samples: a bug upstream of export")
            if len(x):
                peak = max(peak, float(np.max(np.abs(x))))
                frames += len(x)
                f.write(x.tobytes())
                if meter is not None:
                    meter.add(x)
    return peak, frames, None if meter is None else meter.integrated()


def _write_from_spool(
    path: Path,
    spool: Path,
    frames: int,
    peak: float,
    loudness: float | None,
    options: ExportOptions,
    tags: dict[str, str] | None,
    sidecar: dict | None,
) -> ExportResult:
    gain_db, limit_db = _level_gain(peak, loudness, options)  # the gain write_audio gives
    target = _temp_beside(path)
    try:
        _encode(spool, target, options, gain_db)
        stored_peak = peak * 10.0 ** (gain_db / 20.0)
        if options.export_format.lossy:  # as write_audio: the decoded peak must stay under it too

            def lower(step_db: float) -> float:
                nonlocal gain_db, limit_db
                gain_db, limit_db = gain_db + step_db, limit_db + step_db
                _encode(spool, target, options, gain_db)
                return _decoded_peak(target)

            stored_peak = _lower_under_ceiling(_decoded_peak(target), _ceiling(options), lower)
        if tags is not None:
            with target.open("r+b") as f:
                options.export_format.tag(f, tags)
        result = _result(
            path,
            options,
            sidecar=sidecar is not None,
            frames=frames,
            channels=1,
            peak=stored_peak,
            loudness_lufs=None if loudness is None or options.lufs is None else loudness + gain_db,
            gain_db=gain_db,
            limit_db=limit_db,
        )
        text = (
            None
            if sidecar is None
            else _sidecar_json(sidecar, result, options, options.sample_rate)
        )
        with target.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(target, path)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    if result.sidecar_path is not None and text is not None:
        _write_sidecar(path, result.sidecar_path, text)
    return result


def _encode(spool: Path, target: Path, options: ExportOptions, gain_db: float) -> None:
    """Encode the spooled samples × the gain into `target` (replaced), a block at a time."""
    settings = _soundfile_settings(options)
    gain = np.float32(10.0 ** (gain_db / 20.0))
    try:
        with (
            spool.open("rb") as source,
            sf.SoundFile(os.fsencode(target), "w", options.sample_rate, 1, **settings) as out,
        ):
            while chunk := source.read(4 * BLOCK):
                x = np.frombuffer(chunk, dtype=np.float32)[:, None] * gain
                out.write(_stored(x, settings["subtype"]))
    except (RuntimeError, sf.LibsndfileError) as err:
        # libsndfile says "System error" or "Unspecified internal error" for a refused write;
        # the free space says whether that was a full disk.
        if shutil.disk_usage(target.parent).free < 4 * BLOCK:
            raise OSError(28, os.strerror(28)) from err
        raise UserError(f"cannot encode {target.name} ({err})") from err


def _decoded_peak(path: Path) -> float:
    peak = 0.0
    with sf.SoundFile(os.fsencode(path)) as f:
        for block in f.blocks(blocksize=BLOCK, dtype="float32"):
            peak = max(peak, float(np.max(np.abs(block))) if len(block) else 0.0)
    return peak


def _temp_beside(path: Path) -> Path:
    """A hidden temp file beside `path`, named as atomic_write names them (so a killed export's
    is removed by the next write into the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    return Path(name)


class _Loudness:
    """Integrated loudness (BS.1770, gated) of a mono signal given in blocks, as pyloudnorm."""

    def __init__(self, rate: int) -> None:
        import pyloudnorm
        from scipy.signal import lfilter_zi

        self.rate = rate
        meter = pyloudnorm.Meter(rate)
        # pyloudnorm's K-weighting stages (its private attribute: the same coefficients exactly)
        self.stages = [
            (f.b, f.a, f.passband_gain, lfilter_zi(f.b, f.a) * 0.0) for f in meter._filters.values()
        ]
        self.step = round(0.1 * rate)  # 100 ms: a quarter of the 400 ms block (75 % overlap)
        self.sums: list[float] = []  # Σ x² of each complete step
        self.partial, self.filled = 0.0, 0

    def add(self, x: np.ndarray) -> None:
        from scipy.signal import lfilter

        y = x.astype(np.float64)
        stages = []
        for b, a, gain, zi in self.stages:
            filtered, zi = lfilter(b, a, y, zi=zi)
            y = gain * filtered
            stages.append((b, a, gain, zi))
        self.stages = stages
        squares = y * y
        at = 0
        while at < len(squares):
            take = min(self.step - self.filled, len(squares) - at)
            self.partial += float(squares[at : at + take].sum())
            self.filled += take
            at += take
            if self.filled == self.step:
                self.sums.append(self.partial)
                self.partial, self.filled = 0.0, 0

    def integrated(self) -> float | None:
        steps = np.array(
            [*self.sums, self.partial]
        )  # the last, partial step counts as far as it goes
        total = len(self.sums) * self.step + self.filled
        seconds = total / self.rate
        if seconds < 0.4:
            return None
        n_blocks = int(np.round((seconds - 0.4) / 0.1)) + 1
        z = np.array([steps[j : j + 4].sum() for j in range(n_blocks)]) / (0.4 * self.rate)
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10.0 * np.log10(z)
        gated = z[block_lufs >= -70.0]
        if not len(gated):
            return None
        relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
        kept = z[(block_lufs > relative) & (block_lufs > -70.0)]
        if not len(kept):
            return None
        lufs = -0.691 + 10.0 * np.log10(kept.mean())
        return float(lufs) if math.isfinite(lufs) else None
