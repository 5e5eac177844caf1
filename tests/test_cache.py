"""The preprocessing cache: what it stores, when it recomputes, and how it fails."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from distill.audio.read import read_mono
from distill.data import cache
from distill.data.cache import (
    CacheError,
    ChunkDataset,
    PreparedFile,
    dataset_stats,
    load_entry,
    prepare_files,
)
from distill.data.chunking import ChunkingConfig
from distill.spectral.config import SpectralConfig
from distill.spectral.melscale import mel_bands
from distill.spectral.transform import analyze

# 0.5 s chunks keep the tests fast: 24 000 samples, step 12 000, shortest kept tail 6 000,
# 1 + 24 000 // 512 = 47 frames.
SMALL = SpectralConfig(chunk_seconds=0.5)

# name → (seconds, sample rate, channels, kind, chunks expected with SMALL). Lengths at 48 kHz:
#   0.3 s = 14 400 < one chunk                                  → 1 padded chunk
#   0.6 s = 28 800: full chunk at 0, then 4 800 new samples < 6 000 → 1
#   1.0 s = 48 000: full chunks at 0, 12 000, 24 000 (ends 48 000) → 3
#   1.7 s = 81 600: 1 + 57 600 // 12 000 = 5 full (end 72 000), 9 600 new ≥ 6 000 → 6
#   2.2 s = 105 600: 7 full (end 96 000), 9 600 new → 8
#   3.5 s = 168 000: 1 + 144 000 // 12 000 = 13 full, ending exactly at 168 000 → 13
CORPUS = {
    "sine 440.wav": (0.3, 48_000, 1, "sine", 1),
    "short one.aiff": (0.6, 48_000, 1, "sine", 1),
    "bruit blanc ü.flac": (1.0, 44_100, 2, "noise", 3),
    "mix.wav": (1.7, 44_100, 1, "mix", 6),
    "chirp – é.wav": (2.2, 48_000, 1, "chirp", 8),
    "hum 44k.wav": (3.5, 44_100, 2, "sine", 13),
}


def make_sound(seconds: float, rate: int, channels: int, kind: str, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    if kind == "sine":
        x = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    elif kind == "noise":
        x = 0.3 * rng.standard_normal(len(t))
    elif kind == "chirp":
        x = 0.5 * np.sin(2 * np.pi * (200.0 + 1000.0 * t) * t)
    else:
        x = 0.3 * np.sin(2 * np.pi * 880.0 * t) + 0.05 * rng.standard_normal(len(t))
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "my récordings"
    folder.mkdir()
    for name, (seconds, rate, channels, kind, _) in CORPUS.items():
        sf.write(folder / name, make_sound(seconds, rate, channels, kind), rate)
    return folder


@pytest.fixture
def files(audio_dir: Path) -> list[Path]:
    return [audio_dir / name for name in CORPUS]


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "Distill home ø" / "cache"


def by_name(prepared: list[PreparedFile]) -> dict[str, PreparedFile]:
    return {p.source.name: p for p in prepared}


def forbid_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("analyze() called on a run that should reuse the cache")

    monkeypatch.setattr(cache, "analyze", boom)


def test_default_settings_give_one_second_chunks_of_the_source(tmp_path: Path) -> None:
    cfg = SpectralConfig()
    tone, noise = tmp_path / "tone 1k.wav", tmp_path / "noise.wav"
    t = np.arange(44_100) / 44_100
    sf.write(tone, 0.5 * np.sin(2 * np.pi * 1000.0 * t), 44_100)  # 1.0 s → 48 000 → 1 chunk
    sf.write(noise, make_sound(2.2, 48_000, 1, "noise"), 48_000)  # 105 600: 3 full, 9 600 tail
    report = prepare_files([tone, noise], tmp_path / "cache", cfg)
    assert report.errors == []
    tone_entry, noise_entry = report.files
    assert (tone_entry.n_chunks, noise_entry.n_chunks) == (1, 3)

    audio, spec = load_entry(noise_entry)
    assert audio.shape == (3, 48_000) and audio.dtype == torch.float32
    assert spec.shape == (3, 2, 128, 94) and spec.dtype == torch.float32
    source = torch.from_numpy(read_mono(noise))
    torch.testing.assert_close(audio[1], source[24_000:72_000])  # 50 % overlap
    torch.testing.assert_close(spec, analyze(audio, cfg), rtol=1e-5, atol=1e-5)

    # The tone's loudest band is the one around 1 kHz.
    audio, spec = load_entry(tone_entry)
    loudest = int(spec[0, 0].mean(dim=1).argmax())
    bands = mel_bands(cfg)
    centre_hz = float(bands.center[loudest]) * cfg.sample_rate / cfg.n_fft
    half_width_hz = float(bands.half_width[loudest]) * cfg.sample_rate / cfg.n_fft
    assert abs(centre_hz - 1000.0) < half_width_hz

    # The entry is a plain safetensors file whose JSON metadata describes it.
    with safe_open(str(noise_entry.entry_path), framework="pt") as entry:
        meta = json.loads(entry.metadata()["distill"])
    assert meta["format"] == "distill-cache" and meta["version"] == 1
    assert meta["source"] == "noise.wav" and meta["chunks"] == 3
    assert meta["duration_s"] == pytest.approx(2.2)


def test_chunk_counts_and_shapes_for_known_lengths(files: list[Path], cache_dir: Path) -> None:
    report = prepare_files(files, cache_dir, SMALL)
    assert report.errors == []
    assert (report.computed, report.reused) == (len(files), 0)
    for name, prepared in by_name(report.files).items():
        seconds, *_, expected = CORPUS[name]
        assert prepared.n_chunks == expected, name
        assert prepared.duration == pytest.approx(seconds)
        audio, spec = load_entry(prepared)
        assert audio.shape == (expected, 24_000)
        assert spec.shape == (expected, 2, 128, 47)


def test_second_run_computes_nothing(
    files: list[Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prepare_files(files, cache_dir, SMALL)
    forbid_analysis(monkeypatch)
    calls = []
    second = prepare_files(files, cache_dir, SMALL, progress=lambda *a: calls.append(a))
    assert (second.computed, second.reused) == (0, len(files))
    assert second.files == first.files
    assert calls == [(i + 1, len(files), f) for i, f in enumerate(files)]


def test_unchanged_files_are_not_rehashed(
    files: list[Path], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for f in files:
        os.utime(f, ns=(an_hour_ago, an_hour_ago))
    assert prepare_files(files, cache_dir, SMALL).hashed == len(files)

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path.name} hashed again")

    monkeypatch.setattr(cache, "_file_sha256", no_hashing)
    report = prepare_files(files, cache_dir, SMALL)
    assert (report.hashed, report.reused) == (0, len(files))


def test_changing_one_file_recomputes_only_that_file(files: list[Path], cache_dir: Path) -> None:
    before = by_name(prepare_files(files, cache_dir, SMALL).files)
    changed = files[3]
    sf.write(changed, make_sound(1.7, 44_100, 1, "mix", seed=1), 44_100)  # same length and format
    report = prepare_files(files, cache_dir, SMALL)
    assert (report.computed, report.reused) == (1, len(files) - 1)
    after = by_name(report.files)
    assert after[changed.name].key != before[changed.name].key
    assert all(after[n] == before[n] for n in before if n != changed.name)


def test_a_rewrite_that_keeps_size_and_mtime_is_still_noticed(
    files: list[Path], cache_dir: Path
) -> None:
    # A file rewritten within the filesystem's timestamp resolution can keep both its size and its
    # mtime; the index must not trust such a recent mtime.
    target = files[4]
    now = time.time_ns()
    os.utime(target, ns=(now, now))
    prepare_files([target], cache_dir, SMALL)
    sf.write(target, make_sound(2.2, 48_000, 1, "noise"), 48_000)  # same size
    os.utime(target, ns=(now, now))
    assert prepare_files([target], cache_dir, SMALL).computed == 1


def test_forward_settings_invalidate_and_inverse_settings_do_not(
    files: list[Path], cache_dir: Path
) -> None:
    prepare_files(files, cache_dir, SMALL)
    inverse_only = dataclasses.replace(SMALL, refine_iterations=0, nnls_iterations=5)
    assert prepare_files(files, cache_dir, inverse_only).computed == 0

    fewer_bands = dataclasses.replace(SMALL, n_mels=64)
    report = prepare_files(files, cache_dir, fewer_bands)
    assert (report.computed, report.reused) == (len(files), 0)
    assert load_entry(report.files[0])[1].shape[2] == 64

    no_overlap = ChunkingConfig(step_fraction=1.0)
    report = prepare_files(files, cache_dir, SMALL, no_overlap)
    assert report.computed == len(files)
    assert by_name(report.files)["hum 44k.wav"].n_chunks == 7  # 3.5 s in 0.5 s steps

    # Every earlier entry is still there: going back recomputes nothing.
    assert prepare_files(files, cache_dir, SMALL).computed == 0


def test_variants_are_cached_separately(files: list[Path], cache_dir: Path) -> None:
    files = [files[0], files[2], files[5]]  # 0.3 s, 1.0 s and 3.5 s
    original = prepare_files(files, cache_dir, SMALL)
    quieter = prepare_files(files, cache_dir, SMALL, variant="gain-6", augment=lambda x: 0.5 * x)
    assert quieter.computed == len(files)
    for a, b in zip(original.files, quieter.files, strict=True):
        assert a.key != b.key and b.variant == "gain-6"
        torch.testing.assert_close(load_entry(b)[0], 0.5 * load_entry(a)[0])

    faster = prepare_files(files, cache_dir, SMALL, variant="speed2", augment=lambda x: x[::2])
    assert by_name(faster.files)["hum 44k.wav"].duration == pytest.approx(1.75)

    again = prepare_files(files, cache_dir, SMALL, variant="gain-6", augment=lambda x: 0.5 * x)
    assert again.computed == 0
    with pytest.raises(ValueError, match="variant"):
        prepare_files(files, cache_dir, SMALL, augment=lambda x: x)
    with pytest.raises(ValueError, match="variant"):
        prepare_files(files, cache_dir, SMALL, variant="pitch+2")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_entry_is_rebuilt(files: list[Path], cache_dir: Path, damage: str) -> None:
    first = prepare_files(files, cache_dir, SMALL)
    victim = first.files[4]
    expected_audio, expected_spec = load_entry(victim)
    data = victim.entry_path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}
    victim.entry_path.write_bytes(damaged[damage])
    with pytest.raises(CacheError, match="prepare the files again"):
        load_entry(victim)

    report = prepare_files(files, cache_dir, SMALL)
    assert (report.computed, report.reused) == (1, len(files) - 1)
    audio, spec = load_entry(report.files[4])
    torch.testing.assert_close(audio, expected_audio)
    torch.testing.assert_close(spec, expected_spec)


def test_stats_from_cached_sums_match_the_data(files: list[Path], cache_dir: Path) -> None:
    prepared = prepare_files(files, cache_dir, SMALL).files
    stats = dataset_stats(prepared)
    everything = torch.cat([load_entry(p)[1] for p in prepared]).to(torch.float64)  # (n, 2, M, N)
    per_channel = everything.transpose(0, 1).reshape(2, -1)
    np.testing.assert_allclose(stats.mean, per_channel.mean(dim=1).numpy(), rtol=1e-9)
    np.testing.assert_allclose(stats.std, per_channel.std(dim=1, correction=0).numpy(), rtol=1e-6)


def test_dataset_yields_normalized_spectrograms_and_their_audio(
    files: list[Path], cache_dir: Path
) -> None:
    prepared = prepare_files(files, cache_dir, SMALL).files
    dataset = ChunkDataset(prepared, dataset_stats(prepared))
    assert len(dataset) == sum(c[-1] for c in CORPUS.values()) == 32

    items = [dataset[i] for i in range(len(dataset))]
    spec, audio = items[0]
    assert spec.shape == (2, 128, 47) and spec.dtype == torch.float32
    assert audio.shape == (24_000,) and audio.dtype == torch.float32
    specs = torch.stack([s for s, _ in items]).to(torch.float64).transpose(0, 1).reshape(2, -1)
    np.testing.assert_allclose(specs.mean(dim=1).numpy(), [0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(specs.std(dim=1).numpy(), [1.0, 1.0], atol=1e-4)

    # Index 1 is the first chunk of the second file (the first file has one chunk).
    torch.testing.assert_close(items[1][1], load_entry(prepared[1])[0][0])
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_unusable_files_are_reported_and_skipped(
    files: list[Path], audio_dir: Path, cache_dir: Path
) -> None:
    broken = audio_dir / "broken.wav"
    broken.write_text("this is not audio")
    empty = audio_dir / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 48_000)
    not_finite = audio_dir / "nan.wav"
    signal = make_sound(1.0, 48_000, 1, "sine")
    signal[1000] = np.nan
    sf.write(not_finite, signal, 48_000, subtype="FLOAT")
    missing = audio_dir / "missing.wav"

    bad = [broken, empty, not_finite, missing]
    report = prepare_files([bad[0], *files[:3], *bad[1:], *files[3:]], cache_dir, SMALL)
    assert [p.source for p in report.files] == files
    assert [e.source for e in report.errors] == bad
    reasons = {e.source.name: e.reason for e in report.errors}
    assert "cannot decode" in reasons["broken.wav"]
    assert "no audio" in reasons["empty.wav"]
    assert "NaN" in reasons["nan.wav"]
    assert "cannot read" in reasons["missing.wav"]
    for error in report.errors:
        assert error.reason.startswith(error.source.name) and "\n" not in error.reason


def test_a_silent_file_keeps_one_chunk(tmp_path: Path, cache_dir: Path) -> None:
    silent = tmp_path / "room tone.wav"
    sf.write(silent, np.zeros(96_000, dtype=np.float32), 48_000)  # 2 s of digital silence
    (prepared,) = prepare_files([silent], cache_dir, SMALL).files
    assert prepared.n_chunks == 1


def test_user_files_are_untouched_and_the_cache_holds_only_entries(
    files: list[Path], audio_dir: Path, cache_dir: Path
) -> None:
    def snapshot() -> dict:
        return {
            p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in audio_dir.iterdir()
        }

    before = snapshot()
    prepare_files(files, cache_dir, SMALL)
    prepare_files(files, cache_dir, SMALL, variant="gain-6", augment=lambda x: 0.5 * x)
    assert snapshot() == before

    entries = [p.name for p in cache_dir.iterdir() if p.name != cache.INDEX_NAME]
    assert len(entries) == 2 * len(files)  # no temporary files left behind
    assert all(n.endswith(".safetensors") for n in entries)


def test_long_files_stream_through_small_blocks_and_batches(
    files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_file = files[5]  # 3.5 s, 13 chunks: one 10 s read block and one batch by default
    (whole,) = prepare_files([long_file], tmp_path / "one block", SMALL).files
    monkeypatch.setattr(cache, "READ_BLOCK_SECONDS", 0.25)  # 15 blocks of 11 025 samples
    monkeypatch.setattr(cache, "ANALYSIS_BATCH", 3)  # 5 batches, the last of one chunk
    (streamed,) = prepare_files([long_file], tmp_path / "small blocks", SMALL).files
    assert streamed.n_chunks == whole.n_chunks == 13
    for a, b in zip(load_entry(streamed), load_entry(whole), strict=True):
        torch.testing.assert_close(a, b)
    assert streamed.sums.count == whole.sums.count
    np.testing.assert_allclose(streamed.sums.total, whole.sums.total, rtol=1e-6)
