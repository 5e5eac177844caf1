"""Generation history (Python API) on a copy of the tiny model's home, with real takes: kept
files, list/get/delete, compare, the A/B file, bit-exact replay, failures and two writers."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from PIL import Image

from distill.audio.thumbnail import THUMB_HEIGHT, THUMB_WIDTH
from distill.audio.write import ExportOptions
from distill.errors import UserError
from distill.generation.loaded import load
from distill.generation.render import Take, render_takes, replay_history
from distill.generation.spatial import SpatialOptions
from distill.library import history as history_module
from distill.library.history import History
from distill.library.store import Library


@pytest.fixture
def loaded(home):
    return load("tiny", home=home, device="cpu")


def render(loaded, home: Path, out: Path, *, seed: int = 1, options=None, **params) -> Take:
    """One 1-second take written to `out` (not recorded)."""
    options = options or ExportOptions()
    params = {"mode": "texture"} | params  # exactly 1 s (a one-shot would end at its decay)
    (take,) = render_takes(loaded, loaded.params(1.0, seed=seed, **params), options, out, home=home)
    return take


def sidecar(take: Take) -> dict:
    return json.loads(take.export.sidecar_path.read_text(encoding="utf-8"))


def test_record_keeps_audio_and_thumbnail_and_list_get_delete(loaded, home, tmp_path):
    history = History(home)
    takes = [render(loaded, home, tmp_path / "out", seed=s) for s in (5, 6)]
    first, second = (history.record(sidecar(t), t.path) for t in takes)

    for entry, take in zip((first, second), takes, strict=True):
        assert entry.audio.parent == home / "history" / entry.id
        assert entry.audio.read_bytes() == take.path.read_bytes()
        assert (entry.model_name, entry.seed, entry.duration) == ("tiny", take.params.seed, 1.0)
        assert entry.model_id == loaded.model_id and entry.source == str(take.path.resolve())
        assert entry.sidecar == sidecar(take)
        picture = np.asarray(Image.open(entry.thumbnail))
        assert picture.shape == (THUMB_HEIGHT, THUMB_WIDTH, 3)
        assert (picture == (79, 195, 247)).all(axis=2).sum() > THUMB_WIDTH  # a waveform is drawn

    takes[0].path.unlink()  # the user deletes the output: the history keeps its own copy
    assert sf.read(first.audio)[0].shape == (48_000,)

    assert [e.id for e in history.list()] == [second.id, first.id]  # newest first
    assert [e.id for e in history.list("tiny", limit=1)] == [second.id]
    assert history.get(first.id[:6]) == first
    with pytest.raises(UserError) as err:
        history.get("feedbeef")
    assert str(err.value) == "no take 'feedbeef' in the history: see `distill history list`"

    assert history.delete(first.id[:8]) == first
    assert not (home / "history" / first.id).exists()
    assert [e.id for e in history.list()] == [second.id]


def test_compare_lists_exactly_the_parameters_that_differ(loaded, home, tmp_path):
    history = History(home)
    label = loaded.controls.labels[0]
    a = render(loaded, home, tmp_path, seed=1, sliders={label: 2}, variation=0.5)
    b = render(
        loaded,
        home,
        tmp_path,
        seed=2,
        sliders={label: -3},
        variation=0.5,
        spatial=SpatialOptions(mode="stereo"),
        options=ExportOptions(format="flac", sample_rate=44_100),
    )
    entry_a, entry_b = history.record(sidecar(a), a.path), history.record(sidecar(b), b.path)
    assert history.compare(entry_a.id, entry_b.id) == [
        ("export.format", "wav", "flac"),
        ("export.sample_rate", 48_000, 44_100),
        ("params.seed", 1, 2),
        ("params.sliders.0", 2.0, -3.0),
        ("params.spatial.mode", "mono", "stereo"),
        (f"sliders.{label}", 2.0, -3.0),
    ]
    assert history.compare(entry_a, entry_a) == []


def test_ab_file_is_a_then_gap_then_b_without_clicks(home, tmp_path):
    # Takes that end and start loud (generated ones fade out by themselves): A a 48 kHz mono
    # tone ending on its crest, B 44.1 kHz stereo noise, which the A/B file resamples.
    t = np.arange(48_000) / 48_000
    sf.write(tmp_path / "a.wav", 0.8 * np.cos(2 * np.pi * 440 * (t - t[-1])), 48_000, "PCM_24")
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (33_075, 2))
    sf.write(tmp_path / "b.flac", noise, 44_100, subtype="PCM_24")
    history = History(home)
    entry_a, entry_b = (
        history.record({"model": {"name": "test"}, "params": {"seed": i}}, tmp_path / name)
        for i, name in enumerate(("a.wav", "b.flac"))
    )
    path = history.ab_file(entry_a, entry_b, tmp_path / "ab.wav", gap_seconds=0.5)

    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (48_000, 2, "PCM_24")
    x, _ = sf.read(path, dtype="float32")  # (T, 2)
    audio_a, _ = sf.read(entry_a.audio, dtype="float32")
    audio_b, rate_b = sf.read(entry_b.audio, dtype="float32")
    audio_b = soxr.resample(audio_b, rate_b, 48_000, quality="HQ")
    a_end, gap = len(audio_a), 24_000  # samples at 48 kHz
    assert len(x) == a_end + gap + len(audio_b) == 48_000 + 24_000 + 36_000

    assert np.array_equal(x[:a_end, 0], x[:a_end, 1])  # mono A plays on both channels
    assert not x[a_end : a_end + gap].any()  # the gap is digital silence
    body = slice(480, -480)  # away from the 10 ms fades, A and B are untouched
    assert np.allclose(x[:a_end, 0][body], audio_a[body], atol=2**-23)
    assert np.allclose(x[a_end + gap :][body], audio_b[body], atol=2**-23)
    ms = 48  # samples: 1 ms
    assert abs(audio_a[-1]) > 0.79 and np.abs(audio_b[:ms]).max() > 0.4  # hard edges …
    for join in (a_end, a_end + gap):
        assert np.abs(x[join - ms : join + ms]).max() < 0.03  # … faded to near zero
    # The tone moves at most 0.8 · 2π · 440 / 48000 ≈ 0.046 per sample; a cut would jump 0.8.
    assert np.abs(np.diff(x[a_end - 480 : a_end + ms, 0])).max() < 0.05


def test_replay_renders_the_kept_samples_again(loaded, home, tmp_path):
    history = History(home)
    take = render(loaded, home, tmp_path / "out", seed=9, sliders={"1": 3}, variation=0.4)
    entry = history.record(sidecar(take), take.path)
    again = replay_history(history, entry.id, tmp_path / "replayed")
    assert again.parent == tmp_path / "replayed" and again != entry.audio
    kept, rate = sf.read(entry.audio, dtype="int32")
    replayed, replay_rate = sf.read(again, dtype="int32")
    assert rate == replay_rate and np.array_equal(kept, replayed)


@pytest.mark.parametrize("failing", ["thumbnail", "database"])
def test_a_failure_mid_record_leaves_no_row_and_no_files(
    loaded, home, tmp_path, monkeypatch, failing
):
    take = render(loaded, home, tmp_path, seed=2)

    def broken_png(envelope, out_path, clip_level=0.999):
        Path(out_path).write_bytes(b"half a PNG")
        raise OSError(28, "No space left on device")

    def broken_db(db):
        raise sqlite3.OperationalError("database is locked")

    if failing == "thumbnail":
        monkeypatch.setattr(history_module, "write_waveform_png", broken_png)
    else:  # after the files are in place, before the row
        monkeypatch.setattr(history_module, "connect", broken_db)
    expected = UserError if failing == "thumbnail" else sqlite3.Error
    with pytest.raises(expected, match=r"No space left|locked"):
        History(home).record(sidecar(take), take.path)
    monkeypatch.undo()
    assert History(home).list() == []
    assert list((home / "history").iterdir()) == []
    assert take.path.is_file()  # the take itself is untouched


def test_the_audio_is_copied_where_a_hard_link_is_refused(loaded, home, tmp_path, monkeypatch):
    take = render(loaded, home, tmp_path, seed=2)

    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(history_module.os, "link", no_links)
    entry = History(home).record(sidecar(take), take.path)
    assert entry.audio.read_bytes() == take.path.read_bytes()
    assert entry.audio.stat().st_ino != take.path.stat().st_ino


def test_list_drops_entries_whose_files_went_and_folders_no_row_names(loaded, home, tmp_path):
    history = History(home)
    take = render(loaded, home, tmp_path, seed=2)
    kept, lost = (history.record(sidecar(take), take.path) for _ in range(2))
    shutil.rmtree(lost.audio.parent)  # someone cleaned the folder by hand
    orphan = home / "history" / "0123456789abcdef"  # a record killed before its row went in
    orphan.mkdir()
    young = home / "history" / ".incoming-fedcba9876543210"  # a record in progress
    young.mkdir()
    old = time.time() - 2 * history_module.STALE_SECONDS
    os.utime(orphan, (old, old))

    assert [e.id for e in history.list()] == [kept.id]
    assert not orphan.exists() and young.exists()
    with sqlite3.connect(home / "library.sqlite") as conn:
        assert conn.execute("SELECT id FROM history").fetchall() == [(kept.id,)]


def test_deleting_the_model_deletes_its_takes(loaded, home, tmp_path):
    history = History(home)
    take = render(loaded, home, tmp_path, seed=2)
    entry = history.record(sidecar(take), take.path)
    Library(home).delete("tiny")
    assert history.list() == []
    assert not entry.audio.parent.exists()


def test_two_processes_recording_at_once_both_land(loaded, home, tmp_path):
    takes = [render(loaded, home, tmp_path, seed=s) for s in (11, 12)]
    script = textwrap.dedent(
        """
        import json, sys, time
        from pathlib import Path
        from distill.library.history import History
        home, take, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
        sidecar = json.loads(take.with_suffix(".json").read_text())
        time.sleep(max(0.0, start - time.time()))  # both begin together
        for _ in range(20):
            History(home).record(sidecar, take)
        """
    )
    start = str(time.time() + 4.0)  # s: after both interpreters have imported
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(home), str(t.path), start], stderr=subprocess.PIPE
        )
        for t in takes
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    entries = History(home).list(limit=None)
    assert len(entries) == 40 and len({e.id for e in entries}) == 40
    assert sorted(e.seed for e in entries) == [11] * 20 + [12] * 20
    assert all(e.audio.is_file() and e.thumbnail.is_file() for e in entries)
