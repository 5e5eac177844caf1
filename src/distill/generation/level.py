"""Takes at a usable level, and one-shots cut to their event.

    auto      one-shots peak-normalized, textures matched to the training sounds' loudness
    peak      peak-normalized to PEAK_DBFS (−1 dBFS)
    loudness  integrated loudness (ITU BS.1770, pyloudnorm) matched to the corpus's median
              loudness, then held under the same peak ceiling (gain only goes down there)
    raw       as the model rendered it (the export's own ceiling still applies)

A rendered take's raw level depends on how the events happened to mix; the model does not know
how loud the user's recordings were, only their normalized spectra. Without levelling, takes
peaked at −13 to −23 dBFS from the CLI and at −46 dBFS from the page's defaults.
"""

from __future__ import annotations

import math

import numpy as np

from distill.generation.defaults import LEVELS  # noqa: F401  (what apply_level accepts)

PEAK_DBFS = -1.0  # ceiling for every levelled take
LOUDNESS_SPAN_S, LOUDNESS_PIECES = 60.0, 6  # longer takes: measured on 6 pieces of 10 s
MIN_LOUDNESS_SECONDS = 0.4  # BS.1770 needs one 400 ms block; shorter takes are peak-normalized
# One-shots: the event starts at its first sample above START_DB re peak (less START_MARGIN_S)
# and ends where the level stays below END_DB re peak (plus END_MARGIN_S). What comes before a
# decoded attack is mostly pre-echo: the 2048-sample analysis window (42.7 ms) spreads an onset
# up to 21 ms early at −20 to −35 dB; cutting it there gives the take its attack back, and a
# slow swell loses only its first, quietest part.
START_DB, END_DB = -20.0, -60.0
START_MARGIN_S, END_MARGIN_S = 0.001, 0.01
FADE_IN_S = 0.001  # only where leading silence was cut: the cut must not click
FADE_OUT_S = 0.01  # below −60 dB anyway: removes the last step to zero
CUT_FADE_S = 0.05  # a one-shot ended by -d before its natural end fades out over this
ENVELOPE_S = 0.002  # s: frames of the envelope the bounds are found on
MIN_ONESHOT_S = 0.02


def oneshot_bounds(
    audio: np.ndarray, rate: int, *, cut: bool = False, side: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """`audio` (and `side`, the same way) from its attack to its natural end, with short fades.

    `cut`: the take was stopped before the event ended; it fades out over CUT_FADE_S instead.
    """
    x = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0 or not math.isfinite(peak):
        return x, side
    hop = max(1, round(ENVELOPE_S * rate))
    n = len(x) // hop + (len(x) % hop > 0)
    padded = np.pad(np.abs(x), (0, n * hop - len(x)))
    envelope = padded.reshape(n, hop).max(axis=1)  # (n,) peak per 2 ms
    above_start = np.flatnonzero(envelope >= peak * 10 ** (START_DB / 20))
    above_end = np.flatnonzero(envelope >= peak * 10 ** (END_DB / 20))
    start = max(0, int(above_start[0]) * hop - round(START_MARGIN_S * rate))
    stop = (
        len(x) if cut else min(len(x), (int(above_end[-1]) + 1) * hop + round(END_MARGIN_S * rate))
    )
    stop = max(stop, min(len(x), start + round(MIN_ONESHOT_S * rate)))
    out = [x[start:stop].copy()] + ([] if side is None else [np.asarray(side)[start:stop].copy()])
    for y in out:
        if start > 0:
            _fade(y, round(FADE_IN_S * rate), at_end=False)
        _fade(y, round((CUT_FADE_S if cut else FADE_OUT_S) * rate), at_end=True)
    return out[0], (None if side is None else out[1])


def _fade(y: np.ndarray, samples: int, *, at_end: bool) -> None:
    samples = min(samples, len(y) // 4)
    if samples < 2:
        return
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(samples) + 0.5) / samples)).astype(y.dtype)
    if at_end:
        y[-samples:] *= ramp[::-1]
    else:
        y[:samples] *= ramp


def apply_level(audio: np.ndarray, rate: int, level: str, mode: str, loudness: float) -> np.ndarray:
    """(T,) or (2, T) audio at the level `level` asks for (module docstring); float32."""
    x = np.asarray(audio, dtype=np.float32)
    if level == "raw":
        return x
    if level == "auto":
        level = "peak" if mode == "oneshot" else "loudness"
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0 or not math.isfinite(peak):
        return x
    ceiling = 10 ** (PEAK_DBFS / 20)
    gain = ceiling / peak
    if level == "loudness" and x.shape[-1] >= MIN_LOUDNESS_SECONDS * rate:
        measured = _loudness(x, rate)
        if measured is not None:
            gain = min(gain, 10 ** ((loudness - measured) / 20))
    return (x * gain).astype(np.float32)


def _loudness(x: np.ndarray, rate: int) -> float | None:
    """Integrated loudness (LUFS). A take longer than LOUDNESS_SPAN_S is measured on
    LOUDNESS_PIECES evenly spaced pieces of it, joined: pyloudnorm works on whole float64
    copies (≈ 0.4 GB of them for 5 minutes), and a texture's loudness is the same throughout."""
    import pyloudnorm

    data = (x.T if x.ndim == 2 else x).astype(np.float32, copy=False)
    span = round(LOUDNESS_SPAN_S * rate)
    if len(data) > span:
        piece = span // LOUDNESS_PIECES
        starts = np.linspace(0, len(data) - piece, LOUDNESS_PIECES).round().astype(int)
        data = np.concatenate([data[s : s + piece] for s in starts])
    value = pyloudnorm.Meter(rate).integrated_loudness(data.astype(np.float64))
    return float(value) if math.isfinite(value) else None
