"""Export writer: formats × rates × depths read back with the right content, tags, levels,
sidecar, option errors, and no half-written file when the disk refuses."""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import soxr

from distill.audio.formats import BIT_DEPTHS, FORMATS, SAMPLE_RATES
from distill.audio.write import ExportOptions, measure_loudness, write_audio
from distill.errors import UserError

RATE = 48_000  # Hz: the source rate of every test signal
EDGE = 2_400  # samples at 48 kHz (50 ms): resampler start/end transients left out of comparisons
TAGS = {
    "title": "kick — seed 7",
    "model": "drums",
    "seed": "7",
    "sliders": "brightness=2.5",
    "params": json.dumps({"seed": 7, "duration": 1.0}),
}


def sine_mix(seconds: float = 1.0, amplitude: float = 0.5, channels: int = 2) -> np.ndarray:
    """440 Hz + 3 kHz (half as loud), peak ≈ `amplitude`; the right channel is phase-shifted so a
    swapped or downmixed channel shows. Shape (T,) for 1 channel, else (2, T); float32."""
    t = np.arange(round(seconds * RATE)) / RATE
    chans = [
        np.sin(2 * np.pi * 440 * t + phase) + 0.5 * np.sin(2 * np.pi * 3000 * t + 2 * phase)
        for phase in (0.0, 1.0)[:channels]
    ]
    x = amplitude / 1.5 * np.stack(chans)
    return (x[0] if channels == 1 else x).astype(np.float32)


def valid_combinations():
    for fmt in FORMATS:
        for rate in SAMPLE_RATES:
            for depth in BIT_DEPTHS if fmt in ("wav", "flac") else ("24",):
                options = ExportOptions(fmt, rate, depth)
                try:
                    options.validate()
                except UserError:
                    continue
                yield options


COMBINATIONS = list(valid_combinations())


