"""Audio features that name latent directions: seven floats per mono waveform.

Each feature is one record in FEATURE_RECORDS: how it is measured, the slider label it gives a
latent axis that clearly moves it, and how large a change across a sweep is clearly audible. The
latent analysis (analysis.py) reads everything it needs from there, so a new feature is one
record here.

All spectral features come from one Hann-windowed STFT (2048 samples, hop 512: 42.7 ms frames every
10.7 ms at 48 kHz) with no padding, so no frame sees zeros that are not in the signal. Magnitudes
are scaled so a full-scale sine at a bin centre reads 1 (÷ n_fft/4, as in the representation).
Per-frame values are averaged with each frame's energy as its weight: loud frames speak for the
sound, silent frames (weight 0) do not. Silence gives finite values, never NaN or inf:
spectral features 0, RMS at SILENCE_DB, the low/high ratio 0 dB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

N_FFT = 2048  # samples per frame
HOP = 512  # samples between frames
ROLLOFF_SHARE = 0.85
LOW_BAND_HZ = 500.0  # energy below this is "low"
HIGH_BAND_HZ = 4000.0  # energy above this is "high"
RATIO_LIMIT_DB = 60.0  # the low/high ratio is clamped to ±this: one empty band is not infinity
SILENCE_DB = -120.0  # RMS reported for digital silence
POWER_FLOOR = 1e-10  # −100 dB in full-scale power units: keeps the geometric mean finite
FLUX_RANGE_DB = 80.0  # spectral flux looks at the top 80 dB below the signal's peak bin
ONSET_DB = 3.0  # dB of mean rise per bin above the local median that makes an onset
ONSET_GAP_S = 0.05  # s: two onsets closer than this are one
MEDIAN_WINDOW_S = 0.25  # s: the local median of the flux is taken over this window


@dataclass(frozen=True)
class Sound:
    """A mono waveform and its spectrogram, computed once and measured by every feature."""

    x: np.ndarray  # (T,) float64 samples
    sample_rate: int  # Hz
    magnitude: np.ndarray  # (frames, bins) |STFT|, a full-scale sine at a bin centre reads 1
    freqs: np.ndarray  # (bins,) Hz
    power: np.ndarray  # (frames, bins) magnitude²
    weight: np.ndarray  # (frames,) each frame's energy: its weight in the per-frame averages

    @classmethod
    def of(cls, audio: np.ndarray, sample_rate: int) -> Sound:
        x = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1))
        magnitude, freqs = _spectrogram(x, sample_rate)
        power = magnitude**2
        return cls(x, sample_rate, magnitude, freqs, power, power.sum(axis=1))

    @property
    def seconds(self) -> float:
        return len(self.x) / self.sample_rate


@dataclass(frozen=True)
class Feature:
    """One feature: its measurement, and what the latent analysis needs to name a slider by it."""

    name: str  # key in compute_features' result and in a model file's correlations and changes
    measure: Callable[[Sound], float]  # finite for any waveform, silence included
    label: str  # what a slider that clearly moves it is called ("brightness")
    # The change across a whole sweep that is clearly audible, in the unit `change` is measured in
    # (octaves when `octaves`, else the feature's own): a monotone but smaller drift scores less.
    audible_change: float
    # Exact label-score ties go to the lower rank (brightness before warmth: a lowpass sweep
    # moves both). A separate rank, because the order of FEATURE_RECORDS is the order of the
    # values stored in model files.
    rank: int
    octaves: bool = False  # frequency-like: changes are measured in octaves (log2 of max/min)
    # How a slider's tooltip says a change of it ("brightness +0.8 oct"): the word, the unit, the
    # smallest change worth saying and its decimals. No word: never said (rolloff repeats centroid).
    change_word: str | None = None
    change_unit: str = ""
    smallest_said: float = 0.0
    digits: int = 1


FEATURE_RECORDS: tuple[Feature, ...] = (
    # Hz: magnitude-weighted mean frequency (the usual "brightness" measure)
    Feature(
        "centroid",
        lambda s: _weighted(_centroid(s.magnitude, s.freqs), s.weight),
        "brightness",
        audible_change=1 / 3,
        rank=1,
        octaves=True,
        change_word="brightness",
        change_unit="oct",
        smallest_said=0.1,
    ),
    # Hz: frequency below which 85 % of a frame's power lies
    Feature(
        "rolloff",
        lambda s: _weighted(_rolloff(s.power, s.freqs), s.weight),
        "brightness",
        audible_change=1 / 3,
        rank=2,
        octaves=True,
    ),
    # 0…1: geometric / arithmetic mean of the power spectrum: ~0 for a sine, ~0.56 (e^−γ) for
    # white noise
    Feature(
        "flatness",
        lambda s: _weighted(_flatness(s.power), s.weight),
        "noisiness",
        audible_change=0.05,
        rank=4,
        change_word="noisiness",
        smallest_said=0.02,
        digits=2,
    ),
    # dBFS: root mean square of the whole waveform (a full-scale sine is −3 dBFS)
    Feature(
        "rms",
        lambda s: rms_db(s.x),
        "loudness",
        audible_change=3.0,
        rank=5,
        change_word="level",
        change_unit="dB",
        smallest_said=1.0,
    ),
    # dB: energy below 500 Hz over energy above 4 kHz, clamped to ±60 dB: the low band holds the
    # body of most sounds, the high band their air and hiss
    Feature(
        "low_high_ratio",
        lambda s: low_high_ratio(s.power, s.freqs),
        "warmth",
        audible_change=6.0,
        rank=3,
        change_word="low/high balance",
        change_unit="dB",
        smallest_said=1.5,
    ),
    # /s: sign changes of the waveform per second (a 1 kHz sine gives 2000)
    Feature(
        "zcr",
        lambda s: zero_crossing_rate(s.x, s.sample_rate),
        "grit",
        audible_change=1 / 3,
        rank=7,
        octaves=True,
        change_word="grit",
        change_unit="oct",
        smallest_said=0.1,
    ),
    # /s: peaks of the spectral flux (mean dB rise per bin between frames) that stand ONSET_DB
    # above the local median and are ONSET_GAP_S apart, per second
    Feature(
        "onset_density",
        lambda s: onset_density(s.magnitude, s.seconds, s.sample_rate),
        "density",
        audible_change=1.0,
        rank=6,
        change_word="onsets",
        change_unit="/s",
        smallest_said=0.5,
    ),
)
FEATURES = tuple(f.name for f in FEATURE_RECORDS)  # names, in the order values are stored


def compute_features(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Every feature of FEATURE_RECORDS for one mono waveform (any float dtype, any length)."""
    sound = Sound.of(audio, sample_rate)
    return {feature.name: feature.measure(sound) for feature in FEATURE_RECORDS}


