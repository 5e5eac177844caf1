"""Mono render → mono, stereo or binaural output.

Stereo is mid/side: L = g·x + s, R = g·x − s, so L + R = 2g·x is the mono render itself, never a
comb-filtered sum. The side s is either the difference to a second, nearby render (`side=`) or x
through a decorrelating filter; it is held to SIDE_GAIN × the mid, and g drops as s grows:

    mono sum loss  20·log10 g           ≥ −0.9 dB  (MID_GAIN_DB)
    L² + R² vs 2x² 10·log10(g² + s²/x²) ≤ +0.7 dB  (TOTAL_GAIN_DB), ≥ 0 dB
    correlation    (g² − s²)/(g² + s²)  ≈ 0.48 at width 1 on white noise

Binaural is a spherical head model (binaural.py).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from distill.errors import UserError
from distill.generation.binaural import binaural

MODES = ("mono", "stereo", "binaural")
MID_GAIN_DB, TOTAL_GAIN_DB = -0.9, 0.7  # at width 1, for a side as loud as SIDE_GAIN allows
MID_GAIN = 10 ** (MID_GAIN_DB / 20)
SIDE_GAIN = math.sqrt(10 ** (TOTAL_GAIN_DB / 10) - MID_GAIN**2)  # 0.60
BASS_MONO = (80.0, 200.0)  # Hz: the side fades in between these, so bass stays centred
PAN_ABOVE = 1500.0  # Hz: below, the side is ±90° to the mid (L, R equally loud: a tone's
# fundamental stays centred); above, where interaural phase is not heard, bands pan instead
KERNEL_SECONDS = 0.08  # decorrelating FIR length; 98 % of its energy lies within 4-8 ms
ENVELOPE_SECONDS = 0.05  # window of the level limiter on a rendered side


@dataclass(frozen=True)
class SpatialOptions:
    mode: str = "mono"  # mono | stereo | binaural
    width: float = 0.7  # stereo: 0 (mono) … 1 (widest)
    azimuth: float = 0.0  # binaural: degrees, −180…180, + = to the listener's right, 0 = front
    elevation: float = 0.0  # binaural: degrees, −90…90, + = up
    orbit: float | None = None  # binaural: seconds per full circle around the head (None = fixed)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"spatial mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.width <= 1.0:
            raise UserError(f"stereo width must be between 0 and 1, got {self.width:g}")
        if not -180.0 <= self.azimuth <= 180.0:
            raise UserError(f"azimuth must be between -180 and 180 degrees, got {self.azimuth:g}")
        if not -90.0 <= self.elevation <= 90.0:
            raise UserError(f"elevation must be between -90 and 90 degrees, got {self.elevation:g}")
        if self.orbit is not None and not (math.isfinite(self.orbit) and self.orbit > 0):
            raise UserError(
                f"orbit must be a positive number of seconds per turn, got {self.orbit:g}"
            )

    @property
    def channels(self) -> int:
        return 1 if self.mode == "mono" else 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SpatialOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown spatial settings {unknown}; known: {sorted(known)}")
        values = {k: float(v) for k, v in data.items() if k not in ("mode", "orbit")}
        if "mode" in data:
            values["mode"] = str(data["mode"])
        if data.get("orbit") is not None:
            values["orbit"] = float(data["orbit"])
        return cls(**values)


def spatialize(
    audio: np.ndarray,
    sample_rate: int,
    options: SpatialOptions,
    *,
    seed: int = 0,
    side: np.ndarray | None = None,
) -> np.ndarray:
    """(T,) mono → (T,) for mono, else (2, T) left/right; float32, deterministic per seed.

    `side`: a second (T,) render of a nearby latent path; used by stereo only."""
    options.validate()
    if audio.ndim != 1:
        raise ValueError(f"spatialize takes mono (T,) audio, got shape {audio.shape}")
    if options.mode == "mono":
        return audio.astype(np.float32, copy=True)
    if options.mode == "binaural":
        return binaural(audio, sample_rate, options.azimuth, options.elevation, options.orbit)
    x = audio.astype(np.float64)
    if side is None:
        s = SIDE_GAIN * _zero_phase(x, decorrelator(sample_rate, seed))
    else:
        if side.shape != audio.shape:
            raise ValueError(f"side {side.shape} must match audio {audio.shape}")
        s = _rendered_side(x, side.astype(np.float64), sample_rate)
    return mid_side(x, options.width * s)


def mid_side(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(2, T) float32 L = g·x + s, R = g·x − s, g from how loud s is (module docstring)."""
    ratio = min(float(s @ s) / max(float(x @ x), 1e-30), SIDE_GAIN**2)
    g = math.sqrt(1 - ratio * (1 - MID_GAIN**2) / SIDE_GAIN**2)
    return np.stack([g * x + s, g * x - s]).astype(np.float32)


