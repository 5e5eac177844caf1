"""Binaural rendering of a mono signal with a spherical head model (no HRTF files).

    direction (azimuth, elevation) → lateral angle θ: sin θ = sin(az)·cos(el), + = right
    → per-ear delay, Woodworth: near ear −(a/c)·sin|θ|, far ear +(a/c)·|θ| from the head's
      centre, both shifted by +a/c so neither is negative; ITD = (a/c)(|θ| + sin|θ|),
      at most 0.656 ms = 31.5 samples at 48 kHz (a = 8.75 cm, c = 343 m/s)
    → per-ear head shadow, Brown & Duda (1998): H(ω) = (1 + jαω/2ω0) / (1 + jω/2ω0), ω0 = c/a,
      high frequencies ×α: α = 2 (+6 dB) facing the ear … 0.1 (−20 dB) at 150° from its axis.
      The shelf's phase adds low-frequency ITD: 0.84 ms below 500 Hz vs 0.66 ms above 1.5 kHz
      at 90°, the excess real heads show too (Kuhn 1977: up to 1.5×).

What a sphere cannot tell apart, this does not either: both cues depend only on θ, so a source at
30° and one at 150° (front/back) render the same, and elevation only narrows the lateral angle
(no pinna notch, so up and down sound alike). Output rows: 0 = left ear, 1 = right ear.
"""

from __future__ import annotations

import functools

import numpy as np

HEAD_RADIUS = 0.0875  # m
SPEED_OF_SOUND = 343.0  # m/s
MAX_DELAY = HEAD_RADIUS / SPEED_OF_SOUND * (1 + np.pi / 2)  # s, far ear at 90°: 0.656 ms
ALPHA_MIN, THETA_MIN = 0.1, 150.0  # Brown & Duda: deepest shadow, at this angle (degrees)
TAPS, KAISER_BETA = 32, 8.0  # fractional delay: error < −70 dB up to 20 kHz at 48 kHz
FRACTIONS = 4096  # delay steps per sample: ≤ 1/8192 sample off, < −70 dB error at 20 kHz
CHUNK = 1 << 15  # samples per block of a moving source (bounds memory to CHUNK × TAPS)


def woodworth_delays(lateral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) arrival delays in seconds for lateral angles in radians (+ = right)."""
    near = -np.sin(np.abs(lateral))  # path shortened by a·sin θ on the source's side
    far = np.abs(lateral)  # path lengthened by the arc a·θ round the head
    right = np.where(lateral >= 0, near, far)
    left = np.where(lateral >= 0, far, near)
    scale = HEAD_RADIUS / SPEED_OF_SOUND
    return scale * (1 + left), scale * (1 + right)


def shadow_alpha(ear_angle: np.ndarray) -> np.ndarray:
    """Brown & Duda's α for the angle (degrees) between an ear's axis and the source."""
    return (1 + ALPHA_MIN / 2) + (1 - ALPHA_MIN / 2) * np.cos(
        np.deg2rad(ear_angle / THETA_MIN * 180.0)
    )


def ear_cues(
    azimuth: np.ndarray, elevation: float, sample_rate: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((left, right) delays in samples, (left, right) shadow α) for azimuths in degrees."""
    sin_lat = np.sin(np.deg2rad(azimuth)) * np.cos(np.deg2rad(elevation))
    lateral = np.arcsin(np.clip(sin_lat, -1.0, 1.0))
    delay_l, delay_r = woodworth_delays(lateral)
    # The right ear's axis points to azimuth +90°: cos(angle to source) = sin θ.
    alpha_l = shadow_alpha(90.0 + np.rad2deg(lateral))
    alpha_r = shadow_alpha(90.0 - np.rad2deg(lateral))
    return (delay_l * sample_rate, delay_r * sample_rate), (alpha_l, alpha_r)


