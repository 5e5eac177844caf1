"""Reading audio: every format and encoding, downmix, resampling to 48 kHz, streaming in blocks."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from distill.audio.read import AudioReadError, iter_mono_blocks, probe, read_mono
from helpers import peak_hz, sine

FORMATS = [
    ("wav", "PCM_U8"),
    ("wav", "PCM_16"),
    ("wav", "PCM_24"),
    ("wav", "PCM_32"),
    ("wav", "FLOAT"),
    ("aiff", "PCM_16"),
    ("aiff", "PCM_24"),
    ("flac", "PCM_16"),
    ("flac", "PCM_24"),
    ("ogg", "VORBIS"),
    ("mp3", "MPEG_LAYER_III"),
]


@pytest.mark.parametrize(("ext", "subtype"), FORMATS)
def test_every_format_reads_as_48k_mono(tmp_path, ext, subtype):
    if ext.upper() not in sf.available_formats() and ext != "aiff":
        pytest.skip(f"libsndfile here lacks {ext}")
    path = tmp_path / f"tone.{ext}"
    sf.write(path, np.stack([sine(440, 1.0, 44_100)] * 2, axis=1), 44_100, subtype=subtype)
    audio = read_mono(path)
    assert audio.dtype == np.float32
    # MP3/Vorbis codecs add a little delay/padding; PCM comes back exactly 48 000 samples long.
    assert abs(len(audio) - 48_000) <= (3000 if ext in ("mp3", "ogg") else 1)
    assert peak_hz(audio[4800:-4800], 48_000) == pytest.approx(440, abs=2)
    rms = float(np.sqrt(np.mean(audio[4800:-4800] ** 2)))
    assert 20 * np.log10(rms / (0.5 / np.sqrt(2))) == pytest.approx(0, abs=0.5)


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 96_000, 192_000])
def test_resampling_keeps_pitch_and_duration(tmp_path, rate):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(1000, 0.5, rate), rate, subtype="FLOAT")
    audio = read_mono(path)
    assert len(audio) == pytest.approx(24_000, abs=2)
    assert peak_hz(audio, 48_000) == pytest.approx(1000, abs=2.5)


def test_downmix_averages_channels(tmp_path):
    left, right = sine(300, 0.5, 48_000, 0.4), sine(300, 0.5, 48_000, 0.2)
    six = np.stack([left, right, left, right, left, right], axis=1)
    path = tmp_path / "six.wav"
    sf.write(path, six, 48_000, subtype="FLOAT")
    assert probe(path).channels == 6
    np.testing.assert_allclose(read_mono(path), (left + right) / 2, atol=1e-6)


def test_blocks_concatenate_to_the_whole_file_without_seams(tmp_path):
    rate = 44_100
    x = sine(523.25, 3.0, rate) + 0.1 * np.random.default_rng(0).standard_normal(3 * rate)
    path = tmp_path / "long.wav"
    sf.write(path, x.astype(np.float32), rate, subtype="FLOAT")
    small = np.concatenate(list(iter_mono_blocks(path, block_seconds=0.25)))
    large = np.concatenate(list(iter_mono_blocks(path, block_seconds=100.0)))
    assert len(small) == len(large)
    np.testing.assert_allclose(small, large, atol=1e-5)


def test_memory_does_not_grow_with_file_length(tmp_path):
    """A 10-minute 44.1 kHz stereo file streams in a few MB (a 1-hour file needs no more)."""
    rate, minutes = 44_100, 10
    path = tmp_path / "ten_minutes.wav"
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
        block = np.stack([sine(200, 10.0, rate, 0.3)] * 2, axis=1)
        for _ in range(minutes * 6):
            f.write(block)
    tracemalloc.start()
    total = 0
    for block in iter_mono_blocks(path):
        total += len(block)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == pytest.approx(minutes * 60 * 48_000, abs=10)
    whole_file_bytes = minutes * 60 * 48_000 * 4
    assert peak < 20e6 < whole_file_bytes / 5


def test_unreadable_file_is_a_one_line_user_error(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not audio\n")
    with pytest.raises(AudioReadError) as err:
        read_mono(path)
    assert "notes.wav" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(AudioReadError):
        probe(tmp_path / "missing.wav")


def test_nonfinite_samples_pass_through_for_the_caller_to_report(tmp_path):
    x = sine(100, 0.2, 48_000)
    x[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 48_000, subtype="FLOAT")
    assert np.isnan(read_mono(path)).sum() == 1
