"""The report's pictures, drawn with numpy and Pillow (no plotting library): the loss curves per
epoch, and the spectrograms of an original and of the model's resynthesis of it.

Both come back as PNG bytes, palette-coded (≤ 256 colours: the spectrogram's colour map has
fewer steps than that anyway), so sixteen spectrograms and the curves stay a few hundred kB.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import signal

BACKGROUND = (255, 255, 255)
INK = (40, 44, 52)
GRID = (225, 228, 234)
TRAIN_COLOUR = (33, 102, 172)  # blue
VAL_COLOUR = (214, 96, 77)  # red
BEST_COLOUR = (120, 170, 90)  # the best validation epoch's vertical line

# Loss component → (the part of the metrics key after "train_" / "val_", panel title).
LOSS_PANELS = (
    ("total", "total loss"),
    ("stft", "MR-STFT (audio)"),
    ("mag", "magnitude"),
    ("if", "instantaneous frequency"),
    ("conv", "loud bands (convergence)"),
    ("kl", "KL (latent)"),
)
PANEL_SIZE = (330, 210)  # pixels, one loss component
PANEL_COLUMNS = 3
_PANEL_MARGIN = (52, 26, 12, 30)  # left, top (title), right, bottom (epoch ticks), pixels

SPEC_PANEL = (320, 180)  # pixels, one spectrogram
SPEC_N_FFT = 2048  # samples: 43 ms at 48 kHz, 23 Hz per bin
SPEC_FLOOR_DB = -80.0  # dB below the original's loudest bin, drawn black
SPEC_LOW_HZ = 30.0  # the log-frequency axis starts here
_SPEC_MARGIN = (54, 20, 12, 22)  # left (Hz labels), top (title), right, bottom (s), pixels
# Colour map anchors (position 0…1 → RGB), dark purple to pale yellow, like "magma".
_COLOURS = np.array(
    [(0, 0, 4), (59, 15, 112), (140, 41, 129), (222, 73, 104), (254, 159, 109), (252, 253, 191)],
    dtype=np.float64,
)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(
        buffer, format="PNG", optimize=True
    )
    return buffer.getvalue()


def _font(size: int = 12) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


# -- loss curves ------------------------------------------------------------------------------
def loss_curves(epochs: list[dict]) -> Image.Image:
    """One small chart per loss component: training (blue) and validation (red) per epoch, the
    best epoch as a green line. Log scale where a curve spans more than a factor of 10."""
    rows = math.ceil((len(LOSS_PANELS) + 1) / PANEL_COLUMNS)  # + 1: the legend's cell
    width, height = PANEL_SIZE
    image = Image.new("RGB", (width * PANEL_COLUMNS, height * rows), BACKGROUND)
    draw = ImageDraw.Draw(image)
    best = next((e.get("best_epoch") for e in reversed(epochs) if e.get("best_epoch")), None)
    for index, (key, title) in enumerate(LOSS_PANELS):
        origin = ((index % PANEL_COLUMNS) * width, (index // PANEL_COLUMNS) * height)
        lines = [
            # The audio term is not computed before it starts: its zeros are no measurement.
            (_series(epochs, f"train_{key}", skip_zero=key == "stft"), TRAIN_COLOUR),
            (_series(epochs, f"val_{key}"), VAL_COLOUR),
        ]
        _panel(draw, origin, title, lines, best)
    cell = len(LOSS_PANELS)
    _legend(draw, ((cell % PANEL_COLUMNS) * width, (cell // PANEL_COLUMNS) * height), best)
    return image


def _series(
    epochs: list[dict], key: str, *, skip_zero: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(epoch numbers, values) where the value is a finite number (validation may skip epochs)."""
    points = [
        (float(e["epoch"]), float(e[key]))
        for e in epochs
        if isinstance(e.get(key), int | float)
        and math.isfinite(e[key])
        and not (skip_zero and e[key] == 0)
    ]
    if not points:
        return np.zeros(0), np.zeros(0)
    x, y = zip(*points, strict=True)
    return np.array(x), np.array(y)