def shadow_split(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) with H = low + α·high for any α: H(s) = (αs + 2ω0)/(s + 2ω0) is the one-pole
    low-pass 2ω0/(s + 2ω0) plus α times its complement, so a moving α is a crossfade (no zipper)."""
    two_w0 = 2 * SPEED_OF_SOUND / HEAD_RADIUS  # rad/s: corner at 2ω0/2π ≈ 1.25 kHz
    from scipy import signal

    b, a = signal.bilinear([two_w0], [1.0, two_w0], fs=sample_rate)
    low = signal.lfilter(b, a, x)
    return low, x - low


@functools.cache
def _tap_table() -> np.ndarray:
    """(FRACTIONS + 1, TAPS) Kaiser-windowed sinc weights of x[n − i − j], j = −TAPS/2+1 … TAPS/2,
    for a delay of i + k/FRACTIONS samples in row k."""
    half = TAPS // 2
    u = np.arange(-half + 1, half + 1)[None, :] - np.linspace(0, 1, FRACTIONS + 1)[:, None]
    from scipy.special import i0

    window = i0(KAISER_BETA * np.sqrt(np.clip(1 - (u / half) ** 2, 0, None))) / i0(KAISER_BETA)
    weights = np.sinc(u) * window
    return weights / weights.sum(axis=1, keepdims=True)  # unity gain at 0 Hz


def _taps(frac: np.ndarray) -> np.ndarray:
    return _tap_table()[np.rint(frac * FRACTIONS).astype(np.int64)]


def delay_fixed(x: np.ndarray, delay: float) -> np.ndarray:
    """x delayed by `delay` ≥ 0 samples (fractional), same length, zeros shifted in."""
    whole = int(np.floor(delay))
    weights = _taps(np.array([delay - whole]))[0]
    shifted = np.concatenate([np.zeros(whole), x])
    from scipy import signal

    full = signal.oaconvolve(shifted, weights)  # y[n] = full[n + TAPS/2 − 1]
    return full[TAPS // 2 - 1 : TAPS // 2 - 1 + len(x)]


def read_delayed(padded: np.ndarray, pad: int, n: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """(P, N) parts(n − delay) at sample indices n, delay ≥ 0 samples each.

    padded: (P, pad + T + TAPS) signals read at the same moving delay, with `pad` ≥ the largest
    delay + TAPS/2 zeros before them and TAPS after."""
    whole = np.floor(delay).astype(np.int64)
    index = (pad + n - whole)[:, None] - np.arange(-TAPS // 2 + 1, TAPS // 2 + 1)  # (N, TAPS)
    return np.einsum("pnk,nk->pn", padded[:, index], _taps(delay - whole))


def binaural(
    audio: np.ndarray,
    sample_rate: int,
    azimuth: float,
    elevation: float,
    orbit: float | None,
) -> np.ndarray:
    """(T,) mono → (2, T) float32 left/right. `orbit`: seconds per clockwise turn (seen from
    above: front → right → back → left) starting at `azimuth`; None holds the source still."""
    x = np.asarray(audio, dtype=np.float64)
    low, high = shadow_split(x, sample_rate)
    if orbit is None:
        delays, alphas = ear_cues(np.array(azimuth), elevation, sample_rate)
        ears = [delay_fixed(low + a * high, float(d)) for d, a in zip(delays, alphas, strict=True)]
        return np.stack(ears).astype(np.float32)
    pad = int(np.ceil(MAX_DELAY * sample_rate)) + TAPS
    padded = np.pad(np.stack([low, high]), ((0, 0), (pad, TAPS)))  # (2, pad + T + TAPS)
    out = np.empty((2, len(x)), dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        n = np.arange(start, min(start + CHUNK, len(x)))
        azimuths = azimuth + 360.0 * n / (orbit * sample_rate)  # degrees
        delays, alphas = ear_cues(azimuths, elevation, sample_rate)
        # Delay both parts, then crossfade by the α of the output instant: the delay is < 1 ms,
        # so reading α there instead of at the source sample changes nothing audible.
        for ear, (d, a) in enumerate(zip(delays, alphas, strict=True)):
            low_d, high_d = read_delayed(padded, pad, n, d)
            out[ear, n] = low_d + a * high_d
    return out
