"""`distill dataset check`: a verdict per file, a summary, and exit codes, on files made here."""

from __future__ import annotations

import json
import subprocess
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from distill.audio import check as check_module
from distill.audio.check import (
    MIN_USABLE_FILES,
    DatasetTooSmallError,
    Verdict,
    check_dataset,
    check_file,
)
from distill.errors import UserError
from helpers import distill, sine

HAS_MP3 = "MP3" in sf.available_formats()
UNICODE_NAME = "my kick ü 日本.wav"
tone = partial(sine, 220)  # Hz: the test tone every file here is made of


def write_ok_files(folder: Path, count: int) -> None:
    for i in range(count):
        sf.write(folder / f"ok_{i}.wav", tone(0.3, 44_100), 44_100)


def build_zoo(folder: Path) -> dict[str, tuple[Verdict, str]]:
    """Every kind of file the check must judge; returns {relative path: (verdict, reason part)}."""
    expected: dict[str, tuple[Verdict, str]] = {}

    def add(name: str, verdict: Verdict, reason: str = "") -> Path:
        expected[name] = (verdict, reason)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    add("text.wav", Verdict.UNREADABLE, "not a WAV file").write_text("hello, not audio\n" * 20)
    add("zero_bytes.wav", Verdict.EMPTY, "0-byte").write_bytes(b"")
    sf.write(add("header_only.wav", Verdict.EMPTY, "no audio frames"), np.zeros((0, 1)), 44_100)
    flac = add("truncated.flac", Verdict.CORRUPT, "truncated or corrupt FLAC")
    sf.write(flac, tone(1.0, 44_100) * np.linspace(0, 1, 44_100), 44_100)
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    sf.write(add("silent.wav", Verdict.SILENT, "peak -inf dBFS"), np.zeros(22_050), 44_100)
    quiet = add("quiet.wav", Verdict.SILENT, "peak -80.0 dBFS (threshold -60 dBFS)")
    sf.write(quiet, tone(0.5, 44_100, amplitude=1e-4), 44_100, subtype="FLOAT")
    nan = tone(0.5, 48_000)
    nan[100] = np.nan
    sf.write(add("nan.wav", Verdict.NON_FINITE, "1 of 24000"), nan, 48_000, subtype="FLOAT")
    inf = tone(0.5, 48_000)
    inf[7:10] = np.inf
    sf.write(add("inf.wav", Verdict.NON_FINITE, "3 of 24000"), inf, 48_000, subtype="FLOAT")
    sf.write(add("rate_8k.wav", Verdict.OK, "ok"), tone(0.5, 8_000), 8_000)
    sf.write(add("rate_192k.flac", Verdict.OK, "ok"), tone(0.5, 192_000), 192_000)
    sf.write(add("six_channels.wav", Verdict.OK, "ok"), tone(0.5, 48_000, channels=6), 48_000)
    sf.write(add("u8.wav", Verdict.OK, "ok"), tone(0.5, 22_050), 22_050, subtype="PCM_U8")
    sf.write(add("float32.wav", Verdict.OK, "ok"), tone(0.5, 48_000), 48_000, subtype="FLOAT")
    # 20 ms one-shots are used (padded); a 5 ms file holds no sound to learn
    sf.write(add("short_5ms.wav", Verdict.TOO_SHORT, "0.005 s"), tone(0.005, 48_000), 48_000)
    sf.write(add(UNICODE_NAME, Verdict.OK, "ok"), tone(0.5, 44_100, channels=2), 44_100)
    sf.write(add("sub dir/nested.aiff", Verdict.OK, "ok"), tone(0.5, 44_100), 44_100)
    sf.write(add("song.ogg", Verdict.OK, "ok"), tone(0.5, 44_100), 44_100)
    clipped = np.clip(tone(0.5, 44_100, amplitude=3.0), -1, 1)
    sf.write(add("clipped.wav", Verdict.CLIPPED, "% of samples at full scale"), clipped, 44_100)
    # 8-bit audio tops out at 127/128: clipping must still be found there.
    clipped_8k = np.clip(tone(0.5, 8_000, amplitude=3.0), -1, 1)
    u8 = add("clipped_u8.wav", Verdict.CLIPPED, "full scale")
    sf.write(u8, clipped_8k, 8_000, subtype="PCM_U8")
    add("voice memo.m4a", Verdict.UNSUPPORTED, "convert it").write_bytes(b"\0\0\0\x20ftypM4A ")
    add("patch.mid", Verdict.NOT_AUDIO, "not audio (.mid)").write_bytes(b"MThd")
    if HAS_MP3:
        mp3 = add("truncated.mp3", Verdict.CORRUPT, "truncated MP3")
        sf.write(mp3, tone(2.0, 44_100), 44_100)
        mp3.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
        add("garbage.mp3", Verdict.UNREADABLE, "not a valid MP3").write_bytes(bytes(4000))

    # Not reported at all: hidden files and folders, notes and cover art.
    (folder / ".hidden.wav").write_text("x")
    (folder / ".git").mkdir()
    sf.write(folder / ".git" / "inside.wav", tone(0.5, 44_100), 44_100)
    (folder / "notes.txt").write_text("recorded in the kitchen")
    Image.new("RGB", (4, 4)).save(folder / "cover.jpg")
    return expected


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    expected = build_zoo(folder)
    return folder, expected, check_dataset(folder)


