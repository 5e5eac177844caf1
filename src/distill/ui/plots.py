"""Pictures for the page, drawn with numpy and PIL (no plotting library): a take's waveform and
spectrogram, and the training's loss chart."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import signal

from distill.audio.thumbnail import BACKGROUND, envelope_of, render_waveform

WAVE_SIZE = (800, 120)  # pixels
SPEC_SIZE = (800, 240)  # pixels
SPEC_N_FFT = 2048  # samples: 43 ms at 48 kHz, 23 Hz per bin
SPEC_MAX_FRAMES = 1600  # STFT frames computed at most: the hop grows with the length
SPEC_FLOOR_DB = -90.0  # dB below the loudest bin shown as black
SPEC_LOW_HZ = 30.0  # the log-frequency axis starts here
# Colour map anchors (position 0…1 → RGB), dark purple to pale yellow, like "magma".
_COLOURS = np.array(
    [(0, 0, 4), (59, 15, 112), (140, 41, 129), (222, 73, 104), (254, 159, 109), (252, 253, 191)],
    dtype=np.float64,
)

CHART_SIZE = (800, 320)  # pixels
_MARGIN = (58, 30, 20, 34)  # left, top (the legend), right, bottom, pixels
_GRID = (52, 56, 66)
_TEXT = (205, 210, 220)
# Loss component → (record key in step records, colour). Validation comes from epoch records.
LOSS_LINES = {
    "train total": ("total", (236, 239, 244)),
    "MR-STFT": ("stft", (79, 195, 247)),
    "magnitude": ("mag", (129, 199, 132)),
    "IF": ("if", (255, 183, 77)),
    "loud bands": ("conv", (240, 98, 146)),
    "KL": ("kl", (186, 104, 200)),
}
VALIDATION = ("validation total", "val_total", (255, 112, 67))


def _font(size: int = 12) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio.reshape(-1)


def waveform_image(audio: np.ndarray) -> Image.Image:
    """The take's min/max envelope (stereo is shown as its mono sum / 2)."""
    width, height = WAVE_SIZE
    return render_waveform(envelope_of(_mono(audio), columns=width), height=height)