def decorrelator(sample_rate: int, seed: int) -> np.ndarray:
    """Zero-phase FIR (centre tap at len // 2), |response| ≤ 1.01: a seeded phase per ERB band —
    ±90° below PAN_ABOVE, a pan alternating left/right band by band above — bass faded out."""
    freqs, bands, fade = _band_grid(sample_rate)
    count = int(bands.max()) + 2
    centre_hz = (10 ** (np.arange(count) / 21.4) - 1) / 0.00437  # ERB number → Hz
    rng = np.random.default_rng(seed)
    # cos(phase) is the band's pan: 0 below PAN_ABOVE; above, alternating in sign so the bands'
    # pans cancel on broadband sound (no image shift), random in size so they don't sound regular.
    pan = np.where(centre_hz < PAN_ABOVE, 0.0, (-1.0) ** np.arange(count) * rng.random(count))
    phases = rng.choice([-1.0, 1.0], count) * np.arccos(pan)
    return _fir(_crossfade_bands(np.exp(1j * phases), bands) * fade, freqs)


def _band_grid(sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFT-bin frequencies (Hz), their ERB numbers (Glasberg & Moore) and the bass fade."""
    size = 2 ** math.ceil(math.log2(KERNEL_SECONDS * sample_rate))  # 4096 at 48 kHz
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    bands = 21.4 * np.log10(1 + 0.00437 * freqs)
    lo, hi = BASS_MONO
    ramp = np.clip(np.log(np.maximum(freqs, 1.0) / lo) / math.log(hi / lo), 0, 1)
    return freqs, bands, np.sin(np.pi / 2 * ramp) ** 2


def _crossfade_bands(values: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Per-bin value: band b's value, crossfaded to b + 1's over the middle half of the band."""
    b = np.floor(bands).astype(int)
    t = np.clip((bands - b - 0.25) / 0.5, 0, 1)
    return np.cos(np.pi / 2 * t) ** 2 * values[b] + np.sin(np.pi / 2 * t) ** 2 * values[b + 1]


def _fir(response: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Zero-phase frequency samples → Hann-windowed FIR centred at len // 2."""
    response = response.copy()
    response[-1] = response[-1].real  # the Nyquist bin of a real filter is real
    size = 2 * (len(freqs) - 1)
    return np.roll(np.fft.irfft(response, size), size // 2) * np.hanning(size + 1)[:size]


def _zero_phase(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    centre = len(kernel) // 2
    from scipy import signal

    return signal.oaconvolve(x, kernel)[centre : centre + len(x)]


def _rendered_side(a: np.ndarray, b: np.ndarray, sample_rate: int) -> np.ndarray:
    """(a − b)/2 with the bass removed, no part in common with a (it would pan the image) and
    held to SIDE_GAIN × a's level over ENVELOPE_SECONDS (renders may differ a lot in places)."""
    freqs, _, fade = _band_grid(sample_rate)
    s = _zero_phase((a - b) / 2, _fir(fade.astype(complex), freqs))
    s -= a * (a @ s) / max(float(a @ a), 1e-30)
    size = max(1, round(ENVELOPE_SECONDS * sample_rate))
    from scipy.ndimage import uniform_filter1d

    level_a = uniform_filter1d(a**2, size)  # mean square over the window
    level_s = uniform_filter1d(s**2, size)
    tiny = 1e-12 * float(a @ a) / max(len(a), 1) + 1e-30
    return s * np.minimum(1.0, SIDE_GAIN * np.sqrt((level_a + tiny) / (level_s + tiny)))
