"""Sliders: features vs known answers, the slider mapping, and a model that learns brightness."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from distill.controls.analysis import (
    MIN_SCORE,
    analyze_controls,
    best_feature,
    chunk_batches,
    encode_means,
    principal_axes,
    recompute_controls,
)
from distill.controls.features import FEATURES, SILENCE_DB, compute_features
from distill.controls.sliders import Axis, Controls, slider_scale
from distill.errors import UserError
from distill.model.file import load_model_file
from distill.spectral import SpectralConfig, synthesize
from distill.training import package
from distill.training.session import train
from helpers import TINY_TRAINING, sine

RATE = 48_000
SPECTRAL = SpectralConfig(chunk_seconds=0.5)
TINY = TINY_TRAINING  # helpers: a 0.5 s chunk, a tiny VAE, seconds per run


def tone(freq: float, peak: float = 1.0) -> np.ndarray:
    """2 s of a sine at 48 kHz, full scale unless `peak` says otherwise."""
    return sine(freq, 2.0, RATE, amplitude=peak)


def noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(round(seconds * RATE))


def filtered(x: np.ndarray, kind: str, cutoff: float) -> np.ndarray:
    return signal.sosfilt(signal.butter(4, cutoff, kind, fs=RATE, output="sos"), x)


# -- features ---------------------------------------------------------------------------------


def test_sine_features_match_their_known_values():
    f = compute_features(tone(1000.0), RATE)
    assert f["centroid"] == pytest.approx(1000.0, rel=0.01)
    assert f["rolloff"] == pytest.approx(1000.0, abs=RATE / 2048)  # within one STFT bin (23 Hz)
    assert f["flatness"] < 1e-3
    assert f["rms"] == pytest.approx(-3.01, abs=0.01)  # full-scale sine: 1/√2
    assert f["zcr"] == pytest.approx(2000.0, rel=0.001)  # two crossings per period
    assert f["onset_density"] == 0.0
    assert compute_features(tone(1000.0, peak=0.5), RATE)["rms"] == pytest.approx(-9.03, abs=0.01)


def test_white_noise_is_flat_and_centred_at_a_quarter_of_the_rate():
    f = compute_features(noise(), RATE)
    # A periodogram bin of white noise is exponentially distributed: geometric / arithmetic mean
    # of its power = e^−γ = 0.561.
    assert f["flatness"] == pytest.approx(math.exp(-np.euler_gamma), abs=0.02)
    assert f["centroid"] == pytest.approx(RATE / 4, rel=0.02)  # flat spectrum: Nyquist / 2
    assert f["onset_density"] == 0.0  # steady noise has no onsets


def test_click_train_at_4_hz_has_4_onsets_per_second():
    x = np.zeros(3 * RATE)
    x[(np.arange(12) * RATE / 4 + RATE / 8).astype(int)] = 0.5  # 12 clicks in 3 s
    assert compute_features(x, RATE)["onset_density"] == pytest.approx(4.0, abs=0.34)
    assert compute_features(0.01 * x, RATE)["onset_density"] == pytest.approx(4.0, abs=0.34)


def test_low_high_ratio_says_which_end_holds_the_energy():
    assert compute_features(tone(200.0), RATE)["low_high_ratio"] == 60.0  # clamped: no highs
    assert compute_features(tone(8000.0), RATE)["low_high_ratio"] == -60.0
    dark = compute_features(filtered(noise(), "lowpass", 800), RATE)
    bright = compute_features(filtered(noise(), "highpass", 3000), RATE)
    assert dark["low_high_ratio"] > 20 > -20 > bright["low_high_ratio"]
    assert dark["centroid"] < 1000 < 5000 < bright["centroid"]
    assert dark["zcr"] < bright["zcr"]


def test_silence_and_tiny_inputs_give_finite_features():
    for x in (np.zeros(RATE), np.zeros(10), np.zeros(0), np.full(RATE, np.nan)):
        f = compute_features(x, RATE)
        assert set(f) == set(FEATURES) and all(math.isfinite(v) for v in f.values())
        assert f["rms"] == SILENCE_DB and f["centroid"] == 0.0 and f["onset_density"] == 0.0


# -- analysis pieces --------------------------------------------------------------------------


def test_pca_finds_the_direction_the_latents_vary_along():
    rng = np.random.default_rng(0)
    along = np.array([3.0, 4.0, 0.0, 0.0]) / 5
    latents = 2.0 + rng.normal(size=(200, 1)) * along + 0.01 * rng.normal(size=(200, 4))
    mean, directions, ratios = principal_axes(latents, max_components=8, min_variance=0.02)
    assert mean == pytest.approx(latents.mean(axis=0))
    assert len(directions) == 1 and ratios[0] > 0.99  # the noise axes explain < 2 % each
    assert abs(directions[0] @ along) == pytest.approx(1.0, abs=1e-3)
    _, none, _ = principal_axes(np.ones((10, 4)), 8, 0.02)
    assert len(none) == 0  # nothing varies: no sliders


def test_labels_follow_the_strongest_audible_correlation():
    position = np.linspace(0.0, 1.0, 9)
    flat = {name: np.ones(9) for name in FEATURES}
    brighter = flat | {"centroid": 500 * 2 ** (3 * position)}  # 3 octaves up
    assert best_feature(brighter)[0] == "centroid"
    assert best_feature(brighter)[1]["centroid"] == pytest.approx(1.0)
    # Perfectly monotone but inaudible (0.03 octave) next to a 12 dB loudness swing: loudness.
    mixed = flat | {"centroid": 1000 * 2 ** (0.03 * position), "rms": -30 + 12 * position}
    assert best_feature(mixed)[0] == "rms"
    noisy = flat | {"centroid": np.array([1, 3, 2, 5, 1, 4, 2, 3, 1]) * 1000.0}
    assert best_feature(noisy)[0] is None  # no trend: a neutral "axis N"
    # a label a stronger axis already has gives way to the next clearly audible feature ...
    both = brighter | {"flatness": 0.1 + 0.2 * position}
    assert best_feature(both, frozenset({"brightness"}))[0] == "flatness"
    # ... but not to an inaudible one: then the axis is neutral, never "brightness 2"
    assert best_feature(brighter, frozenset({"brightness"}))[0] is None


def test_a_slider_says_what_it_changes_and_by_how_much():
    from distill.controls.sliders import Axis, what_changes

    axis = Axis(
        label="brightness", variance=0.3, direction=(1.0, 0.0), std=1.0, low=-1.0, high=1.0,
        scale=1.5, correlations={"centroid": 1.0},
        changes={"centroid": 0.82, "rms": -4.1, "flatness": 0.001, "onset_density": 0.0},
    )  # fmt: skip
    assert what_changes(axis) == "brightness +0.8 oct, level -4.1 dB"
    again = Axis.from_dict(axis.to_dict())
    assert again == axis
    old = axis.to_dict()
    del old["changes"]  # a model file from before: still loads, says nothing
    assert Axis.from_dict(old).changes == {}


def test_big_datasets_are_capped_by_a_seeded_subsample():
    items = [(torch.full((2, 3, 4), float(i)), torch.zeros(1)) for i in range(50)]

    def picked(seed: int) -> list[float]:
        batches = list(chunk_batches(items, max_chunks=20, batch_size=8, seed=seed))
        assert [len(b) for b in batches] == [8, 8, 4]
        return torch.cat(batches)[:, 0, 0, 0].tolist()

    first = picked(0)
    assert len(set(first)) == 20 and first == sorted(first)  # distinct, in dataset order
    assert picked(0) == first and picked(1) != first
    whole = torch.cat(list(chunk_batches(items[:10], max_chunks=20)))
    assert whole[:, 0, 0, 0].tolist() == [float(i) for i in range(10)]


# -- the slider object ------------------------------------------------------------------------


def axis(label: str, direction, low: float, high: float, variance: float) -> Axis:
    return Axis(
        label=label,
        variance=variance,
        direction=tuple(direction),
        std=(high - low) / 4,
        low=low,
        high=high,
        scale=slider_scale(low, high),
        correlations={name: 0.1 * i for i, name in enumerate(FEATURES)},
    )


@pytest.fixture
def controls() -> Controls:
    return Controls(
        mean=(0.5, -0.25, 1.0 / 3.0, 2.0),
        axes=(
            axis("brightness", (1.0, 0.0, 0.0, 0.0), -1.2, 0.8, 0.6),
            axis("warmth", (0.0, 0.6, 0.8, 0.0), -0.3, 0.7, 0.25),
            axis("axis 3", (0.0, 0.8, -0.6, 0.0), -0.1, 0.1, 0.05),
        ),
        latent_std=(0.4, 0.2, 0.15, 1e-3),
    )


def test_controls_survive_the_model_file_json_exactly(controls):
    stored = json.loads(json.dumps(controls.to_dict()))
    assert Controls.from_dict(stored) == controls
    assert Controls.from_dict(stored).to_dict() == controls.to_dict()


def test_resolve_accepts_labels_numbers_and_any_case(controls):
    assert controls.resolve(["brightness=4", "2=-3.5", " AXIS  3 = 10"]) == {
        0: 4.0,
        1: -3.5,
        2: 10.0,
    }
    assert controls.resolve({"Warmth": -10, "1": 0.5}) == {1: -10.0, 0: 0.5}
    assert controls.resolve([]) == {}


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("sparkle=2", "brightness, warmth, axis 3"),
        ("4=1", "brightness, warmth, axis 3"),  # numbers run 1–3
        ("brightness=10.5", "from −10 to 10"),
        ("brightness=-11", "from −10 to 10"),
        ("brightness=loud", "from −10 to 10"),
        ("brightness=nan", "from −10 to 10"),
        ("brightness=inf", "from −10 to 10"),
        ("brightness", "NAME=VALUE"),
    ],
)
def test_resolve_refuses_with_one_helpful_line(controls, setting, complaint):
    with pytest.raises(UserError, match=complaint) as info:
        controls.resolve([setting])
    assert "\n" not in str(info.value)


def test_a_slider_set_twice_is_refused(controls):
    with pytest.raises(UserError, match="set twice"):
        controls.resolve(["brightness=1", "1=2"])


def test_zero_is_the_mean_and_distance_grows_with_the_slider(controls):
    mean = torch.tensor(controls.mean, dtype=torch.float32)
    assert torch.equal(controls.latent({}), mean)
    assert torch.equal(controls.latent({0: 0.0, 1: 0.0, 2: 0.0}), mean)
    for index, ax in enumerate(controls.axes):
        distances = [float((controls.latent({index: v}) - mean).norm()) for v in range(-10, 11)]
        magnitudes = [abs(v) / 10 * ax.scale for v in range(-10, 11)]
        assert distances == pytest.approx(magnitudes, abs=1e-6)
        positive = controls.latent({index: 5.0}) - mean  # + moves along the stored direction
        assert float(positive @ torch.tensor(ax.direction, dtype=torch.float32)) > 0
    with pytest.raises(ValueError):
        controls.latent({0: 10.5})
    with pytest.raises(ValueError):
        controls.latent({3: 1.0})


def test_safe_range_is_the_data_span_inside_the_slider_range(controls):
    lo, hi = controls.safe_range(0)  # data span −1.2 … 0.8, ±10 = 1.5 × 1.2
    assert (lo, hi) == pytest.approx((-10 / 1.5, 10 * 0.8 / 1.8))
    for index in range(len(controls)):
        lo, hi = controls.safe_range(index)
        assert -10 < lo < 0 < hi < 10
    lines = controls.describe()
    assert len(lines) == 3 and "brightness" in lines[0] and "60.0 %" in lines[0]


def test_rename_keeps_labels_unique_and_usable(controls):
    renamed = controls.rename("axis 3", "  Shimmer  ").rename(2, "air")
    assert renamed.labels == ["brightness", "air", "Shimmer"]
    assert controls.labels == ["brightness", "warmth", "axis 3"]  # the original is unchanged
    assert renamed.resolve(["shimmer=2", "AIR=1"]) == {2: 2.0, 1: 1.0}
    assert renamed.rename("air", "AIR").labels[1] == "AIR"  # its own name in another case
    for bad in ("Brightness", "", "   ", "7", "a=b", "x" * 41):
        with pytest.raises(UserError):
            controls.rename("warmth", bad)
    with pytest.raises(UserError, match="brightness, warmth, axis 3"):
        controls.rename("sparkle", "glow")


# -- a model that learns brightness -----------------------------------------------------------


def make_brightness_corpus(folder: Path) -> Path:
    """12 half-second noise bursts, lowpassed from 500 Hz to 12 kHz, all peaking at −1 dBFS:
    they differ in brightness and (by the filter) a little in loudness, in nothing else."""
    folder.mkdir(parents=True)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(240) / 240)  # 5 ms raised cosine
    for i, cutoff in enumerate(np.geomspace(500, 12_000, 12)):
        x = filtered(np.random.default_rng(i).standard_normal(RATE // 2), "lowpass", cutoff)
        x[:240] *= fade
        x[-240:] *= fade[::-1]
        sf.write(folder / f"{i:02d}.wav", 0.89 * x / np.abs(x).max(), RATE, subtype="FLOAT")
    return folder


@pytest.fixture(scope="module")
def bright(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    data = make_brightness_corpus(root / "noise")
    result = train(data, home=root / "home", name="bright", epochs=60, **TINY)
    return data, root / "home", result


def decoded_centroid(model, stats, latent: torch.Tensor) -> float:
    with torch.no_grad():
        spec = model.decode(latent[None])
    audio = synthesize(spec, SPECTRAL, length=SPECTRAL.chunk_samples, stats=stats)[0].numpy()
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    return compute_features(audio, RATE)["centroid"]


def test_a_brightness_corpus_gives_a_brightness_slider_that_brightens(bright):
    _, _, result = bright
    model, meta = load_model_file(result.model_file)
    controls = Controls.from_dict(meta.controls)
    assert "brightness" in controls.labels
    index = controls.labels.index("brightness")
    assert index == 0  # brightness is what varies most
    rho = controls.axes[index].correlations
    assert max(rho["centroid"], rho["rolloff"]) >= MIN_SCORE  # + is brighter along the sweep
    dark = decoded_centroid(model, meta.stats, controls.latent({index: -8.0}))
    light = decoded_centroid(model, meta.stats, controls.latent({index: +8.0}))
    assert light > 1.5 * dark, (dark, light)  # measured: 2636 → 6121 Hz


def test_analysis_is_deterministic_and_recomputable(bright):
    data, home, result = bright
    model, meta = load_model_file(result.model_file)
    chunks = _training_chunks(home, meta)
    again = analyze_controls(model, chunk_batches(chunks, seed=0), meta.stats, meta.spectral)
    assert again.to_dict() == meta.controls  # the same chunks give the same sliders, bit for bit
    mu = encode_means(model, chunk_batches(chunks))
    assert again.spread().numpy() == pytest.approx(mu.std(axis=0), rel=1e-5)
    assert again.latent({}).numpy() == pytest.approx(mu.mean(axis=0), rel=1e-5, abs=1e-6)
    recomputed = recompute_controls(result.model_file, data, cache_dir=home / "cache")
    assert recomputed.labels[0] == "brightness"


def _training_chunks(home: Path, meta):
    """The run's training chunks, rebuilt from its run.json and the shared cache."""
    from distill.data.cache import ChunkDataset, prepare_files

    run = json.loads((home / "runs" / "bright" / "run.json").read_text())
    files = [Path(run["data_dir"]) / name for name in run["train_files"]]
    prepared = prepare_files(files, home / "cache", meta.spectral)
    return ChunkDataset(prepared.files, meta.stats)


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def summary(self, lines):
        self.lines.extend(lines)

    def step(self, record, epoch, step, steps_per_epoch): ...

    def epoch(self, record): ...

    def message(self, text):
        self.lines.append(text)


def test_a_failing_analysis_warns_and_still_saves_the_model(bright, monkeypatch):
    data, home, _ = bright

    def broken(*args, **kwargs):
        raise RuntimeError("no sliders today")

    monkeypatch.setattr(package, "analyze_controls", broken)
    reporter = Messages()
    result = train(data, home=home, name="no-sliders", epochs=1, reporter=reporter, **TINY)
    assert result.model_file is not None and result.model_file.exists()
    _, meta = load_model_file(result.model_file)
    assert meta.controls is None
    assert any(
        "warning: latent analysis failed" in m and "no sliders today" in m for m in reporter.lines
    )