def test_every_file_gets_the_right_verdict_and_reason(zoo):
    _, expected, report = zoo
    got = {f.path: f for f in report.files}
    assert sorted(got) == sorted(expected)
    for name, (verdict, reason_part) in expected.items():
        assert got[name].verdict is verdict, f"{name}: {got[name].reason}"
        assert reason_part in got[name].reason, f"{name}: {got[name].reason}"


def test_files_are_sorted_by_relative_path_and_hidden_or_sidecar_files_skipped(zoo):
    _, _, report = zoo
    paths = [f.path for f in report.files]
    assert paths == sorted(paths)
    assert "sub dir/nested.aiff" in paths
    assert not any(p.startswith(".") or "/." in p for p in paths)
    assert report.ignored == 2  # notes.txt, cover.jpg


def test_header_fields_are_reported(zoo):
    _, _, report = zoo
    got = {f.path: f for f in report.files}
    six = got["six_channels.wav"]
    assert (six.sample_rate, six.channels, six.format, six.subtype) == (48_000, 6, "WAV", "PCM_16")
    assert six.duration == pytest.approx(0.5)
    assert got["rate_192k.flac"].sample_rate == 192_000
    assert got["u8.wav"].subtype == "PCM_U8"
    assert got[UNICODE_NAME].channels == 2
    assert got["float32.wav"].peak_dbfs == pytest.approx(-6.02, abs=0.05)
    assert got["silent.wav"].peak_dbfs == -np.inf
    assert got["clipped.wav"].clipped_fraction > 0.5
    assert got["text.wav"].sample_rate is None


def test_summary_counts_rates_channels_and_warns_about_mixes(zoo):
    _, expected, report = zoo
    summary = report.summary()
    usable = [n for n, (v, _) in expected.items() if v in (Verdict.OK, Verdict.CLIPPED)]
    assert summary["usable_files"] == len(usable) == len(report.usable)
    assert all(p.is_absolute() and p.exists() for p in report.usable)
    assert summary["sample_rates"] == {
        "8000": 2,
        "22050": 1,
        "44100": 4,
        "48000": 2,
        "192000": 1,
    }
    assert summary["channels"] == {"1": 8, "2": 1, "6": 1}
    assert summary["usable_duration"] == pytest.approx(0.5 * 10)
    assert summary["verdicts"]["ok"] == 8
    warnings = "\n".join(summary["warnings"])
    assert "mixed sample rates: 8000 Hz ×2, 22050 Hz ×1" in warnings
    assert "resampled to 48 kHz" in warnings
    assert "mixed channel counts: mono ×8, stereo ×1, 6 ch ×1" in warnings
    assert "low sample rates: 8000 Hz ×2, 22050 Hz ×1" in warnings
    assert "2 heavily clipped files will be used" in warnings
    assert report.ok and summary["problem"] is None


