"""Small PNG pictures of a waveform: one min/max envelope column per pixel.

The envelope is accumulated block by block (`WaveformEnvelope.add`), so a thumbnail of a 1-hour
file costs two float arrays of `columns` values, not the file. Amplitude is drawn on a linear scale
so a quiet recording looks quiet; columns that reach full scale are drawn in a warning colour.
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

THUMB_WIDTH = 400  # pixels = envelope columns
THUMB_HEIGHT = 80  # pixels; full scale (±1.0) spans the whole height

BACKGROUND = (22, 24, 29)  # near-black, so the waveform reads at a glance in light and dark UIs
CENTRE_LINE = (58, 62, 72)  # the 0.0 axis, visible where the file is silent
WAVE = (79, 195, 247)  # light blue
CLIPPED = (255, 112, 67)  # orange: the column touches full scale

_MAX_NAME_BYTES = 150  # well under the 255-byte file-name limit of common file systems


class WaveformEnvelope:
    """Per-column minimum and maximum of a signal fed in consecutive blocks.

    `total_frames` (from the file header) fixes how many frames share a column; frames past it,
    if the header undercounted, fall into the last column.
    """

    def __init__(self, total_frames: int, columns: int = THUMB_WIDTH) -> None:
        self.columns = columns
        self.total_frames = max(1, total_frames)
        self._lo = np.full(columns, np.inf, dtype=np.float32)
        self._hi = np.full(columns, -np.inf, dtype=np.float32)
        self._position = 0  # frames seen so far
        self._next_column = 0  # first column no block has reached yet

    def add(self, mono: np.ndarray) -> None:
        """Fold in the next block of mono samples (NaN/Inf must already be replaced)."""
        n = len(mono)
        if n == 0:
            return
        start, total, last_column = self._position, self.total_frames, self.columns - 1
        self._position += n
        # Frame f belongs to column f * columns // total, so column c starts at frame
        # ceil(c * total / columns): every column gets 1/columns of the file, the last one too.
        # Start at the column of this block's first frame, or earlier if columns between the
        # previous block and this one hold no frame at all.
        first = min(self._next_column, start * self.columns // total, last_column)
        last = min((start + n - 1) * self.columns // total, last_column)
        self._next_column = last + 1
        columns = np.arange(first, last + 1)
        offsets = np.maximum(-(-columns * total // self.columns) - start, 0)
        # A column no frame falls in (file shorter than the image) shares its start offset with
        # the next column, and reduceat then gives it that frame's value: no holes in the picture.
        np.minimum.at(self._lo, columns, np.minimum.reduceat(mono, offsets))
        np.maximum.at(self._hi, columns, np.maximum.reduceat(mono, offsets))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) per column; columns no sample reached are 0."""
        seen = np.isfinite(self._lo)
        return np.where(seen, self._lo, 0.0), np.where(seen, self._hi, 0.0)


def envelope_of(samples: np.ndarray, columns: int = THUMB_WIDTH) -> WaveformEnvelope:
    """The envelope of a mono signal already in memory (e.g. a generated take)."""
    samples = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    envelope = WaveformEnvelope(len(samples), columns)
    envelope.add(samples)
    return envelope


def render_waveform(
    envelope: WaveformEnvelope, height: int = THUMB_HEIGHT, clip_level: float = 0.999
) -> Image.Image:
    """An RGB image `envelope.columns` wide: a vertical bar from min to max in every column."""
    lo, hi = envelope.bounds()
    half = (height - 1) / 2  # rows from the centre line to the top edge
    # Image rows grow downwards, so the maximum sample gives the top row of the bar.
    top = np.rint(half - np.clip(hi, -1.0, 1.0) * half).astype(np.int64)
    bottom = np.maximum(np.rint(half - np.clip(lo, -1.0, 1.0) * half).astype(np.int64), top)
    rows = np.arange(height)[:, None]
    bar = (rows >= top) & (rows <= bottom)  # (height, columns)
    clipped = np.maximum(np.abs(lo), np.abs(hi)) >= clip_level  # (columns,)

    pixels = np.empty((height, envelope.columns, 3), dtype=np.uint8)
    pixels[:] = BACKGROUND
    pixels[height // 2] = CENTRE_LINE
    pixels[bar & ~clipped] = WAVE
    pixels[bar & clipped] = CLIPPED
    return Image.fromarray(pixels, mode="RGB")


def write_waveform_png(
    envelope: WaveformEnvelope, out_path: Path, clip_level: float = 0.999
) -> Path:
    """Render `envelope` and save it as a PNG at `out_path` (its folder must exist)."""
    render_waveform(envelope, clip_level=clip_level).save(out_path, format="PNG")
    return out_path


def thumbnail_name(relative_path: str, taken: set[str]) -> str:
    """A safe, unique PNG file name for the audio file at `relative_path` (POSIX separators).

    Folders become "__", anything but unicode letters, digits, "-" and "_" becomes "_" (so no
    separators, no "..", no leading dot), e.g. "drums/my kick ü 日本.wav" →
    "drums__my_kick_ü_日本_wav.png". A name already in `taken` (compared case-insensitively, for
    macOS and Windows) gets a short hash of the original path; the result is added to `taken`.
    """
    text = unicodedata.normalize("NFC", relative_path)  # macOS stores names decomposed (NFD)
    parts = ["".join(c if c.isalnum() or c in "-_" else "_" for c in p) for p in text.split("/")]
    stem = "__".join(parts) or "audio"
    while len(stem.encode("utf-8")) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    name = f"{stem}.png"
    if name.casefold() in taken:
        digest = hashlib.sha1(relative_path.encode("utf-8")).hexdigest()[:8]
        name = f"{stem}-{digest}.png"
    taken.add(name.casefold())
    return name
