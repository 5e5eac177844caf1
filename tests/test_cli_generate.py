"""`distill generate` and `distill resynth` through the real entry point: files in every format
and rate, tags, sidecars, seeds, sliders, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from distill.audio import synth
from helpers import distill, one_line_error


def test_generate_writes_takes_with_sidecars_tags_and_seeds(tiny_model, tmp_path):
    out = tmp_path / "takes"
    result = distill(
        tiny_model.home,
        "generate",
        "tiny",
        "-d",
        "1.5",
        "--mode",
        "texture",
        "-n",
        "2",
        "--seed",
        "41",
        "--variation",
        "0.3",
        "--slider",
        "1=4",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    takes = report["takes"]
    assert [t["seed"] for t in takes] == [41, 42]
    for take in takes:
        path = Path(take["path"])
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (48_000, 1, "PCM_24")
        assert info.frames == 72_000
        audio, _ = sf.read(path)
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-4
        sidecar = json.loads(Path(take["sidecar"]).read_text())
        assert sidecar["params"]["seed"] == take["seed"]
        assert sidecar["params"]["duration"] == 1.5 and sidecar["params"]["variation"] == 0.3
        assert sidecar["params"]["sliders"] == {"0": 4.0}
        assert sidecar["model"]["name"] == "tiny"
        tags = mutagen.File(path)
        assert tags is not None and "tiny" in str(tags.tags)
    # same seed, same parameters: the same samples; a new take never overwrites the old one
    again = distill(
        tiny_model.home,
        "generate",
        "tiny",
        "-d",
        "1.5",
        "--mode",
        "texture",
        "--seed",
        "41",
        "--variation",
        "0.3",
        "--slider",
        "1=4",
        "--out",
        str(out),
        "--json",
    )
    assert again.returncode == 0, again.stderr
    repeat = Path(json.loads(again.stdout)["takes"][0]["path"])
    assert repeat != Path(takes[0]["path"])
    assert np.array_equal(sf.read(repeat)[0], sf.read(takes[0]["path"])[0])


@pytest.mark.parametrize(
    ("fmt", "rate", "depth", "subtype"),
    [
        ("wav", 44_100, "16", "PCM_16"),
        ("wav", 96_000, "32f", "FLOAT"),
        ("flac", 48_000, "24", "PCM_24"),
        ("mp3", 44_100, "24", "MPEG_LAYER_III"),
        ("ogg", 48_000, "24", "VORBIS"),
    ],
)
def test_every_format_and_rate_reads_back(tiny_model, tmp_path, fmt, rate, depth, subtype):
    result = distill(
        tiny_model.home,
        "generate",
        "tiny",
        "-d",
        "1",
        "--mode",
        "texture",  # -d is then the exact length (a one-shot ends with its decay)
        "--seed",
        "1",
        "--format",
        fmt,
        "--sample-rate",
        str(rate),
        "--bit-depth",
        depth,
        "--out",
        str(tmp_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    path = Path(json.loads(result.stdout)["takes"][0]["path"])
    assert path.suffix == f".{fmt}"
    info = sf.info(path)
    assert info.samplerate == rate and info.subtype == subtype
    assert abs(info.frames - rate) <= 0.01 * rate  # 1 s (lossy codecs pad a little)
    assert mutagen.File(path) is not None


def test_loudness_target_is_met(tiny_model, tmp_path):
    import pyloudnorm

    result = distill(
        tiny_model.home,
        "generate",
        "tiny",
        "-d",
        "4",
        "--mode",
        "texture",  # 4 s whatever the model's one-shots decay to: BS.1770 needs 0.4 s
        "--seed",
        "2",
        "--lufs",
        "-20",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    take = json.loads(result.stdout)["takes"][0]
    audio, rate = sf.read(take["path"])
    assert len(audio) >= 3.9 * rate
    loudness = pyloudnorm.Meter(rate).integrated_loudness(audio)
    peak = 20 * np.log10(np.abs(audio).max())
    # the target is met unless the −1 dBFS peak limit had to pull it down
    assert abs(loudness - (-20)) < 0.5 or (peak > -1.1 and loudness < -20), (loudness, peak)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nosuchmodel", "-d", "1"], "no model"),
        (["tiny", "-d", "1", "--slider", "sparkle=3"], "sliders are"),
        (["tiny", "-d", "1", "--slider", "1=11"], "−10 to 10"),
        (["tiny", "-d", "0.01"], "duration"),
        (["tiny", "-d", "0.1", "--mode", "texture"], "one-shots may be as short"),
        (["tiny", "--mode", "loop"], "oneshot or texture"),
        (["tiny", "--like", "/no/such.wav"], "not found"),
        (["tiny", "-d", "1", "--format", "aac"], "aac"),
        (["tiny", "-d", "1", "--sample-rate", "22050"], "22050"),
        (["tiny", "-d", "1", "--variation", "2"], "variation"),
    ],
)
def test_bad_arguments_give_one_line(tiny_model, tmp_path, args, expected):
    result = distill(tiny_model.home, "generate", *args, "--out", str(tmp_path))
    assert expected.lower() in one_line_error(result).lower()
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_an_unwritable_folder_gives_one_line_and_no_file(tiny_model, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    result = distill(
        tiny_model.home, "generate", "tiny", "-d", "1", "--out", str(blocker / "takes")
    )
    one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]


def test_resynth_keeps_rate_and_length(tiny_model, tmp_path):
    source = tmp_path / "in.wav"
    audio = np.concatenate([synth.pluck(220, 0.8, rng=1), synth.kick(0.5)])
    import soxr

    at_44k = soxr.resample(audio, 48_000, 44_100).astype(np.float32)
    sf.write(source, np.stack([at_44k, 0.5 * at_44k], axis=1), 44_100, subtype="PCM_16")
    out = tmp_path / "out.flac"
    result = distill(
        tiny_model.home,
        "resynth",
        "tiny",
        str(source),
        str(out),
        "--slider",
        "1=-3",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    info = sf.info(out)
    assert info.samplerate == 44_100 and info.frames == len(at_44k) and info.channels == 1
    assert json.loads(result.stdout)["frames"] == len(at_44k)
    # an existing output is never overwritten without --force
    again = distill(tiny_model.home, "resynth", "tiny", str(source), str(out))
    assert "exists" in one_line_error(again)


def test_stereo_and_binaural_files(tiny_model, tmp_path):
    stereo = distill(
        tiny_model.home,
        "generate",
        "tiny",
        "-d",
        "2",
        "--mode",
        "texture",
        "--seed",
        "3",
        "--spatial",
        "stereo",
        "--width",
        "1",
        "--out",
        str(tmp_path),
        "--json",
        "--no-history",
    )
    assert stereo.returncode == 0, stereo.stderr
    audio, rate = sf.read(json.loads(stereo.stdout)["takes"][0]["path"])
    assert audio.shape == (2 * rate, 2) and not np.allclose(audio[:, 0], audio[:, 1])
    ratios = {}
    for azimuth in ("90", "-90"):
        result = distill(
            tiny_model.home,
            "generate",
            "tiny",
            "-d",
            "2",
            "--seed",
            "3",
            "--azimuth",
            azimuth,
            "--out",
            str(tmp_path),
            "--json",
            "--no-history",
        )
        assert result.returncode == 0, result.stderr
        take = json.loads(result.stdout)["takes"][0]
        assert take["spatial"]["mode"] == "binaural"
        audio, _ = sf.read(take["path"])
        ratios[azimuth] = np.sum(audio[:, 1] ** 2) / np.sum(audio[:, 0] ** 2)
    # the near ear is louder (by how much depends on the sound's spectrum: ~1 dB below 500 Hz,
    # ~16 dB above 4 kHz), and the sides mirror each other
    assert ratios["90"] > 1.25 and ratios["-90"] < 1 / 1.25, ratios
    assert ratios["90"] * ratios["-90"] == pytest.approx(1.0, rel=0.05)


def test_blend_two_models(tiny_model, tiny_model_b, tmp_path):
    result = distill(
        tiny_model.home,
        "generate",
        "tiny",
        "-d",
        "1.5",
        "--seed",
        "4",
        "--blend",
        "tiny-b:40:1=3",
        "--out",
        str(tmp_path),
        "--json",
        "--no-history",
    )
    assert result.returncode == 0, result.stderr
    take = json.loads(result.stdout)["takes"][0]
    assert take["blend"][0]["weight"] == 40 and take["blend"][0]["sliders"] == {"0": 3.0}
    sidecar = json.loads(Path(take["sidecar"]).read_text())
    assert [m["name"] for m in sidecar["blend_models"]] == ["tiny-b"]
    audio, _ = sf.read(take["path"])
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--blend", "tiny:40"], "itself"),
        (["--blend", "tiny-b:0"], "more than 0"),
        (["--blend", "tiny-b:60", "--blend", "tiny-b:50"], "under 100"),
        (["--blend", "tiny-b"], "MODEL:PERCENT"),
        (["--spatial", "stereo", "--width", "1.5"], "width"),
        (["--azimuth", "200"], "azimuth"),
        (["--spatial", "surround"], "spatial mode"),
    ],
)
def test_bad_blend_and_spatial_arguments(tiny_model, tiny_model_b, tmp_path, args, expected):
    result = distill(tiny_model.home, "generate", "tiny", "-d", "1", *args, "--out", str(tmp_path))
    assert expected.lower() in one_line_error(result).lower()
    assert not any(tmp_path.iterdir())


def test_a_sample_pack_has_sortable_names_one_shots_and_a_pack_sidecar(tiny_model, tmp_path):
    out = tmp_path / "kit"
    result = distill(
        tiny_model.home, "generate", "tiny", "--mode", "oneshot", "-n", "3", "--seed", "5",
        "--out", str(out), "--no-history",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.glob("*.wav"))
    assert names == ["tiny-01.wav", "tiny-02.wav", "tiny-03.wav"]
    pack = json.loads((out / "tiny-pack.json").read_text())
    assert [t["file"] for t in pack["takes"]] == names
    assert [t["seed"] for t in pack["takes"]] == [5, 6, 7]
    for name in names:
        audio, rate = sf.read(out / name)
        assert len(audio) < 1.5 * rate  # one event, cut at its decay (the sounds are 0.9 s)
        assert np.isclose(np.abs(audio).max(), 10 ** (-1 / 20), atol=2e-3)  # levelled


def test_resynth_progress_counts_a_segment_once_it_is_fitted(monkeypatch, capsys):
    """The estimate follows the fit, not the reading: a segment is read whole before its chunks
    are fitted, so while it is fitted the share shown is the first read and the segments before."""
    from distill.cli import resynth as resynth_cli

    clock = iter(range(0, 10_000, 10))  # 10 s between calls: every tick prints a line
    monkeypatch.setattr(resynth_cli.time, "monotonic", lambda: float(next(clock)))
    progress = resynth_cli.Progress(seconds=60.0, sample_rate=100, model="m")  # 6 000 samples
    capsys.readouterr()

    def analysis():  # as spectral.LongAnalysis: read once for the peak, then again by segments
        for _ in progress.counted([np.zeros(600)] * 10, "read"):
            pass
        second = progress.counted([np.zeros(600)] * 10, "read")
        for count in (4, 4, 2):  # segments of 2 400, 2 400 and 1 200 samples, 10 per frame
            frames = sum(len(next(second)) for _ in range(count)) // 10
            yield np.zeros((2, 1, frames))

    shown = []  # the last share printed while each segment is being fitted, in %
    for _ in progress.counted(analysis(), "fit", size=lambda s: s.shape[-1] * 10):
        shown.append(int(capsys.readouterr().err.splitlines()[-1].split(" %")[0].split()[-1]))
    for _ in progress.counted([np.zeros(6000)], "render"):
        pass
    read, fit = resynth_cli.Progress.SHARES["read"][0], resynth_cli.Progress.SHARES["fit"][0]
    assert shown == [round(100 * (read + fit * done)) for done in (0.0, 0.4, 0.8)]
    assert progress.share == pytest.approx(sum(s for v in progress.SHARES.values() for s in v))