def test_report_is_json_serialisable_without_infinities(zoo):
    _, _, report = zoo
    text = json.dumps(report.to_dict(), allow_nan=False)  # -inf peaks must become null
    data = json.loads(text)
    assert set(data) == {"files", "summary", "ok"}
    silent = next(f for f in data["files"] if f["path"] == "silent.wav")
    assert silent["peak_dbfs"] is None and silent["verdict"] == "silent" and not silent["usable"]


def test_min_seconds_is_a_parameter(tmp_path):
    write_ok_files(tmp_path, 5)  # 0.3 s each
    assert check_dataset(tmp_path).ok
    report = check_dataset(tmp_path, min_seconds=0.5)
    assert {f.verdict for f in report.files} == {Verdict.TOO_SHORT}
    assert report.files[0].reason == "too short: 0.300 s (minimum 0.5 s)"
    assert not report.ok


def test_too_few_usable_files_gives_a_report_and_a_one_line_refusal(tmp_path):
    write_ok_files(tmp_path, 3)
    (tmp_path / "broken.wav").write_text("nope")
    report = check_dataset(tmp_path)
    assert len(report.usable) == 3 and not report.ok
    assert report.problem.startswith(f"only 3 usable audio files in {tmp_path}")
    assert f"(need at least {MIN_USABLE_FILES})" in report.problem
    with pytest.raises(DatasetTooSmallError) as caught:
        report.require_enough()
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("kind", ["missing", "file", "no audio"])
def test_bad_folder_is_a_user_error(tmp_path, kind):
    target = tmp_path / "data"
    if kind == "file":
        sf.write(tmp_path / "one.wav", tone(0.3, 44_100), 44_100)
        target = tmp_path / "one.wav"
    elif kind == "no audio":
        target.mkdir()
        (target / "notes.txt").write_text("x")
        (target / "patch.mid").write_bytes(b"MThd")
    with pytest.raises(
        UserError,
        match={"missing": "not found", "file": "is a file", "no audio": "no audio files"}[kind],
    ):
        check_dataset(target)


def test_streaming_matches_whole_file_statistics(tmp_path, monkeypatch):
    """Tiny blocks (many boundaries) must give the same numbers as reading the file at once."""
    rng = np.random.default_rng(1)
    signal = np.clip(rng.normal(0, 0.4, (30_001, 2)), -1, 1).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, signal, 44_100, subtype="FLOAT")
    monkeypatch.setattr(check_module, "_BLOCK_SAMPLES", 1_000)
    result = check_file(path, "noise.wav")
    whole = sf.read(path, dtype="float32")[0]
    assert result.peak_dbfs == pytest.approx(20 * np.log10(np.abs(whole).max()), abs=1e-6)
    assert result.clipped_fraction == pytest.approx(np.mean(np.abs(whole) >= 0.999))
    assert result.duration == pytest.approx(30_001 / 44_100)


def test_memory_stays_small_for_a_long_file(tmp_path):
    """90 s of 48 kHz stereo is 35 MB as float32; the check must need a small fraction of that."""
    seconds, rate = 90, 48_000
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as out:
        for _ in range(seconds):
            out.write(tone(1.0, rate, channels=2))
    tracemalloc.start()
    try:
        result = check_file(path, "long.wav", thumbnail=tmp_path / "long.png")
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.verdict is Verdict.OK and result.duration == pytest.approx(seconds)
    assert peak_bytes < 8e6, f"{peak_bytes / 1e6:.1f} MB"


