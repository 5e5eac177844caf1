"""Stereo and binaural output measured on noise and tones: correlation, mono sum, ITD, ILD."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from distill.errors import UserError
from distill.generation.binaural import HEAD_RADIUS, SPEED_OF_SOUND, delay_fixed, read_delayed
from distill.generation.spatial import SpatialOptions, spatialize
from helpers import sine

SR = 48_000  # Hz


def noise(seconds: float = 2.0, seed: int = 1) -> np.ndarray:
    return (0.25 * np.random.default_rng(seed).standard_normal(round(seconds * SR))).astype(
        np.float32
    )


def tone(seconds: float = 2.0, f0: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    partials = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, int(20_000 / f0)))
    return (0.3 * partials).astype(np.float32)


def energy(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(x @ x)


def correlation(y: np.ndarray) -> float:
    left, right = y.astype(np.float64)
    return float(left @ right / math.sqrt(energy(left) * energy(right)))


def sum_loss_db(x: np.ndarray, y: np.ndarray) -> float:
    return 10 * math.log10(energy(y[0] + y[1]) / energy(2 * x))


def total_db(x: np.ndarray, y: np.ndarray) -> float:
    return 10 * math.log10((energy(y[0]) + energy(y[1])) / (2 * energy(x)))


def right_over_left_db(y: np.ndarray, band: tuple[float, float] | None = None) -> float:
    if band is None:
        return 10 * math.log10(energy(y[1]) / energy(y[0]))
    freqs, power = signal.welch(y.astype(np.float64), SR, nperseg=4096)
    inside = (freqs >= band[0]) & (freqs < band[1])
    return 10 * math.log10(power[1, inside].sum() / power[0, inside].sum())


def lag_of_left(y: np.ndarray) -> float:
    """Samples by which the left channel trails the right (parabolic peak of the correlation)."""
    left, right = y.astype(np.float64)
    corr = signal.correlate(left, right, method="fft")
    k = int(np.argmax(corr))
    before, peak, after = corr[k - 1 : k + 2]
    return signal.correlation_lags(len(left), len(right))[k] + 0.5 * (before - after) / (
        before - 2 * peak + after
    )


def woodworth_samples(lateral_deg: float) -> float:
    theta = math.radians(abs(lateral_deg))
    return HEAD_RADIUS / SPEED_OF_SOUND * (theta + math.sin(theta)) * SR


# --- stereo ---------------------------------------------------------------------------------


def test_width_zero_is_the_input():
    x = noise()
    y = spatialize(x, SR, SpatialOptions("stereo", width=0.0))
    assert y.shape == (2, len(x))
    assert np.array_equal(y[0], x) and np.array_equal(y[1], x)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["noise", "tone"])
def test_full_width_is_wide_mono_compatible_and_as_loud(kind, seed):
    x = noise() if kind == "noise" else tone()
    y = spatialize(x, SR, SpatialOptions("stereo", width=1.0), seed=seed)
    assert correlation(y) < 0.6  # measured 0.47-0.49 on noise, 0.39-0.43 on the tone
    assert sum_loss_db(x, y) >= -1.0  # measured −0.71 … −0.89 dB
    assert abs(total_db(x, y)) <= 1.0  # measured +0.57 … +0.69 dB
    assert abs(right_over_left_db(y)) < 1.0  # the image stays centred


def test_width_narrows_monotonically():
    x = noise()
    corrs = [correlation(spatialize(x, SR, SpatialOptions("stereo", width=w))) for w in (0, 0.5, 1)]
    assert corrs[0] == pytest.approx(1.0) and corrs[0] > corrs[1] > corrs[2]


def test_bass_stays_mono_and_low_tones_stay_centred():
    bass = sine(60.0)
    y = spatialize(bass, SR, SpatialOptions("stereo", width=1.0))
    assert correlation(y) > 0.99
    # Below 1.5 kHz the side is ±90° to the mid, so L and R are equally loud: no pitch pans.
    for freq in (300.0, 700.0, 1200.0):
        y = spatialize(sine(freq), SR, SpatialOptions("stereo", width=1.0))
        assert abs(right_over_left_db(y)) < 0.1


def test_rendered_side_builds_stereo_around_the_render():
    a, other = noise(seed=1), noise(seed=2)
    near = (a + 0.3 * other).astype(np.float32)
    y = spatialize(a, SR, SpatialOptions("stereo", width=1.0), side=near)
    assert 0.6 < correlation(y) < 0.99
    # The mono sum is the render itself, scaled: no comb filtering between the two renders.
    gain = float((y[0] + y[1]) @ a) / (2 * energy(a))
    np.testing.assert_allclose(y[0] + y[1], 2 * gain * a, atol=1e-5)
    assert sum_loss_db(a, y) >= -1.0 and abs(total_db(a, y)) <= 1.0
    same = spatialize(a, SR, SpatialOptions("stereo", width=1.0), side=a)
    np.testing.assert_array_equal(same[0], a)
    np.testing.assert_array_equal(same[1], a)


@pytest.mark.parametrize("kind", ["unrelated and loud", "inverted"])
def test_a_wild_rendered_side_is_held_in_bounds(kind):
    a = noise(seed=1)
    wild = 4.0 * noise(seed=3) if kind == "unrelated and loud" else -a
    y = spatialize(a, SR, SpatialOptions("stereo", width=1.0), side=wild)
    assert sum_loss_db(a, y) >= -1.0 and abs(total_db(a, y)) <= 1.0


# --- binaural -------------------------------------------------------------------------------


@pytest.mark.parametrize("azimuth", [90.0, -90.0, 30.0, -45.0])
def test_itd_follows_woodworth(azimuth):
    y = spatialize(noise(), SR, SpatialOptions("binaural", azimuth=azimuth))
    expected = math.copysign(woodworth_samples(azimuth), azimuth)  # 31.48 samples at 90°
    assert lag_of_left(y) == pytest.approx(expected, abs=2.0)  # measured 31.73 at 90°


def test_elevation_narrows_the_lateral_angle():
    # sin θ = sin 90° · cos 60° → θ = 30°
    y = spatialize(noise(), SR, SpatialOptions("binaural", azimuth=90.0, elevation=60.0))
    assert lag_of_left(y) == pytest.approx(woodworth_samples(30.0), abs=2.0)


@pytest.mark.parametrize("azimuth", [90.0, -90.0])
def test_head_shadow_makes_the_near_ear_louder_mostly_at_high_frequencies(azimuth):
    y = spatialize(noise(), SR, SpatialOptions("binaural", azimuth=azimuth))
    sign = math.copysign(1.0, azimuth)
    assert sign * right_over_left_db(y) >= 3.0  # measured 14.2 dB
    low = sign * right_over_left_db(y, (50.0, 500.0))  # measured 0.9 dB
    high = sign * right_over_left_db(y, (4000.0, 16000.0))  # measured 16.1 dB
    assert high > low + 10.0


@pytest.mark.parametrize(("azimuth", "elevation"), [(0.0, 0.0), (180.0, 0.0), (40.0, 90.0)])
def test_sources_on_the_median_plane_reach_both_ears_alike(azimuth, elevation):
    y = spatialize(noise(), SR, SpatialOptions("binaural", azimuth=azimuth, elevation=elevation))
    assert np.abs(y[0] - y[1]).max() < 1e-6


def test_a_sphere_cannot_tell_front_from_back():
    x = noise()
    front = spatialize(x, SR, SpatialOptions("binaural", azimuth=30.0))
    back = spatialize(x, SR, SpatialOptions("binaural", azimuth=150.0))
    np.testing.assert_allclose(front, back, atol=1e-6)


def test_orbit_swings_round_the_head_without_clicks():
    y = spatialize(noise(), SR, SpatialOptions("binaural", orbit=1.0))
    block = SR // 20  # 50 ms
    ratios = [right_over_left_db(y[:, i : i + block]) for i in range(0, SR, block)]
    assert max(ratios) > 10.0 and min(ratios) < -10.0  # measured ±15 dB
    assert np.argmax(ratios) < np.argmin(ratios)  # right first: the orbit turns clockwise
    x = sine(440.0, seconds=2.0)
    y = spatialize(x, SR, SpatialOptions("binaural", orbit=0.5))
    # 440 Hz gains ≤ 1.15× at the near ear; a click or zipper step would jump far more.
    assert np.abs(np.diff(y, axis=1)).max() < 1.25 * np.abs(np.diff(x)).max()


def test_a_very_slow_orbit_matches_the_fixed_source():
    x = noise(0.5)
    moving = spatialize(x, SR, SpatialOptions("binaural", azimuth=60.0, orbit=1e9))
    fixed = spatialize(x, SR, SpatialOptions("binaural", azimuth=60.0))
    np.testing.assert_allclose(moving, fixed, atol=1e-5)


def test_fractional_delay_matches_an_analytic_sine():
    n = np.arange(SR // 4)
    freq, delay = 15_000.0 / SR, 10.3  # cycles per sample, samples
    x = np.sin(2 * np.pi * freq * n)
    expected = np.sin(2 * np.pi * freq * (n - delay))
    fixed = delay_fixed(x, delay)
    moving = read_delayed(np.pad(x[None], ((0, 0), (64, 64))), 64, n, np.full(len(n), delay))[0]
    steady = slice(64, -64)  # away from the start and end, where the window is cut
    for y in (fixed, moving):
        assert np.abs(y[steady] - expected[steady]).max() < 1e-3  # −60 dB


# --- every mode -----------------------------------------------------------------------------

ALL_MODES = [
    SpatialOptions("mono"),
    SpatialOptions("stereo", width=1.0),
    SpatialOptions("binaural", azimuth=90.0),
    SpatialOptions("binaural", azimuth=-120.0, elevation=20.0, orbit=0.7),
]


@pytest.mark.parametrize("options", ALL_MODES, ids=lambda o: f"{o.mode}-{o.orbit}")
def test_every_mode_is_finite_bounded_and_repeatable(options):
    x = (tone(1.0) + noise(1.0)).astype(np.float32)
    y = spatialize(x, SR, options, seed=5)
    assert y.dtype == np.float32
    assert y.shape == ((len(x),) if options.channels == 1 else (2, len(x)))
    assert np.isfinite(y).all()
    assert np.abs(y).max() <= 2.0 * np.abs(x).max()
    np.testing.assert_array_equal(y, spatialize(x, SR, options, seed=5))


@pytest.mark.parametrize("options", ALL_MODES[1:], ids=lambda o: f"{o.mode}-{o.orbit}")
def test_silence_before_the_sound_stays_silent(options):
    # A circular (FFT) filter would wrap the end of the sound round to the start.
    x = np.concatenate([np.zeros(SR // 10, np.float32), noise(0.5)])
    y = spatialize(x, SR, options)
    assert np.abs(y[:, : SR // 20]).max() < 1e-6


def test_mono_is_an_unchanged_copy():
    x = noise(0.1)
    y = spatialize(x, SR, SpatialOptions())
    assert y is not x and np.array_equal(y, x) and y.dtype == np.float32


def test_seeds_pick_different_decorrelators():
    x = noise(0.5)
    one = spatialize(x, SR, SpatialOptions("stereo"), seed=1)
    two = spatialize(x, SR, SpatialOptions("stereo"), seed=2)
    assert not np.allclose(one, two)


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SpatialOptions("surround"), "mono, stereo, binaural"),
        (SpatialOptions("stereo", width=1.5), "between 0 and 1"),
        (SpatialOptions("stereo", width=float("nan")), "between 0 and 1"),
        (SpatialOptions("binaural", azimuth=200.0), "between -180 and 180"),
        (SpatialOptions("binaural", elevation=-91.0), "between -90 and 90"),
        (SpatialOptions("binaural", orbit=0.0), "positive number of seconds"),
        (SpatialOptions("binaural", orbit=-2.0), "positive number of seconds"),
    ],
)
def test_invalid_options_say_the_valid_range(options, message):
    with pytest.raises(UserError, match=message):
        spatialize(noise(0.1), SR, options)


def test_options_round_trip_and_count_channels():
    options = SpatialOptions("binaural", width=0.2, azimuth=-30.0, elevation=10.0, orbit=8.0)
    assert SpatialOptions.from_dict(options.to_dict()) == options
    assert SpatialOptions.from_dict({}) == SpatialOptions()
    assert [SpatialOptions(m).channels for m in ("mono", "stereo", "binaural")] == [1, 2, 2]
    with pytest.raises(UserError, match="unknown spatial settings"):
        SpatialOptions.from_dict({"mode": "stereo", "spread": 1})
