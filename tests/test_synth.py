import numpy as np
import pytest

from distill.audio import synth
from helpers import peak_hz

SR = 48_000

# name -> (maker taking a seed, expected length in samples, uses the seed)
MAKERS = {
    "sine": (lambda s: synth.sine(440, 0.5), 24_000, False),
    "chirp": (lambda s: synth.chirp(100, 4000, 1.0), 48_000, False),
    "harmonic_note": (lambda s: synth.harmonic_note(220, 1.0, 0.7, 1e-4, 0.2, rng=s), 48_000, True),
    "pluck": (lambda s: synth.pluck(196, 1.2, rng=s), 57_600, True),
    "bell": (lambda s: synth.bell(523.25, 1.5, rng=s), 72_000, True),
    "fm_tone": (lambda s: synth.fm_tone(330, 0.8), 38_400, False),
    "noise_pink": (lambda s: synth.noise_burst(0.7, "pink", rng=s), 33_600, True),
    "kick": (lambda s: synth.kick(rng=s), 28_800, True),
    "snare": (lambda s: synth.snare(rng=s), 24_000, True),
    "hihat_closed": (lambda s: synth.hihat(False, rng=s), 24_000, True),
    "hihat_open": (lambda s: synth.hihat(True, rng=s), 48_000, True),
    "clap": (lambda s: synth.clap(rng=s), 24_000, True),
}


def band_fraction(x: np.ndarray, lo: float, hi: float) -> float:
    """Share of the signal's energy between lo and hi Hz."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())


def period_hz(x: np.ndarray) -> float:
    """Pitch from the autocorrelation of the first 0.5 s: the shortest lag (40–2000 Hz) that
    correlates nearly as well as the best one, so a weak fundamental gives no octave error."""
    x = x[: SR // 2].astype(np.float64)
    r = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)[: SR // 40 + 2]
    lo = SR // 2000
    best = r[lo:].max()
    k = next(k for k in range(lo, len(r) - 1) if r[k] >= 0.9 * best and r[k] >= r[k + 1])
    shift = 0.5 * (r[k - 1] - r[k + 1]) / (r[k - 1] - 2 * r[k] + r[k + 1])
    return SR / (k + shift)


@pytest.mark.parametrize("name", MAKERS)
def test_sound_is_finite_loud_enough_and_right_length(name):
    make, length, _ = MAKERS[name]
    x = make(1)
    assert x.dtype == np.float32 and x.shape == (length,)
    assert np.isfinite(x).all()
    assert 0.05 < np.max(np.abs(x)) <= 1.0
    assert abs(x[0]) < 1e-3 and abs(x[-1]) < 1e-3  # faded: no click at either end


@pytest.mark.parametrize("name", MAKERS)
def test_same_seed_same_sound_other_seed_other_sound(name):
    make, _, seeded = MAKERS[name]
    np.testing.assert_array_equal(make(3), make(3))
    np.testing.assert_array_equal(make(np.random.default_rng(3)), make(3))
    if seeded:
        assert not np.allclose(make(3), make(4))


@pytest.mark.parametrize("f0", [65.41, 220.0, 440.0, 1046.5])
def test_pitched_sounds_sit_at_f0(f0):
    assert peak_hz(synth.sine(f0, 0.5)) == pytest.approx(f0, rel=0.005)
    note = synth.harmonic_note(f0, 1.0, brightness=0.8, rng=7)
    assert peak_hz(note[: SR // 2]) == pytest.approx(f0, rel=0.005)  # its first 0.5 s
    for seed in range(3):
        pluck = synth.pluck(f0, 1.0, brightness=0.3 * seed, rng=seed)
        assert period_hz(pluck) == pytest.approx(f0, rel=0.005)


def test_chirp_sweeps_from_f0_to_f1():
    x = synth.chirp(200, 3200, 1.0)
    assert peak_hz(x[2400:4800]) == pytest.approx(200 * 2 ** (4 * 0.075), rel=0.05)  # 50–100 ms
    assert peak_hz(x[-4800:-2400]) == pytest.approx(200 * 2 ** (4 * 0.925), rel=0.05)


def test_drums_sit_in_their_bands():
    assert band_fraction(synth.kick(rng=0), 0, 200) > 0.8
    assert band_fraction(synth.hihat(False, rng=0), 5000, SR / 2) > 0.8
    assert band_fraction(synth.hihat(True, rng=0), 5000, SR / 2) > 0.8
    assert band_fraction(synth.snare(rng=0), 150, 12000) > 0.8


def test_noise_colors_tilt_towards_low_frequencies():
    highs = [
        band_fraction(synth.noise_burst(1.0, color, rng=0), 5000, SR / 2)
        for color in ("white", "pink", "brown")
    ]
    # Power ∝ f^-α from 20 Hz to 24 kHz, flat below 20 Hz, puts 79 %, 19 % and 0.16 % of it
    # above 5 kHz for α = 0, 1, 2.
    assert highs == pytest.approx([0.79, 0.19, 0.0016], rel=0.25)


def test_demo_corpus_is_varied_and_reproducible():
    corpus = synth.demo_corpus(rng=5, count=20)
    names = [name for name, _ in corpus]
    assert len(set(names)) == 20
    assert len({name.split("_")[1] for name in names}) == 10  # every kind appears
    for _, x in corpus:
        assert 0.5 * SR <= len(x) <= 2.0 * SR
        assert np.isfinite(x).all() and 0.05 < np.max(np.abs(x)) <= 1.0
    again = synth.demo_corpus(rng=5, count=20)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(corpus, again, strict=True))
    assert not np.array_equal(synth.demo_corpus(rng=6, count=1)[0][1], corpus[0][1])


def test_note_names():
    assert [synth.note_name(m) for m in (36, 60, 61, 84)] == ["c2", "c4", "cs4", "c6"]
    assert synth.midi_to_hz(69) == 440.0