def spectrogram_image(audio: np.ndarray, rate: int) -> Image.Image:
    """Log-frequency (30 Hz … rate/2), dB-scaled spectrogram, loudest bin at full colour."""
    width, height = SPEC_SIZE
    mono = _mono(audio)
    if mono.size < SPEC_N_FFT:
        mono = np.pad(mono, (0, SPEC_N_FFT - mono.size))
    hop = max(SPEC_N_FFT // 4, math.ceil(mono.size / SPEC_MAX_FRAMES))
    _, _, stft = signal.stft(
        mono, fs=rate, nperseg=SPEC_N_FFT, noverlap=max(0, SPEC_N_FFT - hop), boundary=None
    )
    power = np.abs(stft) ** 2  # (bins, frames)
    db = 10 * np.log10(power + 1e-20)
    db = np.clip(db - db.max(), SPEC_FLOOR_DB, 0.0)
    # Rows: log-spaced frequencies, top row = highest; columns: frames resampled to the width.
    bin_hz = rate / SPEC_N_FFT
    freqs = np.geomspace(SPEC_LOW_HZ, rate / 2, height)[::-1]
    rows = np.clip(np.rint(freqs / bin_hz).astype(int), 0, db.shape[0] - 1)
    cols = np.linspace(0, db.shape[1] - 1, width).round().astype(int)
    level = 1.0 - db[np.ix_(rows, cols)] / SPEC_FLOOR_DB  # 0 (floor) … 1 (loudest)
    return Image.fromarray(_colour(level), mode="RGB")


def _colour(level: np.ndarray) -> np.ndarray:
    """0…1 → RGB uint8 through the colour anchors."""
    position = np.clip(level, 0.0, 1.0) * (len(_COLOURS) - 1)
    low = np.minimum(position.astype(int), len(_COLOURS) - 2)
    t = (position - low)[..., None]
    rgb = _COLOURS[low] * (1 - t) + _COLOURS[low + 1] * t
    return rgb.round().astype(np.uint8)


def loss_chart(steps: list[dict], epochs: list[dict], steps_per_epoch: int | None) -> Image.Image:
    """Losses per component against epochs, log scale: training terms from the step records
    (binned means, one point per few pixels), validation total from the epoch records."""
    width, height = CHART_SIZE
    image = Image.new("RGB", CHART_SIZE, BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    left, top, right, bottom = _MARGIN
    plot_w, plot_h = width - left - right, height - top - bottom

    per_epoch = max(1, steps_per_epoch or 1)
    series: dict[str, tuple[np.ndarray, np.ndarray, tuple]] = {}
    usable = [s for s in steps if not s.get("skipped")]
    if usable:
        x = np.array([s["step"] / per_epoch for s in usable], dtype=np.float64)
        for label, (key, colour) in LOSS_LINES.items():
            y = np.array([s.get(key) or np.nan for s in usable], dtype=np.float64)
            series[label] = (*_binned(x, y, plot_w // 3), colour)
    val = [e for e in epochs if e.get(VALIDATION[1]) is not None]
    if val:
        series[VALIDATION[0]] = (
            np.array([e["epoch"] for e in val], dtype=np.float64),
            np.array([e[VALIDATION[1]] for e in val], dtype=np.float64),
            VALIDATION[2],
        )
    values = np.concatenate([y for _, y, _ in series.values()]) if series else np.array([])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        draw.text(
            (width // 2, height // 2),
            "the loss chart appears after the first training steps",
            fill=_TEXT,
            font=font,
            anchor="mm",
        )
        return image

    x_max = max(1.0, max(float(x.max()) for x, _, _ in series.values()))
    lo_exp = math.floor(math.log10(values.min()))
    hi_exp = math.ceil(math.log10(values.max()))
    hi_exp = max(hi_exp, lo_exp + 1)

    def to_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = left + x / x_max * plot_w
        py = top + (hi_exp - np.log10(y)) / (hi_exp - lo_exp) * plot_h
        return px, py

    for exp in range(lo_exp, hi_exp + 1):  # a grid line and a label per decade
        _, py = to_px(np.array([0.0]), np.array([10.0**exp]))
        draw.line([(left, py[0]), (left + plot_w, py[0])], fill=_GRID)
        draw.text((left - 6, py[0]), f"1e{exp}", fill=_TEXT, font=font, anchor="rm")
    for tick in _ticks(x_max):
        px, _ = to_px(np.array([tick]), np.array([1.0]))
        draw.line([(px[0], top), (px[0], top + plot_h)], fill=_GRID)
        draw.text((px[0], top + plot_h + 4), f"{tick:g}", fill=_TEXT, font=font, anchor="ma")
    draw.text((left + plot_w, height - 2), "epoch", fill=_TEXT, font=font, anchor="rd")

    for x, y, colour in series.values():
        keep = np.isfinite(y) & (y > 0)
        px, py = to_px(x[keep], y[keep])
        points = list(zip(px.tolist(), py.tolist(), strict=True))
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for cx, cy in points if len(points) <= 60 else points[-1:]:
            draw.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=colour)

    legend_x = left  # one coloured entry per component, above the plot
    for label, (_, _, colour) in series.items():
        draw.rectangle([legend_x, 8, legend_x + 10, 18], fill=colour)
        draw.text((legend_x + 14, 13), label, fill=_TEXT, font=font, anchor="lm")
        legend_x += 24 + int(draw.textlength(label, font=font))
    return image


def _binned(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `bins` points: means of consecutive runs of records (a smoothed curve)."""
    if len(x) <= bins:
        return x, y
    starts = np.linspace(0, len(x), bins + 1).astype(int)[:-1]
    counts = np.diff(np.append(starts, len(x)))
    finite = np.isfinite(y)
    n = np.add.reduceat(finite.astype(np.float64), starts)
    sums = np.add.reduceat(np.where(finite, y, 0.0), starts)
    ys = np.divide(sums, n, out=np.full(len(starts), np.nan), where=n > 0)
    return np.add.reduceat(x, starts) / counts, ys


def _ticks(x_max: float) -> list[float]:
    """About 5 round epoch numbers from 0 to x_max."""
    raw = x_max / 5
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    return [i * step for i in range(int(x_max / step) + 1)]
