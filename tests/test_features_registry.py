"""The slider features table: every record measures something finite, and the latent analysis
names, ranks and scores axes by exactly what the record says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distill.controls import analysis
from distill.controls.features import FEATURE_RECORDS, FEATURES, Sound, compute_features

RATE = 48_000  # Hz
POSITION = np.linspace(0.0, 1.0, 9)  # a 9-point sweep, as analyze_controls makes


def signals() -> dict[str, np.ndarray]:
    t = np.arange(RATE) / RATE
    rng = np.random.default_rng(0)
    clicks = np.where(np.arange(RATE) % 12_000 < 50, 1.0, 0.0) * rng.standard_normal(RATE)
    return {
        "tone": 0.5 * np.sin(2 * np.pi * 1000 * t),
        "noise": 0.1 * rng.standard_normal(RATE),
        "clicks": clicks,
        "silence": np.zeros(RATE),
        "shorter than a frame": 0.5 * np.sin(2 * np.pi * 1000 * t[:100]),
    }


def moving(name: str, times_audible: float) -> np.ndarray:
    """A sweep of feature `name` that rises `times_audible` × its record's audible change."""
    feature = analysis._RECORDS[name]
    rise = times_audible * feature.audible_change * POSITION
    return 1000.0 * 2.0**rise if feature.octaves else 10.0 + rise


def test_the_names_are_unique_and_in_the_stored_order():
    names = [f.name for f in FEATURE_RECORDS]
    assert len(set(names)) == len(names) and tuple(names) == FEATURES
    assert len({f.rank for f in FEATURE_RECORDS}) == len(names)  # ties need a strict order
    assert list(compute_features(signals()["tone"], RATE)) == list(FEATURES)


@pytest.mark.parametrize("kind", list(signals()))
def test_every_feature_is_finite(kind):
    sound = Sound.of(signals()[kind], RATE)
    for feature in FEATURE_RECORDS:
        value = feature.measure(sound)
        assert isinstance(value, float) and math.isfinite(value), (feature.name, kind)


@pytest.mark.parametrize("feature", FEATURE_RECORDS, ids=lambda f: f.name)
def test_the_analysis_names_an_axis_by_each_record(feature):
    flat = {name: np.full(9, 10.0) for name in FEATURES}
    sweep = flat | {feature.name: moving(feature.name, 2.0)}
    # the change is measured in the record's unit (octaves or its own), in audible steps
    assert analysis.audible_change(feature.name, sweep[feature.name]) == pytest.approx(2.0)
    assert analysis.change(feature.name, sweep[feature.name]) == pytest.approx(
        2.0 * feature.audible_change
    )
    chosen, rhos = analysis.best_feature(sweep)
    assert chosen == feature.name and rhos[feature.name] == pytest.approx(1.0)
    assert analysis.LABELS[chosen] == feature.label
    assert analysis.best_feature(sweep, frozenset({feature.label}))[0] is None  # label taken
    # half the audible change scores |ρ| · 0.5 = 0.5 < MIN_SCORE: a neutral axis
    quiet = flat | {feature.name: moving(feature.name, 0.5)}
    assert analysis.best_feature(quiet)[0] is None


def test_exact_ties_go_to_the_lowest_rank():
    everything = {name: moving(name, 2.0) for name in FEATURES}  # every score is exactly 1
    taken: frozenset[str] = frozenset()
    for feature in sorted(FEATURE_RECORDS, key=lambda f: f.rank):
        if feature.label in taken:
            continue  # a lower rank already named an axis by this label
        assert analysis.best_feature(everything, taken)[0] == feature.name
        taken |= {feature.label}
    assert analysis.best_feature(everything, taken)[0] is None
