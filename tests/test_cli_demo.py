"""`distill demo`, the README's main job, end to end with a tiny model (hidden test flags)."""

from __future__ import annotations

import json

import soundfile as sf

from helpers import distill


def test_demo_synthesizes_trains_renders_and_says_what_next(tmp_path):
    home, out = tmp_path / "home", tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "--home",
        str(home),
        "--minutes",
        "0.15",
        "--sounds",
        "6",
        "--channels",
        "4,8,8,16,16",
        "--chunk-seconds",
        "0.5",
        "--take-seconds",
        "1.5",
    ]
    result = distill(home, *args)
    assert result.returncode == 0, result.stderr + result.stdout
    corpus = sorted((out / "corpus").glob("*.wav"))
    assert len(corpus) == 6
    takes = sorted((out / "takes").glob("*.wav"))
    assert any(p.name.startswith("demo-neutral") for p in takes) and len(takes) >= 1
    for take in takes:
        info = sf.info(take)
        mode = json.loads(take.with_suffix(".json").read_text())["mode"]
        assert info.samplerate == 48_000
        if mode == "texture":  # exactly the length asked for
            assert info.frames == 72_000
        else:  # a one-shot: at most that, trimmed to its natural decay
            assert mode == "oneshot" and 2_400 <= info.frames <= 72_000, (mode, info.frames)
    assert "next:" in result.stdout and "distill generate demo" in result.stdout
    listing = distill(home, "model", "list", "--json")
    assert [m["name"] for m in json.loads(listing.stdout)["models"]] == ["demo"]


def test_demo_takes_push_sliders_that_a_loudness_target_does_not_level():
    from distill.cli.demo import _settings

    stems = [stem for stem, _ in _settings(["loudness", "brightness", "warmth"])]
    assert stems == [
        "demo-neutral",
        "demo-brightness-up",
        "demo-brightness-down",
        "demo-warmth-up",
        "demo-warmth-down",
    ]
    assert [s for s, _ in _settings(["loudness"])][1:] == ["demo-loudness-up", "demo-loudness-down"]
    assert _settings([]) == [("demo-neutral", [])]