def _panel(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    title: str,
    lines: list[tuple[tuple[np.ndarray, np.ndarray], tuple]],
    best: int | None,
) -> None:
    font = _font()
    ox, oy = origin
    left, top, right, bottom = _PANEL_MARGIN
    width, height = PANEL_SIZE
    plot = (ox + left, oy + top, ox + width - right, oy + height - bottom)  # x0, y0, x1, y1
    draw.text((ox + left, oy + 6), title, fill=INK, font=_font(13))
    xs = np.concatenate([x for (x, _), _ in lines])
    ys = np.concatenate([y for (_, y), _ in lines])
    if xs.size == 0:
        draw.rectangle(plot, outline=GRID)
        draw.text(_centre(plot), "not recorded", fill=INK, font=font, anchor="mm")
        return
    log = bool(ys.min() > 0 and ys.max() / ys.min() > 10)
    y_lo, y_hi = _y_range(ys, log)
    x_hi = max(2.0, float(xs.max()))

    def to_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fy = (np.log10(y) - y_lo) / (y_hi - y_lo) if log else (y - y_lo) / (y_hi - y_lo)
        px = plot[0] + (x - 1) / (x_hi - 1) * (plot[2] - plot[0])
        return px, plot[3] - fy * (plot[3] - plot[1])

    for tick in _y_ticks(y_lo, y_hi, log):
        _, py = to_px(np.array([1.0]), np.array([tick]))
        draw.line([(plot[0], py[0]), (plot[2], py[0])], fill=GRID)
        draw.text((plot[0] - 4, py[0]), f"{tick:.3g}", fill=INK, font=font, anchor="rm")
    for tick in _x_ticks(x_hi):
        px, _ = to_px(np.array([tick]), np.array([10.0**y_lo if log else y_lo]))
        draw.line([(px[0], plot[1]), (px[0], plot[3])], fill=GRID)
        draw.text((px[0], plot[3] + 4), f"{tick:g}", fill=INK, font=font, anchor="ma")
    if best and 1 <= best <= x_hi:
        px, _ = to_px(np.array([float(best)]), np.array([10.0**y_lo if log else y_lo]))
        draw.line([(px[0], plot[1]), (px[0], plot[3])], fill=BEST_COLOUR, width=2)
    for (x, y), colour in lines:
        keep = y > 0 if log else np.ones(len(y), dtype=bool)
        px, py = to_px(x[keep], y[keep])
        points = list(zip(px.tolist(), py.tolist(), strict=True))
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        if len(points) <= 40:  # dots while they do not crowd the line
            for cx, cy in points:
                draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colour)
    draw.rectangle(plot, outline=(190, 194, 202))


def _legend(draw: ImageDraw.ImageDraw, origin: tuple[int, int], best: int | None) -> None:
    font = _font(13)
    x, y = origin[0] + 30, origin[1] + 40
    entries = [(TRAIN_COLOUR, "training files"), (VAL_COLOUR, "validation files (held out)")]
    if best:
        entries.append((BEST_COLOUR, f"best validation epoch ({best})"))
    for colour, text in entries:
        draw.line([(x, y), (x + 26, y)], fill=colour, width=3)
        draw.text((x + 34, y), text, fill=INK, font=font, anchor="lm")
        y += 26
    draw.text((x, y + 8), "x: epoch   y: loss (lower is better)", fill=INK, font=_font(12))


def _y_range(values: np.ndarray, log: bool) -> tuple[float, float]:
    """The plotted span: log10 units on a log axis, with a little room above and below."""
    lo, hi = (np.log10(values.min()), np.log10(values.max())) if log else (0.0, values.max())
    if not log and values.min() < 0:
        lo = values.min()
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return float(lo - pad if log or lo < 0 else lo), float(hi + pad)


def _y_ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:  # 1-2-5 in each decade the axis spans
        decades = range(math.floor(lo), math.ceil(hi) + 1)
        ticks = [m * 10.0**d for d in decades for m in (1, 2, 5)]
        return [t for t in ticks if lo <= math.log10(t) <= hi]
    step = _nice_step((hi - lo) / 4)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _x_ticks(x_max: float) -> list[float]:
    """About 5 round epoch numbers from 1 to x_max."""
    step = max(1.0, _nice_step(x_max / 5))
    return [1.0] + [k * step for k in range(1, int(x_max / step) + 1) if k * step > 1]


def _nice_step(raw: float) -> float:
    base = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(f * base for f in (1, 2, 5, 10) if raw <= f * base)


def _centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