def test_thumbnails_are_written_and_user_files_untouched(tmp_path):
    data, out = tmp_path / "data", tmp_path / "thumbs"
    data.mkdir()
    write_ok_files(data, 4)
    sf.write(data / UNICODE_NAME, tone(0.5, 44_100, channels=2), 44_100)
    sf.write(data / "Ok_0.WAV", tone(0.5, 44_100), 44_100)  # collides with ok_0.wav's name
    (data / "text.wav").write_text("not audio")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.rglob("*")}

    report = check_dataset(data, thumbnails_dir=out)

    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.rglob("*")}
    assert after == before  # nothing added, changed or touched in the user's folder
    got = {f.path: f for f in report.files}
    assert got["text.wav"].thumbnail is None
    thumbs = {name: Path(f.thumbnail) for name, f in got.items() if f.thumbnail}
    assert len(thumbs) == 6 and len(set(thumbs.values())) == 6
    assert thumbs[UNICODE_NAME].name == "my_kick_ü_日本_wav.png"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in thumbs.values())
    for path in thumbs.values():
        assert path.parent == out.resolve()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (400, 80)


def test_thumbnail_folder_inside_the_data_folder_is_not_scanned(tmp_path):
    write_ok_files(tmp_path, 5)
    check_dataset(tmp_path, thumbnails_dir=tmp_path / "thumbs")
    (tmp_path / "thumbs" / "stray.wav").write_text("x")  # would be "unreadable" if scanned
    report = check_dataset(tmp_path, thumbnails_dir=tmp_path / "thumbs")
    assert [f.path for f in report.files] == [f"ok_{i}.wav" for i in range(5)]


# --- the real entry point -------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return distill(None, "dataset", "check", *args, timeout=60)


def test_cli_json_on_a_good_folder(tmp_path):
    data, out = tmp_path / "my data", tmp_path / "thumbs"
    data.mkdir()
    write_ok_files(data, 5)
    sf.write(data / UNICODE_NAME, tone(0.5, 48_000), 48_000)
    (data / "text.wav").write_text("not audio")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.iterdir()}

    result = run_cli(str(data), "--json", "--thumbnails", str(out))

    assert result.returncode == 0, result.stderr
    data_out = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    assert data_out["ok"] is True
    verdicts = {f["path"]: f["verdict"] for f in data_out["files"]}
    assert verdicts == {
        **{f"ok_{i}.wav": "ok" for i in range(5)},
        UNICODE_NAME: "ok",
        "text.wav": "unreadable",
    }
    assert data_out["summary"]["usable_files"] == 6
    assert data_out["summary"]["sample_rates"] == {"44100": 5, "48000": 1}
    assert all(Path(f["thumbnail"]).is_file() for f in data_out["files"] if f["usable"])
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in data.iterdir()} == before


def test_cli_table_then_refusal_when_too_few_files(tmp_path):
    write_ok_files(tmp_path, 2)
    sf.write(tmp_path / "silent.wav", np.zeros(4_410), 44_100)

    result = run_cli(str(tmp_path))

    assert result.returncode == 1
    assert "ok_0.wav" in result.stdout and "silent: peak -inf dBFS" in result.stdout
    assert "2 of 3 files usable" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: only 2 usable audio files in ")
    assert lines[0].endswith("add more recordings or fix the files marked above")


@pytest.mark.parametrize("kind", ["missing", "file", "no audio"])
def test_cli_bad_folder_is_one_line_and_exit_2(tmp_path, kind):
    target = tmp_path / "nowhere"
    if kind == "file":
        target = tmp_path / "notes.txt"
        target.write_text("x")
    elif kind == "no audio":
        target = tmp_path
        (tmp_path / "notes.txt").write_text("x")

    result = run_cli(str(target), "--json")

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr


def test_short_one_shots_are_used_and_say_they_are_padded(tmp_path):
    import numpy as np

    from distill.audio import synth

    sf.write(tmp_path / "hat.wav", synth.hihat(seconds=0.03, rng=1), 48_000)
    sf.write(tmp_path / "click.wav", np.full(240, 0.5, dtype=np.float32), 48_000)  # 5 ms
    report = check_dataset(tmp_path)
    verdicts = {f.path: f for f in report.files}
    assert verdicts["hat.wav"].verdict == Verdict.OK
    assert verdicts["hat.wav"].reason == "ok: 30 ms, padded with silence to the model's 1 s chunk"
    assert verdicts["click.wav"].verdict == Verdict.TOO_SHORT  # 5 ms: no sound to learn