def read_frames(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return data, rate  # (T, C)


def back_to_source_rate(data: np.ndarray, rate: int) -> np.ndarray:
    """(T, C) at `rate` → at RATE, with soxr's best quality so its own error stays ≪ the file's."""
    return data if rate == RATE else soxr.resample(data, rate, RATE, quality="VHQ")


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = np.sum((test - reference) ** 2)
    return math.inf if noise == 0 else 10 * math.log10(np.sum(reference**2) / noise)


def magnitude_spectrum(x: np.ndarray) -> np.ndarray:
    """Hann-windowed |rfft| of a 1-D signal at RATE: 1 Hz per bin for 1 s."""
    return np.abs(np.fft.rfft(x * np.hanning(len(x))))


def test_combinations_cover_the_spec():
    names = {(o.format, o.sample_rate, o.bit_depth) for o in COMBINATIONS}
    assert len(names) == 9 + 6 + 2 + 3  # WAV 3×3, FLAC 3×2, MP3 2 rates, OGG 3 rates
    assert ("mp3", 96_000, "24") not in names
    assert ("flac", 48_000, "32f") not in names


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(
    "options", COMBINATIONS, ids=lambda o: f"{o.format}-{o.sample_rate}-{o.bit_depth}"
)
def test_every_format_reads_back_with_its_content(tmp_path, options, channels):
    source = sine_mix(channels=channels)
    path = tmp_path / f"take{options.suffix}"
    result = write_audio(path, source, RATE, options, tags=TAGS)

    info = sf.info(str(path))
    expected_frames = round(len(source.T) * options.sample_rate / RATE)  # soxr rounds the length
    assert (info.samplerate, info.channels, info.frames) == (
        options.sample_rate,
        channels,
        expected_frames,
    )
    assert info.subtype == options.soundfile_format[1]
    assert (result.frames, result.channels, result.sample_rate) == (
        expected_frames,
        channels,
        options.sample_rate,
    )
    assert not result.peak_limited and result.gain_db == 0.0  # −2.5 dBFS source: left alone

    data, rate = read_frames(path)
    reference = np.atleast_2d(source).T.astype(np.float64)  # (T, C)
    back = back_to_source_rate(data, rate)
    n = min(len(back), len(reference))
    inner = slice(EDGE, n - EDGE)
    error = back[inner] - reference[inner]
    lossless_at_source_rate = options.format in ("wav", "flac") and rate == RATE

    if lossless_at_source_rate and options.bit_depth == "32f":
        np.testing.assert_array_equal(data, reference)  # float in, float out: bit-exact
    elif lossless_at_source_rate:
        step = 2.0 ** -(int(options.bit_depth) - 1)  # one quantization step, full scale = 1
        assert np.abs(data - reference).max() <= step / 2 + 1e-9  # rounded, not truncated
    elif options.format in ("wav", "flac"):
        if options.bit_depth == "16":
            assert snr_db(reference[inner], back[inner]) > 80
        else:  # resampled twice (soxr HQ out, VHQ back) is the only error left
            assert 20 * math.log10(np.abs(error).max()) < -100
    else:
        # Lossy: sample-aligned (libsndfile drops the codec's delay) and close in waveform on
        # every channel; a silent, shifted, swapped or wrong-rate file scores below 0 dB.
        for ch in range(channels):
            assert snr_db(reference[inner, ch], back[inner, ch]) > 25, f"channel {ch}"
            spectrum = magnitude_spectrum(back[:RATE, ch])
            source_spectrum = magnitude_spectrum(reference[:RATE, ch])
            assert np.corrcoef(spectrum, source_spectrum)[0, 1] > 0.99
            assert int(np.argmax(spectrum)) == 440  # Hz: the dominant partial, 1 Hz bins
            assert int(np.argmax(spectrum[1000:])) + 1000 == 3000


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("depth", ["16", "24"])
def test_flac_is_the_same_samples_as_wav(tmp_path, rate, depth):
    source = sine_mix()
    wav = write_audio(tmp_path / "a.wav", source, RATE, ExportOptions("wav", rate, depth))
    flac = write_audio(tmp_path / "a.flac", source, RATE, ExportOptions("flac", rate, depth))
    wav_ints, _ = sf.read(str(wav.path), dtype="int32")
    flac_ints, _ = sf.read(str(flac.path), dtype="int32")
    np.testing.assert_array_equal(wav_ints, flac_ints)


def read_tags(path: Path) -> dict[str, str]:
    """The fields we write, by our own key names, whatever the container."""
    audio = mutagen.File(str(path))
    assert audio is not None and audio.tags is not None, f"no tags in {path.name}"
    if path.suffix in (".wav", ".mp3"):  # ID3
        frames = audio.tags
        return {
            "artist": str(frames["TPE1"]),
            "title": str(frames["TIT2"]),
            "model": str(frames["TXXX:DISTILL_MODEL"]),
            "seed": str(frames["TXXX:DISTILL_SEED"]),
            "sliders": str(frames["TXXX:DISTILL_SLIDERS"]),
            "params": str(frames["TXXX:DISTILL_PARAMS"]),
            "comment": str(frames.getall("COMM")[0]),
        }
    return {  # Vorbis comments (FLAC, OGG)
        key: audio[name][0]
        for key, name in [
            ("artist", "ARTIST"),
            ("title", "TITLE"),
            ("model", "DISTILL_MODEL"),
            ("seed", "DISTILL_SEED"),
            ("sliders", "DISTILL_SLIDERS"),
            ("params", "DISTILL_PARAMS"),
            ("comment", "COMMENT"),
        ]
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_tags_read_back_with_mutagen(tmp_path, fmt):
    path = tmp_path / f"take.{fmt}"
    write_audio(path, sine_mix(), RATE, ExportOptions(fmt), tags=TAGS)
    tags = read_tags(path)
    assert tags["artist"] == "Distill"
    for key in ("title", "model", "seed", "sliders", "params"):
        assert tags[key] == TAGS[key]
    assert json.loads(tags["comment"]) == {"seed": 7, "duration": 1.0}
    assert sf.info(str(path)).frames == RATE  # the tag did not break decoding


def test_a_subset_of_tags_writes_only_those(tmp_path):
    path = tmp_path / "take.flac"
    write_audio(path, sine_mix(), RATE, ExportOptions("flac"), tags={"title": "only a title"})
    audio = mutagen.File(str(path))
    assert audio["TITLE"] == ["only a title"]
    assert "DISTILL_SEED" not in audio and "COMMENT" not in audio


def test_unknown_tag_key_is_a_bug(tmp_path):
    with pytest.raises(ValueError, match="unknown tag keys"):
        write_audio(tmp_path / "t.wav", sine_mix(), RATE, ExportOptions(), tags={"titel": "x"})
    assert list(tmp_path.iterdir()) == []


CEILING = 10 ** (-1.0 / 20)  # −1 dBFS as a linear peak


@pytest.mark.parametrize(
    "options", COMBINATIONS, ids=lambda o: f"{o.format}-{o.sample_rate}-{o.bit_depth}"
)
def test_a_hot_input_is_scaled_under_the_peak_ceiling(tmp_path, options):
    hot = sine_mix(amplitude=2.0)  # +6 dBFS
    result = write_audio(tmp_path / f"hot{options.suffix}", hot, RATE, options)
    data, _ = read_frames(result.path)
    assert result.peak_limited
    # 2.0 → 0.89: −7 dB; a lossy file gives up to ≈ 1 dB more for its codec's overshoot.
    if options.format in ("wav", "flac"):
        assert result.peak_limit_db == pytest.approx(-7.0, abs=0.1)
    else:
        assert -8.5 < result.peak_limit_db < -7.0
    assert result.peak_dbfs <= -1.0
    # What a player reads, after quantization or lossy decoding (whose overshoot the writer
    # measures and removes): at or under the ceiling.
    assert np.abs(data).max() <= CEILING
    assert result.peak_dbfs == pytest.approx(20 * math.log10(np.abs(data).max()), abs=1e-3)
    # One plain gain: the shape is untouched (no clipping, no limiter distortion).
    peak = float(np.abs(hot).max())
    scaled = hot.T.astype(np.float64) * 10 ** (result.gain_db / 20)
    if options.sample_rate == RATE and options.format in ("wav", "flac"):
        assert np.abs(data - scaled).max() < 1e-4 * peak


@pytest.mark.parametrize("target", [-14.0, -23.0])
@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_target_is_hit(tmp_path, target, channels):
    quiet = sine_mix(seconds=3.0, amplitude=0.01, channels=channels)  # ≈ −42 LUFS
    options = ExportOptions("wav", 44_100, "24", lufs=target)
    result = write_audio(tmp_path / "loud.wav", quiet, RATE, options)
    data, rate = read_frames(result.path)
    measured = pyloudnorm.Meter(rate).integrated_loudness(data)  # independent of the writer
    assert measured == pytest.approx(target, abs=0.5)
    assert result.loudness_lufs == pytest.approx(measured, abs=0.05)
    assert not result.peak_limited and result.gain_db > 10


def test_loudness_target_gives_way_to_the_peak_ceiling(tmp_path):
    # Sparse clicks: a high crest factor, so −8 LUFS would need a peak far above full scale.
    clicks = np.zeros(3 * RATE, dtype=np.float32)
    clicks[:: RATE // 4] = 0.5
    result = write_audio(tmp_path / "c.wav", clicks, RATE, ExportOptions(lufs=-8.0))
    data, _ = read_frames(result.path)
    assert result.peak_limited and result.peak_limit_db < -1.0
    assert np.abs(data).max() <= CEILING
    assert result.loudness_lufs is not None and result.loudness_lufs < -8.0 - 1.0


def test_short_audio_is_levelled_without_a_loudness_report(tmp_path):
    short = sine_mix(seconds=0.1, amplitude=0.05)  # 100 ms: under one 400 ms gating block
    result = write_audio(tmp_path / "s.wav", short, RATE, ExportOptions("wav", lufs=-20.0))
    data, rate = read_frames(result.path)
    assert result.loudness_lufs is None  # integrated loudness is undefined under 400 ms
    looped = np.tile(data, (5, 1))  # 0.5 s of the same sound: what the writer levelled
    assert pyloudnorm.Meter(rate).integrated_loudness(looped) == pytest.approx(-20.0, abs=0.5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_silence_with_a_loudness_target_stays_silent(tmp_path, fmt):
    silence = np.zeros((2, RATE), dtype=np.float32)
    path = tmp_path / f"quiet.{fmt}"
    result = write_audio(path, silence, RATE, ExportOptions(fmt, lufs=-14.0), sidecar={"a": 1})
    assert result.gain_db == 0.0 and not result.peak_limited
    assert result.peak_dbfs == -math.inf and result.loudness_lufs is None
    data, _ = read_frames(path)
    assert np.isfinite(data).all() and np.abs(data).max() < 1e-3
    # Strict JSON: no Infinity/NaN literals in the sidecar.
    sidecar = json.loads(path.with_suffix(".json").read_text(), parse_constant=pytest.fail)
    assert sidecar["export"]["peak_dbfs"] is None


def test_measure_loudness_matches_pyloudnorm():
    x = np.atleast_2d(sine_mix(seconds=2.0)).T
    expected = pyloudnorm.Meter(RATE).integrated_loudness(x.astype(np.float64))
    assert measure_loudness(x, RATE) == pytest.approx(expected, abs=1e-3)
    assert measure_loudness(x[:1000], RATE) is None
    assert measure_loudness(np.zeros((RATE, 2), np.float32), RATE) is None


def test_sidecar_holds_the_callers_parameters_and_the_export(tmp_path):
    caller = {"model": {"name": "drums"}, "params": {"seed": 7, "sliders": {"0": 2.5}}}
    options = ExportOptions("flac", 44_100, "16", lufs=-16.0)
    path = tmp_path / "take-001.flac"
    result = write_audio(path, sine_mix(seconds=2.0), RATE, options, sidecar=caller)

    assert result.sidecar_path == tmp_path / "take-001.json"
    text = result.sidecar_path.read_text()
    assert text.startswith("{\n  ")  # pretty-printed
    data = json.loads(text)
    assert data["model"] == caller["model"] and data["params"] == caller["params"]
    export = data["export"]
    assert export["options"] == {
        "format": "flac",
        "sample_rate": 44_100,
        "bit_depth": "16",
        "lufs": -16.0,
        "peak_dbfs": -1.0,
    }
    assert export["file"] == "take-001.flac" and export["source_rate"] == RATE
    assert export["frames"] == result.frames == 88_200
    assert export["peak_dbfs"] == pytest.approx(result.peak_dbfs)
    assert export["loudness_lufs"] == pytest.approx(-16.0, abs=0.5)
    assert "export" not in caller  # the caller's dict is not modified


def test_no_sidecar_unless_asked(tmp_path):
    result = write_audio(tmp_path / "t.wav", sine_mix(), RATE, ExportOptions())
    assert result.sidecar_path is None
    assert [p.name for p in tmp_path.iterdir()] == ["t.wav"]


def test_missing_folders_are_created(tmp_path):
    path = tmp_path / "a" / "b c" / "take.ogg"
    write_audio(path, sine_mix(), RATE, ExportOptions("ogg"), sidecar={})
    assert path.is_file() and path.with_suffix(".json").is_file()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (ExportOptions(format="aac"), "wav, flac, mp3 or ogg"),
        (ExportOptions(sample_rate=22_050), "44100, 48000 or 96000"),
        (ExportOptions(bit_depth="8"), "16, 24 or 32f"),
        (ExportOptions(format="flac", bit_depth="32f"), "16 or 24"),
        (ExportOptions(format="mp3", sample_rate=96_000), "44100 or 48000"),
        (ExportOptions(lufs=-90.0), "-70 to 0"),
        (ExportOptions(peak_dbfs=3.0), "-60 to 0"),
    ],
)
def test_invalid_options_name_the_valid_choices(tmp_path, options, named):
    with pytest.raises(UserError) as caught:
        options.validate()
    message = str(caught.value)
    assert named in message and "\n" not in message
    with pytest.raises(UserError):
        write_audio(tmp_path / "x.wav", sine_mix(), RATE, options)
    assert list(tmp_path.iterdir()) == []


def test_lossy_formats_ignore_the_bit_depth():
    ExportOptions("mp3", 44_100, "32f").validate()
    ExportOptions("ogg", 96_000, "32f").validate()
    assert ExportOptions("ogg").suffix == ".ogg"


@pytest.mark.parametrize(
    "bad",
    [
        np.array([0.0, np.nan, 0.0], dtype=np.float32),
        np.array([[0.0, np.inf]], dtype=np.float32),
        np.zeros((3, 100), dtype=np.float32),  # 3 channels
        np.zeros(0, dtype=np.float32),
    ],
    ids=["nan", "inf", "three-channels", "empty"],
)
def test_malformed_audio_is_a_bug(tmp_path, bad):
    with pytest.raises(ValueError):
        write_audio(tmp_path / "x.wav", bad, RATE, ExportOptions())
    assert list(tmp_path.iterdir()) == []


# --- the disk refuses: one line for the user, nothing half-written left behind ---------------


def assert_one_line(err: UserError, *words: str) -> None:
    message = str(err)
    assert "\n" not in message and message.startswith("cannot write ")
    for word in words:
        assert word in message


def fail_with(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def test_disk_full_while_writing_leaves_nothing(tmp_path, monkeypatch):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full for a real ENOSPC from the kernel")
    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_a_full_disk(*args, **kwargs):
        # The real temp file is created (so cleanup is tested), but writes go to /dev/full.
        fd, name = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_on_a_full_disk)
    with pytest.raises(UserError) as caught:
        write_audio(tmp_path / "take.wav", sine_mix(), RATE, ExportOptions(), sidecar={})
    assert_one_line(caught.value, "disk full", "take.wav")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_disk_full_at_the_last_step_leaves_nothing(tmp_path, monkeypatch, step):
    monkeypatch.setattr(os, step, fail_with(errno.ENOSPC))
    with pytest.raises(UserError) as caught:
        write_audio(tmp_path / "take.flac", sine_mix(), RATE, ExportOptions("flac"), tags=TAGS)
    assert_one_line(caught.value, "disk full", "free some space")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "take.wav"
    write_audio(path, sine_mix(amplitude=0.1), RATE, ExportOptions())
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", fail_with(errno.ENOSPC))
    with pytest.raises(UserError):
        write_audio(path, sine_mix(amplitude=0.7), RATE, ExportOptions())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]


def test_a_failed_sidecar_takes_the_audio_with_it(tmp_path, monkeypatch):
    real_replace = os.replace
    calls = []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_fail)
    with pytest.raises(UserError) as caught:
        write_audio(tmp_path / "take.mp3", sine_mix(), RATE, ExportOptions("mp3"), sidecar={})
    assert_one_line(caught.value, "take.json", "disk full")
    assert len(calls) == 2  # the audio was in place before the sidecar failed
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("below", ["", "sub"], ids=["file-as-folder", "file-in-the-path"])
def test_a_file_where_the_folder_should_be(tmp_path, below):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    with pytest.raises(UserError) as caught:
        write_audio(blocker / below / "take.wav", sine_mix(), RATE, ExportOptions())
    assert_one_line(caught.value, "is a file", "choose another output folder")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders"
)
def test_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(UserError) as caught:
            write_audio(folder / "take.wav", sine_mix(), RATE, ExportOptions())
        assert_one_line(caught.value, "permission denied")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_unknown_os_errors_still_give_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", fail_with(errno.EIO))
    with pytest.raises(UserError) as caught:
        write_audio(tmp_path / "take.wav", sine_mix(), RATE, ExportOptions())
    assert_one_line(caught.value, os.strerror(errno.EIO))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.ENAMETOOLONG, "name too long"),
    ],
)
def test_each_refusal_says_what_to_do(tmp_path, monkeypatch, code, words):
    # Root ignores chmod, so the refusal is simulated where the kernel would raise it.
    monkeypatch.setattr(os, "replace", fail_with(code))
    with pytest.raises(UserError) as caught:
        write_audio(tmp_path / "take.ogg", sine_mix(), RATE, ExportOptions("ogg"), sidecar={})
    assert_one_line(caught.value, words, " — ")
    assert list(tmp_path.iterdir()) == []