# -- spectrograms -----------------------------------------------------------------------------
def spectrograms(
    original: np.ndarray, resynthesis: np.ndarray, rate: int
) -> tuple[Image.Image, Image.Image]:
    """The original's and the model's version's spectrograms, log-frequency, on one dB scale set
    by the original's loudest bin, so a quieter or brighter resynthesis shows as such."""
    db_original = _db(original, rate)
    reference = float(db_original.max())
    seconds = len(original) / rate
    return (
        _spectrogram_picture("original", db_original, reference, rate, seconds),
        _spectrogram_picture("resynthesis", _db(resynthesis, rate), reference, rate, seconds),
    )


def _spectrogram_picture(
    title: str, db: np.ndarray, reference: float, rate: int, seconds: float
) -> Image.Image:
    """One spectrogram with its title, frequency labels (Hz) and time ticks (s)."""
    left, top, right, bottom = _SPEC_MARGIN
    width, height = SPEC_PANEL
    image = Image.new("RGB", (left + width + right, top + height + bottom), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    image.paste(_spectrogram_panel(db, reference, rate), (left, top))
    draw.text((left, 3), title, fill=INK, font=_font(13))
    for tick in _x_ticks_seconds(seconds):
        px = left + tick / max(seconds, 1e-9) * (width - 1)
        draw.line([(px, top + height), (px, top + height + 3)], fill=INK)
        draw.text((px, top + height + 4), f"{tick:g} s", fill=INK, font=font, anchor="ma")
    for hz, label in ((100, "100 Hz"), (1000, "1 kHz"), (10_000, "10 kHz")):
        if hz < rate / 2:
            py = top + _row_of(hz, rate)
            draw.line([(left - 4, py), (left - 1, py)], fill=INK)
            draw.text((left - 6, py), label, fill=INK, font=font, anchor="rm")
    return image


def _db(audio: np.ndarray, rate: int) -> np.ndarray:
    """(bins, frames) power in dB; at most ~2 frames per pixel column."""
    mono = np.asarray(audio, dtype=np.float64).reshape(-1)
    if mono.size < SPEC_N_FFT:
        mono = np.pad(mono, (0, SPEC_N_FFT - mono.size))
    hop = max(SPEC_N_FFT // 8, math.ceil(mono.size / (2 * SPEC_PANEL[0])))
    _, _, stft = signal.stft(
        mono, fs=rate, nperseg=SPEC_N_FFT, noverlap=SPEC_N_FFT - hop, boundary=None
    )
    return 10 * np.log10(np.abs(stft) ** 2 + 1e-20)


def _row_of(hz: float, rate: int) -> float:
    """The pixel row (0 = top) of a frequency on the log axis SPEC_LOW_HZ … rate / 2."""
    height = SPEC_PANEL[1]
    span = math.log(rate / 2 / SPEC_LOW_HZ)
    return (height - 1) * (1 - math.log(hz / SPEC_LOW_HZ) / span)


def _spectrogram_panel(db: np.ndarray, reference: float, rate: int) -> Image.Image:
    width, height = SPEC_PANEL
    level = np.clip(db - reference, SPEC_FLOOR_DB, 0.0)
    freqs = np.geomspace(SPEC_LOW_HZ, rate / 2, height)[::-1]  # top row = highest
    rows = np.clip(np.rint(freqs / (rate / SPEC_N_FFT)).astype(int), 0, db.shape[0] - 1)
    picked = level[rows]  # (height, frames)
    frames = db.shape[1]
    if frames <= width:  # stretch: each column shows its nearest frame
        columns = picked[:, np.linspace(0, frames - 1, width).round().astype(int)]
    else:  # squeeze: each column shows the loudest frame it covers, so no attack is skipped
        starts = np.linspace(0, frames, width + 1).astype(int)[:-1]  # strictly increasing
        columns = np.maximum.reduceat(picked, starts, axis=1)
    return Image.fromarray(_colour(1.0 - columns / SPEC_FLOOR_DB), mode="RGB")


def _x_ticks_seconds(seconds: float) -> list[float]:
    step = _nice_step(max(seconds, 0.05) / 4)
    return [k * step for k in range(int(seconds / step + 1e-9) + 1)]


def _colour(level: np.ndarray) -> np.ndarray:
    """0…1 → RGB uint8 through the colour anchors."""
    position = np.clip(level, 0.0, 1.0) * (len(_COLOURS) - 1)
    low = np.minimum(position.astype(int), len(_COLOURS) - 2)
    t = (position - low)[..., None]
    rgb = _COLOURS[low] * (1 - t) + _COLOURS[low + 1] * t
    return rgb.round().astype(np.uint8)
