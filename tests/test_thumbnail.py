"""Waveform thumbnails: the envelope, the picture, and safe unique file names."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from distill.audio.thumbnail import (
    BACKGROUND,
    CENTRE_LINE,
    CLIPPED,
    THUMB_HEIGHT,
    THUMB_WIDTH,
    WAVE,
    WaveformEnvelope,
    envelope_of,
    render_waveform,
    thumbnail_name,
    write_waveform_png,
)
from helpers import sine


def colour_count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    return int(np.all(np.asarray(image) == colour, axis=-1).sum())


def test_loud_file_gives_a_png_of_the_expected_size_with_a_tall_waveform(tmp_path):
    path = write_waveform_png(envelope_of(sine(1_000, 1.0)), tmp_path / "loud.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (THUMB_WIDTH, THUMB_HEIGHT)
        pixels = np.asarray(image.convert("RGB"))
    wave_rows = np.flatnonzero(np.all(pixels == WAVE, axis=-1).any(axis=1))
    # ±0.5 of full scale spans half the height, centred: rows ~20..59 of 80.
    assert wave_rows.min() == pytest.approx(20, abs=1) and wave_rows.max() == pytest.approx(
        59, abs=1
    )
    assert np.all(np.all(pixels == WAVE, axis=-1).any(axis=0))  # every column drawn


def test_silence_draws_only_the_centre_line():
    image = render_waveform(envelope_of(np.zeros(48_000, dtype=np.float32)))
    pixels = np.asarray(image)
    background = colour_count(image, BACKGROUND)
    axis = colour_count(image, CENTRE_LINE)
    wave = colour_count(image, WAVE)
    assert background + axis + wave == THUMB_WIDTH * THUMB_HEIGHT
    assert wave == THUMB_WIDTH  # a one-pixel line, one pixel per column
    assert np.all(np.all(pixels[THUMB_HEIGHT // 2] != BACKGROUND, axis=-1))


def test_full_scale_columns_are_drawn_in_the_clip_colour():
    signal = np.concatenate([sine(1_000, 0.5), np.clip(sine(1_000, 0.5, amplitude=3.0), -1.0, 1.0)])
    image = render_waveform(envelope_of(signal))
    clipped_columns = np.all(np.asarray(image) == CLIPPED, axis=-1).any(axis=0)
    assert not clipped_columns[: THUMB_WIDTH // 2 - 1].any()
    assert clipped_columns[THUMB_WIDTH // 2 + 1 :].all()


@pytest.mark.parametrize("frames", [1, 37, 399, 400, 401, 48_000, 100_003])
def test_streamed_envelope_matches_per_column_min_max(frames):
    rng = np.random.default_rng(frames)
    signal = rng.uniform(-1, 1, frames).astype(np.float32)
    envelope = WaveformEnvelope(frames)
    for block in np.array_split(signal, 7):
        envelope.add(block)
    lo, hi = envelope.bounds()
    column_of = np.arange(frames) * THUMB_WIDTH // frames
    for column in np.unique(column_of):
        in_column = signal[column_of == column]
        assert lo[column] == in_column.min() and hi[column] == in_column.max()
    if frames >= THUMB_WIDTH:  # every column holds at least one frame: no gaps in the picture
        assert len(np.unique(column_of)) == THUMB_WIDTH
    else:  # a column between two frames shows the next frame, so the drawing has no holes
        drawn = slice(0, column_of[-1] + 1)
        assert np.all(lo[drawn] == hi[drawn]) and np.isin(hi[drawn], signal).all()


def test_frames_beyond_the_header_count_land_in_the_last_column():
    envelope = WaveformEnvelope(total_frames=1_000, columns=10)
    envelope.add(np.zeros(1_000, dtype=np.float32))
    envelope.add(np.full(500, 0.75, dtype=np.float32))  # header undercounted
    _, hi = envelope.bounds()
    assert hi[-1] == 0.75 and hi[:-1].max() == 0.0


def test_non_finite_samples_do_not_break_the_picture():
    signal = sine(1_000, 0.1)
    signal[10] = np.nan
    signal[20] = np.inf
    lo, hi = envelope_of(signal).bounds()
    assert np.isfinite(lo).all() and np.isfinite(hi).all()


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("kick.wav", "kick_wav.png"),
        ("my kick ü 日本.wav", "my_kick_ü_日本_wav.png"),
        ("drums/loops/a.flac", "drums__loops__a_flac.png"),
        ("../../etc/passwd.wav", "________etc__passwd_wav.png"),
        (".hidden.wav", "_hidden_wav.png"),
        ("a\\b:c*?.wav", "a_b_c___wav.png"),
        ("cafe\u0301.wav", "café_wav.png"),  # NFD (as macOS stores it) becomes NFC
    ],
)
def test_thumbnail_names_are_safe(relative, expected):
    name = thumbnail_name(relative, set())
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")


def test_thumbnail_names_never_collide_even_case_insensitively():
    taken: set[str] = set()
    names = [thumbnail_name(p, taken) for p in ["a b.wav", "a_b.wav", "A_B.wav", "a/b.wav"]]
    assert names[0] == "a_b_wav.png"
    assert len({n.casefold() for n in names}) == len(names)
    # Deterministic: the same paths in the same order give the same names.
    again: set[str] = set()
    assert [thumbnail_name(p, again) for p in ["a b.wav", "a_b.wav", "A_B.wav", "a/b.wav"]] == names


def test_very_long_names_are_shortened_below_file_system_limits():
    name = thumbnail_name("日本" * 200 + ".wav", set())
    assert name.endswith(".png") and len(name.encode("utf-8")) <= 160