def _spectrogram(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """|STFT| of full frames only (a signal shorter than one frame is zero-padded to one)."""
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]  # (frames, N_FFT)
    spectrum = np.fft.rfft(frames * np.hanning(N_FFT + 1)[:-1], axis=1)  # periodic Hann
    return np.abs(spectrum) / (N_FFT / 4), np.fft.rfftfreq(N_FFT, 1 / sample_rate)


def _weighted(values: np.ndarray, weight: np.ndarray) -> float:
    total = weight.sum()
    return float((values * weight).sum() / total) if total > 0 else 0.0


def _centroid(magnitude: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    total = magnitude.sum(axis=1)
    return (magnitude @ freqs) / np.where(total > 0, total, 1.0)


def _rolloff(power: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(power, axis=1)
    threshold = ROLLOFF_SHARE * cumulative[:, -1:]
    index = (cumulative < threshold).sum(axis=1)  # first bin reaching the share
    return freqs[np.minimum(index, len(freqs) - 1)]


def _flatness(power: np.ndarray) -> np.ndarray:
    floored = np.maximum(power, POWER_FLOOR)
    return np.exp(np.log(floored).mean(axis=1)) / floored.mean(axis=1)


def rms_db(x: np.ndarray) -> float:
    """dBFS of the waveform's RMS (full-scale peak = 0 dBFS); SILENCE_DB for silence."""
    rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    return max(SILENCE_DB, 20 * float(np.log10(rms))) if rms > 0 else SILENCE_DB


def low_high_ratio(power: np.ndarray, freqs: np.ndarray) -> float:
    """dB of (energy < LOW_BAND_HZ) / (energy > HIGH_BAND_HZ): positive = warmer."""
    low = float(power[:, freqs < LOW_BAND_HZ].sum())
    high = float(power[:, freqs > HIGH_BAND_HZ].sum())
    # An empty band is measured against a floor 60 dB under the louder one, so the clamp is reached
    # exactly rather than through log(0).
    floor = max(low, high) * 10 ** (-RATIO_LIMIT_DB / 10)
    if floor == 0:
        return 0.0
    ratio = 10 * np.log10(max(low, floor) / max(high, floor))
    return float(np.clip(ratio, -RATIO_LIMIT_DB, RATIO_LIMIT_DB))


def zero_crossing_rate(x: np.ndarray, sample_rate: int) -> float:
    """Sign changes per second; exact zeros count as positive, so silence has none."""
    if len(x) < 2:
        return 0.0
    changes = np.count_nonzero(np.signbit(x[1:]) != np.signbit(x[:-1]))
    return float(changes * sample_rate / len(x))


def onset_density(magnitude: np.ndarray, seconds: float, sample_rate: int) -> float:
    """Onsets per second: local maxima of the spectral flux that stand out from its median."""
    if seconds <= 0:
        return 0.0
    return float(np.count_nonzero(_onset_frames(magnitude, sample_rate))) / seconds


def onset_times(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Seconds of every onset in a mono waveform (the onsets onset_density counts)."""
    x = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1))
    magnitude, _ = _spectrogram(x, sample_rate)
    return np.flatnonzero(_onset_frames(magnitude, sample_rate)) * HOP / sample_rate


def _onset_frames(magnitude: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames,) bool: frames where the spectral flux peaks ONSET_DB above its local median."""
    if len(magnitude) < 2:
        return np.zeros(len(magnitude), dtype=bool)
    db = 20 * np.log10(np.maximum(magnitude, 1e-12))
    # Relative to the peak: a quiet sound has as many onsets as the same sound played loud.
    db = np.maximum(db, db.max() - FLUX_RANGE_DB)
    flux = np.zeros(len(db))
    flux[1:] = np.maximum(np.diff(db, axis=0), 0.0).mean(axis=1)  # dB per bin; frame 0 has none
    frame_rate = sample_rate / HOP  # frames per second
    gap = max(1, round(ONSET_GAP_S * frame_rate))
    median = ndimage.median_filter(flux, size=max(3, round(MEDIAN_WINDOW_S * frame_rate)))
    is_peak = flux == ndimage.maximum_filter(flux, size=2 * gap + 1, mode="constant")
    return is_peak & (flux >= median + ONSET_DB)
