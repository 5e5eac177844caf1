"""Generation history: every take's audio, a waveform thumbnail and its parameters, kept in the
home (`<home>/history/<id>/`) and indexed in the library database, so any take can be found,
compared A/B with another and rendered again.

An entry exists only with its files: `record` builds them in a hidden staging folder, renames
the folder into place and inserts the row last, removing its files if anything fails. A process
killed between the rename and the insert leaves a folder no row names; `list` removes such
folders once they are an hour old (a younger one may be a `record` in progress), and drops rows
whose audio has gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from distill.audio.thumbnail import WaveformEnvelope, envelope_of, write_waveform_png
from distill.errors import UserError
from distill.home import resolve_home, safe_name
from distill.library.store import DB_NAME, ID_BYTES, MIN_PREFIX, Library, connect, write

HISTORY_DIR = "history"
THUMBNAIL = "waveform.png"
STALE_SECONDS = 3600  # an unindexed folder this old is a killed `record`, not one in progress
AB_RATE = 48_000  # Hz: the A/B file's sample rate
AB_FADE_SECONDS = 0.01  # raised-cosine fade at each edge of A and B: no click at the joins


@dataclass(frozen=True)
class HistoryEntry:
    id: str
    created: str  # ISO 8601 UTC
    model_id: str | None  # None: a model outside the library (or one deleted since)
    model_name: str
    seed: int | None
    duration: float | None  # seconds
    sidecar: dict  # the take's sidecar: every parameter needed to render it again
    audio: Path  # the kept copy (absolute)
    thumbnail: Path  # waveform PNG (absolute)
    source: str | None  # where the take was first written

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "created": self.created,
            "model": {"id": self.model_id, "name": self.model_name},
            "seed": self.seed,
            "duration": self.duration,
            "audio": str(self.audio),
            "thumbnail": str(self.thumbnail),
            "source": self.source,
            "sidecar": self.sidecar,
        }

    @classmethod
    def from_row(cls, row: sqlite3.Row, home: Path) -> HistoryEntry:
        return cls(
            id=row["id"],
            created=row["created"],
            model_id=row["model_id"],
            model_name=row["model_name"],
            seed=row["seed"],
            duration=row["duration"],
            sidecar=json.loads(row["params"]),
            audio=home / row["audio"],
            thumbnail=home / row["thumbnail"],
            source=row["source"],
        )


class History:
    """The generation history of one Distill home. Holds no connection: one per call."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = resolve_home(home)
        self.db = self.home / DB_NAME
        self.folder = self.home / HISTORY_DIR

    def record(
        self,
        sidecar: dict,
        audio_file: Path,
        *,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
    ) -> HistoryEntry:
        """Keep a written take: a copy (or hard link) of `audio_file`, a waveform thumbnail (of
        `audio`, (T,) or (C, T), if given, else of the file) and the sidecar. All or nothing."""
        source = Path(audio_file).resolve()
        if not source.is_file():
            raise UserError(f"cannot keep {source} in the history: the file is not there")
        entry_id = secrets.token_hex(ID_BYTES)
        staging = self.folder / f".incoming-{entry_id}"
        final = self.folder / entry_id
        name = safe_name(source.stem, fallback="take") + source.suffix.lower()
        try:
            staging.mkdir(parents=True)
            _keep(source, staging / name)
            write_waveform_png(_envelope(staging / name, audio), staging / THUMBNAIL)
            os.rename(staging, final)  # the folder appears whole or not at all
            params = sidecar.get("params") or {}
            model = sidecar.get("model") or {}
            duration = _seconds(final / name)  # what was rendered (a one-shot ends early)
            if duration is None and audio is not None and sample_rate:
                duration = np.shape(audio)[-1] / sample_rate
            if duration is None:
                duration = params.get("duration")
            row = {
                "id": entry_id,
                "created": _now(),
                "model_id": model.get("id"),
                "model_name": str(model.get("name") or source.stem),
                "seed": params.get("seed"),
                "duration": duration,
                "params": json.dumps(sidecar, ensure_ascii=False),
                "audio": f"{HISTORY_DIR}/{entry_id}/{name}",
                "thumbnail": f"{HISTORY_DIR}/{entry_id}/{THUMBNAIL}",
                "source": str(source),
            }
            with connect(self.db) as conn, write(conn):
                known = conn.execute("SELECT 1 FROM models WHERE id = ?", (row["model_id"],))
                if known.fetchone() is None:  # outside the library, or deleted meanwhile
                    row["model_id"] = None
                conn.execute(
                    f"INSERT INTO history ({', '.join(row)}) "
                    f"VALUES ({', '.join(':' + k for k in row)})",
                    row,
                )
                return self._get(conn, entry_id)
        except BaseException as err:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            if isinstance(err, OSError):
                raise UserError(
                    f"cannot keep {source.name} in the history ({err.strerror or err}): free "
                    f"some space in {self.folder}, or generate with --no-history"
                ) from err
            raise

    def list(self, model_ref: str | None = None, limit: int | None = 50) -> list[HistoryEntry]:
        """The newest entries first (of one library model if given); at most `limit`."""
        where, args = "", []
        if model_ref is not None:
            where, args = " WHERE model_id = ?", [Library(self.home).resolve(model_ref).id]
        with connect(self.db) as conn:
            self._sweep(conn)
            rows = conn.execute(
                f"SELECT * FROM history{where} ORDER BY created DESC, rowid DESC LIMIT ?",
                [*args, -1 if limit is None else limit],
            ).fetchall()
        return [HistoryEntry.from_row(row, self.home) for row in rows]

    def get(self, id_or_prefix: str | HistoryEntry) -> HistoryEntry:
        """An entry by id or id prefix (≥ 4 characters); an entry passes through."""
        if isinstance(id_or_prefix, HistoryEntry):
            return id_or_prefix
        text = str(id_or_prefix).strip().lower()
        with connect(self.db, readonly=True) as conn:
            rows = []
            if len(text) >= MIN_PREFIX and re.fullmatch(r"[0-9a-f]+", text):
                rows = conn.execute(
                    "SELECT id FROM history WHERE id LIKE ? ORDER BY created DESC LIMIT 7",
                    (text + "%",),
                ).fetchall()
            if len(rows) > 1:
                shown = ", ".join(r["id"] for r in rows[:6])
                raise UserError(f"history id {text!r} matches several takes ({shown}): give more")
            if not rows:
                raise UserError(
                    f"no take {id_or_prefix!r} in the history: see `distill history list`"
                )
            return self._get(conn, rows[0]["id"])

    def delete(self, id_or_prefix: str | HistoryEntry) -> HistoryEntry:
        """Remove an entry and its kept files; returns what was deleted."""
        entry = self.get(id_or_prefix)
        trash = self.folder / f".deleted-{entry.id}"
        with connect(self.db) as conn, write(conn):
            if not conn.execute("DELETE FROM history WHERE id = ?", (entry.id,)).rowcount:
                raise UserError(f"take {entry.id} was already deleted: see `distill history list`")
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.folder / entry.id, trash)  # fails → the row stays
        shutil.rmtree(trash, ignore_errors=True)
        return entry

    def compare(
        self, a: str | HistoryEntry, b: str | HistoryEntry
    ) -> list[tuple[str, object, object]]:
        """(key, value in A, value in B) for each parameter that differs, by key; keys are
        dotted paths into the sidecars' params, sliders by label, model and export options
        (None where one side lacks the key)."""
        flat_a, flat_b = _settings(self.get(a).sidecar), _settings(self.get(b).sidecar)
        return [
            (key, flat_a.get(key), flat_b.get(key))
            for key in sorted(flat_a.keys() | flat_b.keys())
            if flat_a.get(key) != flat_b.get(key)
        ]

    def ab_file(
        self,
        a: str | HistoryEntry,
        b: str | HistoryEntry,
        dest: Path,
        gap_seconds: float = 0.5,
    ) -> Path:
        """Write A, `gap_seconds` of silence, then B to `dest` as a 24-bit WAV at 48 kHz (stereo
        if either take is); each take fades in and out over 10 ms, so no join clicks."""
        from distill.audio.write import ExportOptions, write_audio

        if not 0.0 <= gap_seconds <= 60.0:
            raise UserError(f"the A/B gap must be 0 to 60 seconds, got {gap_seconds:g}")
        parts = [_faded(_read_at(self.get(ref).audio, AB_RATE)) for ref in (a, b)]
        channels = max(p.shape[1] for p in parts)
        parts = [np.repeat(p, channels // p.shape[1], axis=1) for p in parts]  # mono → both
        gap = np.zeros((round(gap_seconds * AB_RATE), channels), dtype=np.float32)
        joined = np.concatenate([parts[0], gap, parts[1]])  # (T, C)
        # Ceiling at full scale: levels stay as they were unless resampling pushed a peak over.
        options = ExportOptions(format="wav", sample_rate=AB_RATE, bit_depth="24", peak_dbfs=0.0)
        return write_audio(Path(dest), joined.T, AB_RATE, options).path

    # -- helpers -------------------------------------------------------------------------------
    def _get(self, conn: sqlite3.Connection, entry_id: str) -> HistoryEntry:
        row = conn.execute("SELECT * FROM history WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise UserError(f"take {entry_id} was deleted meanwhile: see `distill history list`")
        return HistoryEntry.from_row(row, self.home)

    def _sweep(self, conn: sqlite3.Connection) -> None:
        """Drop rows whose audio is gone; remove stale folders that no row names."""
        rows = conn.execute("SELECT id, audio FROM history").fetchall()
        lost = [r["id"] for r in rows if not (self.home / r["audio"]).is_file()]
        if lost:
            with write(conn):
                conn.executemany("DELETE FROM history WHERE id = ?", [(i,) for i in lost])
        if not self.folder.is_dir():
            return
        indexed = {r["id"] for r in rows}
        for path in self.folder.iterdir():
            if path.name in indexed or not path.is_dir():
                continue
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > STALE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)


def remove_kept_files(home: Path, entry_ids: list[str]) -> None:
    """Remove the history folders of entries whose rows are gone (e.g. with their model)."""
    for entry_id in entry_ids:
        shutil.rmtree(Path(home) / HISTORY_DIR / entry_id, ignore_errors=True)


def _keep(source: Path, target: Path) -> None:
    """A hard link to `source` (no extra space), or a copy where links are not possible (another
    file system, or one without links)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _envelope(path: Path, audio: np.ndarray | None) -> WaveformEnvelope:
    """The waveform of `audio` if given, else of the file, read in blocks (bounded memory)."""
    if audio is not None:
        samples = np.asarray(audio, dtype=np.float32)
        return envelope_of(samples.mean(axis=0) if samples.ndim == 2 else samples)
    with sf.SoundFile(path) as f:
        envelope = WaveformEnvelope(f.frames)
        for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
            envelope.add(np.nan_to_num(block.mean(axis=1)))
    return envelope


def _settings(sidecar: dict) -> dict[str, object]:
    """The sidecar parts a listener changes, flattened to {dotted key: value}."""
    parts = {
        "params": sidecar.get("params"),
        "sliders": sidecar.get("sliders_by_label"),
        "model": sidecar.get("model"),
        "export": (sidecar.get("export") or {}).get("options"),
    }
    flat: dict[str, object] = {}
    _flatten(parts, "", flat)
    return flat


def _flatten(value: object, prefix: str, out: dict[str, object]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}{index}.", out)
    elif value is not None:
        out[prefix.rstrip(".")] = value


def _read_at(path: Path, rate: int) -> np.ndarray:
    """(T, C) float32 samples of a kept take at `rate` Hz (soxr HQ where its rate differs)."""
    try:
        samples, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, sf.LibsndfileError) as err:
        raise UserError(f"cannot read the kept take {path} ({err}): delete that entry") from err
    if file_rate != rate:
        import soxr

        samples = soxr.resample(samples, file_rate, rate, quality="HQ").astype(np.float32)
    return samples


def _faded(x: np.ndarray) -> np.ndarray:
    """`x` (T, C) with a raised-cosine fade-in and fade-out of AB_FADE_SECONDS each."""
    n = min(round(AB_FADE_SECONDS * AB_RATE), len(x) // 2)  # samples
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)[:, None]
    x = x.copy()
    x[:n] *= ramp
    x[len(x) - n :] *= ramp[::-1]
    return x


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _seconds(path: Path) -> float | None:
    """The length of an audio file in seconds; None if soundfile cannot tell."""
    import soundfile as sf

    try:
        return sf.info(str(path)).duration
    except (RuntimeError, sf.LibsndfileError):
        return None
