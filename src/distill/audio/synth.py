"""Deterministic DSP sound makers for tests, benchmarks and the built-in demo corpus.

Every maker returns float32 mono peaking at −1 dBFS, with short raised-cosine fades so no file
starts or ends with a click. Makers that use noise take `rng`: a `numpy.random.Generator` or an
int seed, so the same seed always gives the same samples.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from distill.audio.read import INTERNAL_RATE

PEAK = 10 ** (-1 / 20)  # −1 dBFS: headroom so a later resampler cannot clip

Seed = np.random.Generator | int

# Church-bell partials relative to the strike note (hum, prime, tierce, quint, nominal, ...),
# with the decay time of each as a fraction of the note: low partials ring longest.
_BELL_RATIOS = (0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011, 4.166, 5.433)
_BELL_DECAYS = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1)

# Six square waves at the TR-808 hi-hat's detuned frequencies (Hz): a metallic, non-harmonic base.
_HAT_FREQS = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)

_COLORS = ("white", "pink", "brown")  # noise power ∝ f^-α with α = the index

_NOTE_NAMES = ("c", "cs", "d", "ds", "e", "f", "fs", "g", "gs", "a", "as", "b")


def note_name(midi: int) -> str:
    """`60 -> "c4"`, `61 -> "cs4"`: lower-case and file-name safe."""
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _times(seconds: float, sample_rate: int) -> np.ndarray:
    return np.arange(round(seconds * sample_rate)) / sample_rate


def _finish(x, sample_rate: int, fade_in: float = 0.002, fade_out: float = 0.01) -> np.ndarray:
    """Fade in/out (seconds), normalize to PEAK, return float32."""
    x = np.asarray(x, dtype=np.float64).copy()
    for seconds, edge in ((fade_in, slice(None)), (fade_out, slice(None, None, -1))):
        n = min(len(x), max(1, round(seconds * sample_rate)))
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)  # raised cosine, 0 → ~1
        x[edge][:n] *= ramp
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak > 0:
        x *= PEAK / peak
    return x.astype(np.float32)


def _decay(t: np.ndarray, tau: float) -> np.ndarray:
    """Exponential envelope falling 60 dB over `tau` seconds."""
    return 10 ** (-3 * t / tau)


def _filter(x: np.ndarray, kind: str, cutoff, sample_rate: int, order: int = 4) -> np.ndarray:
    sos = signal.butter(order, cutoff, btype=kind, fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def sine(freq: float, seconds: float, sample_rate: int = INTERNAL_RATE) -> np.ndarray:
    t = _times(seconds, sample_rate)
    return _finish(np.sin(2 * np.pi * freq * t), sample_rate, 0.005, 0.005)


def chirp(f0: float, f1: float, seconds: float, sample_rate: int = INTERNAL_RATE) -> np.ndarray:
    """Exponential sweep from f0 to f1 Hz: equal time per octave, like a musical glide."""
    t = _times(seconds, sample_rate)
    k = np.log(f1 / f0) / seconds  # growth rate of ln(frequency), 1/s
    phase = 2 * np.pi * f0 * t if k == 0 else 2 * np.pi * f0 * np.expm1(k * t) / k
    return _finish(np.sin(phase), sample_rate, 0.005, 0.005)


def harmonic_note(
    f0: float,
    seconds: float,
    brightness: float = 0.5,
    inharmonicity: float = 0.0,
    vibrato: float = 0.0,
    rng: Seed = 0,
    sample_rate: int = INTERNAL_RATE,
) -> np.ndarray:
    """Additive note like a sampled instrument: partial n has amplitude n^-(2.5 − 2·brightness)
    and decays faster the higher it is. `inharmonicity` is the piano-string B coefficient
    (f_n = n·f0·√(1 + B·n²); ~1e-4 for a piano), `vibrato` the depth in semitones at 5.5 Hz."""
    rng = np.random.default_rng(rng)
    t = _times(seconds, sample_rate)
    slope = 2.5 - 2.0 * brightness
    wobble = 2 ** (vibrato / 12 * np.sin(2 * np.pi * 5.5 * t)) - 1  # relative pitch deviation
    out = np.zeros_like(t)
    for n in range(1, 41):
        fn = n * f0 * np.sqrt(1 + inharmonicity * n * n)
        if fn > 0.45 * sample_rate:
            break
        inst = fn * (1 + wobble)  # instantaneous frequency, Hz
        phase = 2 * np.pi * np.cumsum(inst) / sample_rate + rng.uniform(0, 2 * np.pi)
        tau = 1.5 * seconds / (1 + 0.4 * (n - 1))
        out += n**-slope * _decay(t, tau) * np.sin(phase)
    return _finish(out, sample_rate, 0.005, 0.03)


def pluck(
    f0: float,
    seconds: float,
    decay: float = 1.5,
    brightness: float = 0.5,
    rng: Seed = 0,
    sample_rate: int = INTERNAL_RATE,
) -> np.ndarray:
    """Karplus–Strong string: a noise burst circulating in a delay line of one period.

    The loop is a two-point average (half a sample of delay) plus a linear-interpolated fractional
    delay, so the period is exact; `decay` is the time in seconds to fall 60 dB."""
    rng = np.random.default_rng(rng)
    n = round(seconds * sample_rate)
    delay = sample_rate / f0 - 0.5
    period, frac = int(delay), delay - int(delay)
    gain = 10 ** (-3 / (decay * f0))  # per trip round the loop, f0 trips per second
    burst = rng.uniform(-1, 1, period)
    pole = 0.9 * (1 - brightness)  # one-pole lowpass on the burst: darker pluck, softer attack
    burst = signal.lfilter([1 - pole], [1, -pole], burst)
    buf = np.zeros(n + 2)  # two leading zeros stand in for samples before the burst
    buf[2 : 2 + period] = burst - burst.mean()
    # Each sample needs only samples ≥ one period back, so a whole period is computed at once.
    for start in range(2 + period, n + 2, period):
        end = min(start + period, n + 2)
        a, b, c = (buf[start - period - k : end - period - k] for k in (0, 1, 2))
        buf[start:end] = gain * (0.5 * (1 - frac) * a + 0.5 * b + 0.5 * frac * c)
    return _finish(buf[2:], sample_rate, 0.001, 0.02)


def bell(f0: float, seconds: float, rng: Seed = 0, sample_rate: int = INTERNAL_RATE) -> np.ndarray:
    """Inharmonic church-bell partials, each ratio and level jittered a little by `rng`."""
    rng = np.random.default_rng(rng)
    t = _times(seconds, sample_rate)
    out = np.zeros_like(t)
    for ratio, life in zip(_BELL_RATIOS, _BELL_DECAYS, strict=True):
        freq = f0 * ratio * (1 + rng.uniform(-0.005, 0.005))
        if freq > 0.45 * sample_rate:
            continue
        level = rng.uniform(0.5, 1.0) / np.sqrt(ratio)
        out += level * _decay(t, life * seconds * 1.5) * np.sin(2 * np.pi * freq * t)
    return _finish(out, sample_rate, 0.001, 0.03)


def fm_tone(
    carrier: float,
    seconds: float,
    ratio: float = 2.0,
    index: float = 3.0,
    index_decay: float = 0.5,
    sample_rate: int = INTERNAL_RATE,
) -> np.ndarray:
    """Two-operator FM: modulator at carrier·ratio Hz, index falling 60 dB over index_decay s,
    so the tone starts bright and mellows (an e-piano or brass-like bite)."""
    t = _times(seconds, sample_rate)
    mod = index * _decay(t, index_decay) * np.sin(2 * np.pi * carrier * ratio * t)
    out = _decay(t, 2 * seconds) * np.sin(2 * np.pi * carrier * t + mod)
    return _finish(out, sample_rate, 0.005, 0.03)


def noise_burst(
    seconds: float, color: str = "white", rng: Seed = 0, sample_rate: int = INTERNAL_RATE
) -> np.ndarray:
    """Noise with power ∝ f^-α: white (α=0), pink (α=1), brown (α=2), shaped in the FFT domain."""
    alpha = _COLORS.index(color)
    rng = np.random.default_rng(rng)
    n = round(seconds * sample_rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum *= np.maximum(freqs, 20.0) ** (-alpha / 2)  # floor at 20 Hz: no infinite DC boost
    return _finish(np.fft.irfft(spectrum, n), sample_rate, 0.02, 0.05)


def kick(
    seconds: float = 0.6, pitch: float = 50.0, rng: Seed = 0, sample_rate: int = INTERNAL_RATE
) -> np.ndarray:
    """Sine dropping from 3·pitch to pitch Hz in ~40 ms, plus a faint 2 ms noise click."""
    rng = np.random.default_rng(rng)
    t = _times(seconds, sample_rate)
    freq = pitch * (1 + 2 * np.exp(-t / 0.04))
    body = _decay(t, 0.5) * np.sin(2 * np.pi * np.cumsum(freq) / sample_rate)
    click = 0.1 * rng.standard_normal(len(t)) * np.exp(-t / 0.002)
    return _finish(body + _filter(click, "lowpass", 3000, sample_rate), sample_rate, 0.0005)


def snare(seconds: float = 0.5, rng: Seed = 0, sample_rate: int = INTERNAL_RATE) -> np.ndarray:
    """Two drum-head modes (180, 330 Hz) under band-passed noise for the wires."""
    rng = np.random.default_rng(rng)
    t = _times(seconds, sample_rate)
    head = (np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 330 * t)) * _decay(t, 0.15)
    wires = _filter(rng.standard_normal(len(t)), "bandpass", (1000, 10000), sample_rate)
    return _finish(0.6 * head + wires * _decay(t, 0.25), sample_rate, 0.0005)


def hihat(
    open: bool = False,
    seconds: float | None = None,
    rng: Seed = 0,
    sample_rate: int = INTERNAL_RATE,
) -> np.ndarray:
    """Square-wave cluster plus noise, high-passed at 7 kHz; by default closed 0.5 s, open 1 s."""
    rng = np.random.default_rng(rng)
    tau = 0.8 if open else 0.12  # s to fall 60 dB
    seconds = (1.0 if open else 0.5) if seconds is None else seconds
    t = _times(seconds, sample_rate)
    metal = sum(np.sign(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))) for f in _HAT_FREQS)
    raw = metal / len(_HAT_FREQS) + 0.5 * rng.standard_normal(len(t))
    hat = _filter(raw, "highpass", 7000, sample_rate) * _decay(t, tau)
    return _finish(hat, sample_rate, 0.0005)


def clap(seconds: float = 0.5, rng: Seed = 0, sample_rate: int = INTERNAL_RATE) -> np.ndarray:
    """Three 10 ms-apart noise flams then a decaying tail, band-passed 800–3000 Hz like hands."""
    rng = np.random.default_rng(rng)
    t = _times(seconds, sample_rate)
    env = sum(np.where(t >= d, np.exp(-(t - d) / 0.004), 0.0) for d in (0.0, 0.01, 0.02))
    env = env + 0.5 * np.where(t >= 0.03, _decay(t - 0.03, 0.3), 0.0)
    noise = _filter(rng.standard_normal(len(t)), "bandpass", (800, 3000), sample_rate, order=2)
    return _finish(noise * env, sample_rate, 0.0005)


def demo_corpus(
    rng: Seed = 0, count: int = 24, sample_rate: int = INTERNAL_RATE
) -> list[tuple[str, np.ndarray]]:
    """`count` varied named sounds, 0.5–2 s each, cycling through plucks, bells, drums, noise,
    FM and additive notes with pitches C2–C6 and brightness drawn from `rng`."""
    rng = np.random.default_rng(rng)
    sr = sample_rate

    def make(kind: str, seed: int, midi: int, seconds: float, bright: float) -> np.ndarray:
        f0 = midi_to_hz(midi)
        return {
            "note": lambda: harmonic_note(f0, seconds, bright, 1e-4 * bright, 0.0, seed, sr),
            "pluck": lambda: pluck(f0, seconds, seconds, bright, seed, sr),
            "bell": lambda: bell(f0, seconds, seed, sr),
            "kick": lambda: kick(seconds, 40 + 30 * bright, seed, sr),
            "fm": lambda: fm_tone(f0, seconds, 1 + round(3 * bright), 1 + 4 * bright, 0.4, sr),
            "snare": lambda: snare(seconds, seed, sr),
            "hihat": lambda: hihat(bright > 0.5, None, seed, sr),
            "noise": lambda: noise_burst(seconds, _COLORS[seed % 3], seed, sr),
            "bowed": lambda: harmonic_note(f0, seconds, bright, 0.0, 0.3, seed, sr),
            "clap": lambda: clap(seconds, seed, sr),
        }[kind]()

    kinds = ("note", "pluck", "bell", "kick", "fm", "snare", "hihat", "noise", "bowed", "clap")
    pitched = {"note", "pluck", "bell", "fm", "bowed"}
    sounds = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        seed, midi = int(rng.integers(2**31)), int(rng.integers(36, 85))  # C2–C6
        seconds, bright = float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.0, 1.0))
        label = f"{kind}_{note_name(midi)}" if kind in pitched else kind
        label = f"noise_{_COLORS[seed % 3]}" if kind == "noise" else label
        sounds.append((f"{i:03d}_{label}", make(kind, seed, midi, seconds, bright)))
    return sounds
