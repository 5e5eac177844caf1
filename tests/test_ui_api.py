"""The web page's event handlers through gradio_client, against an app served in-process."""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from helpers import served_app, write_demo_sounds

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError, ValidationError  # noqa: E402


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    """(client, home, job): the app on a copy of the tiny model's home."""
    home = tmp_path_factory.mktemp("ui-api") / "home"
    shutil.copytree(tiny_model.home, home)
    with served_app(home) as (url, job):
        yield Client(url, verbose=False), home, job


# After the model: duration, seed, variation, mode, density, level, like; then the shared form.
TEXTURE = [0.5, "texture", 1.0, "auto", None]  # variation … like: an exact-length texture
SPATIAL = ["mono", 0.7, 0, 0, 0]


def update_value(output):
    """A file the page returned, from a component update (a dict) or as it is."""
    return output.get("value") if isinstance(output, dict) else output


def peak_dbfs(path) -> float:
    samples, _ = sf.read(path)
    return 20 * np.log10(np.abs(samples).max())


def test_generate_returns_a_48k_file_kept_in_history(served):
    client, home, _ = served
    from distill.library.history import History

    before = len(History(home).list())
    export = ["wav", "48000", "24", True, -30.0]
    audio, download, info, wave, spectrogram, status = client.predict(
        "tiny", 2.0, 7, *TEXTURE, *SPATIAL, *export, api_name="/generate"
    )
    assert status == ""  # no error beside the button
    samples, rate = sf.read(download)
    assert rate == 48_000
    assert samples.shape == (96_000,)
    assert np.isfinite(samples).all() and np.abs(samples).max() > 1e-4
    assert sf.info(audio).samplerate == 48_000
    assert "seed 7" in info and "texture, 2.00 s" in info and "-30.0 LUFS" in info
    with Image.open(wave) as image:  # the envelope is more than the centre line
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (120, 800, 3)
    assert (pixels != pixels[0, 0]).any(axis=2).sum() > 2 * 800
    with Image.open(spectrogram) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (240, 800, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a spread of levels, not a blank
    entries = History(home).list()
    assert len(entries) == before + 1 and entries[0].seed == 7


def test_the_default_first_take_is_clearly_audible(served):
    """Every setting left as the page shows it (it used to peak at −46 dBFS)."""
    client, _, _ = served
    _, download, info, _, _, _ = client.predict("tiny", None, 3, api_name="/generate")
    assert peak_dbfs(download) > -3.0
    assert "one-shot" in info  # the tiny model's sounds are single hits: its own mode
    assert sf.info(download).duration < 2.0  # a one-shot: its natural decay, not 10 s


def test_like_a_recording_is_kept_with_the_take(served, tiny_model):
    client, home, _ = served
    source = sorted(tiny_model.data_dir.glob("*.wav"))[0]
    _, download, _, _, _, _ = client.predict(
        "tiny", None, 4, 0.2, "model", 1.0, "peak", handle_file(str(source)), api_name="/generate"
    )
    sidecar = json.loads(
        (home / "ui" / "takes" / Path(download).with_suffix(".json").name).read_text()
    )
    kept = Path(sidecar["params"]["like"])
    assert kept.parent.parent == (home / "uploads" / "like").resolve()
    assert kept.name == source.name and kept.read_bytes() == source.read_bytes()
    assert sidecar["params"]["level"] == "peak"


def test_generate_a_pack_gives_players_and_one_zip(served):
    client, home, _ = served
    count = 3
    info, archive, *players, status = client.predict(
        "tiny", count, None, 20, api_name="/generate_pack"
    )
    files = [Path(p) for p in map(update_value, players) if p]
    archive = update_value(archive)
    assert len(players) == 32 and len(files) == count and status == ""
    assert [p["label"] for p in players[:count]] == [f.name for f in files]  # each one named
    assert not any(p["visible"] for p in players[count:])
    assert [f.name for f in files] == [f"tiny-0{i}.wav" for i in range(1, count + 1)]
    for f in files:
        assert sf.info(f).samplerate == 48_000 and peak_dbfs(f) > -3.0
    assert f"{count} takes" in info and "seeds 20…22" in info
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted([f.name for f in files] + ["tiny-pack.json"])
        pack = json.loads(z.read("tiny-pack.json"))
        assert [t["seed"] for t in pack["takes"]] == [20, 21, 22]
        for f in files:
            assert z.read(f.name) == f.read_bytes()
    folder = home / "ui" / "takes" / "packs" / "tiny-20"
    assert (folder / "tiny-pack.zip").is_file()
    with pytest.raises(ValidationError, match="count: a pack holds 2 to 32 takes"):
        client.predict("tiny", 1, None, 20, api_name="/generate_pack")


def test_a_wrong_field_is_named_before_anything_is_rendered(served):
    """The check runs first and names the field (the page shows it beside that field)."""
    client, home, _ = served
    from distill.library.history import History

    before = len(History(home).list())
    with pytest.raises(ValidationError, match=r"seconds: duration must be between"):
        client.predict("tiny", 0.01, 7, 0.5, "texture", api_name="/generate")
    with pytest.raises(ValidationError, match=r"ref: no model or \.distill file called"):
        client.predict("no-such-model", 2.0, 7, 0.5, api_name="/generate")
    with pytest.raises(ValidationError, match=r"ref: no model chosen"):
        client.predict("", 2.0, 7, 0.5, api_name="/generate")
    export = ["wav", "48000", "24", True, None]  # Normalize ticked, no target
    with pytest.raises(ValidationError, match=r"type a loudness target"):
        client.predict("tiny", 2.0, 7, *TEXTURE, *SPATIAL, *export, api_name="/generate")
    blend = ["wav", "48000", "24", False, -14.0, "tiny", "tiny", "", 60, 60, 30]
    with pytest.raises(ValidationError, match=r"under 100 %"):
        client.predict("tiny", 2.0, 7, *TEXTURE, *SPATIAL, *blend, api_name="/generate")
    assert len(History(home).list()) == before  # nothing was rendered


def test_sliders_follow_the_model_and_randomize_stays_safe(served, tiny_model):
    client, home, _ = served
    from distill.generation.loaded import load

    controls = load("tiny", home=home, device="cpu").controls
    values = client.predict("tiny", api_name="/randomize")
    for i, value in enumerate(values[: len(controls)]):
        lo, hi = controls.safe_range(i)
        assert lo - 0.05 <= value <= hi + 0.05
    assert all(v == 0 for v in values[len(controls) :])
    *_, controls_line, warning, _, _ = client.predict("tiny", api_name="/choose_model")
    assert f"{len(controls)} slider" in controls_line and warning == ""
    assert "makes **one-shots** by default" in controls_line


def test_preset_save_and_recall(served):
    client, _, _ = served
    sliders = [2.5, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    args = ["mono", 0.7, 0, 0, 0, "wav", "48000", "24", False, -14.0, "", "", "", 30, 30, 30]
    client.predict("tiny", "warm pad", False, 0.25, *args, *sliders, api_name="/save_preset")
    recalled = client.predict("tiny", "warm pad", api_name="/recall_preset")
    assert recalled[:2] == (2.5, -1.0)
    assert recalled[8] == 0.25  # variation
    with pytest.raises(AppError, match="already has a preset"):
        client.predict("tiny", "Warm Pad", False, 0.5, *args, *sliders, api_name="/save_preset")


def test_dataset_check_returns_each_files_verdict(served, tmp_path):
    client, _, _ = served
    folder = tmp_path / "mixed"
    write_demo_sounds(folder, count=1)
    (folder / "broken.wav").write_text("not audio at all")
    summary, table, gallery = client.predict(str(folder), api_name="/check_folder")
    rows = {row[1]: row for row in table["data"]}
    assert len(rows) == 2
    good = next(name for name in rows if name != "broken.wav")
    assert rows[good][:3] == ["✓", good, "ok"]
    assert not rows[good][3].startswith("ok")  # the note does not say "ok" again
    assert rows["broken.wav"][:3] == ["✗", "broken.wav", "unreadable"]
    assert rows["broken.wav"][3] and not rows["broken.wav"][3].startswith("unreadable")
    assert "1 of 2 files usable" in summary and "need at least 5" in summary
    assert len(gallery) == 1  # a waveform for the file that decodes


@pytest.mark.parametrize(
    ("verdict", "reason", "note"),
    [
        ("ok", "ok", ""),
        ("ok", "ok: 40 ms, padded with silence", "40 ms, padded with silence"),
        ("silent", "silent: peak -inf dBFS", "peak -inf dBFS"),
        ("too short", "too short: 0.004 s (minimum 0.01 s)", "0.004 s (minimum 0.01 s)"),
        ("clipped", "heavily clipped: 3 % of samples", "heavily clipped: 3 % of samples"),
    ],
)
def test_a_files_note_does_not_repeat_its_verdict(verdict, reason, note):
    from distill.ui.data_tab import _note

    assert _note(verdict, reason) == note


def test_dataset_check_of_a_missing_folder_is_a_message(served, tmp_path):
    client, _, _ = served
    with pytest.raises(AppError, match="folder not found"):
        client.predict(str(tmp_path / "nowhere"), api_name="/check_folder")


def test_uploads_are_copied_under_safe_names_and_bad_ones_refused(served, tmp_path):
    client, home, _ = served
    sounds = write_demo_sounds(tmp_path / "picked", count=2)
    good = sorted(sounds.glob("*.wav"))
    odd = good[1].rename(good[1].with_name("my sound (take 2).WAV"))
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"RIFF but not really")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    files = [handle_file(str(p)) for p in (good[0], odd, fake, notes)]
    summary, table, _ = client.predict(files, "../../escape me", api_name="/upload_sounds")
    folder = home / "uploads" / "escape-me"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [good[0].name, "my-sound-take-2-.WAV"]
    )
    assert "fake.wav" in summary and "cannot be read as audio" in summary
    assert "notes.txt" in summary and "not an audio file" in summary
    assert [row[2] for row in table["data"]] == ["ok", "ok"]


def test_library_search_finds_the_model(served):
    client, _, _ = served
    table = client.predict("TIN", api_name="/library_search")
    names = [row[0] for row in table["data"]]
    # the shared home may also hold "tiny-b" (trained by the blend tests): both match
    assert "tiny" in names and all("tin" in name for name in names), names
    assert client.predict("no such thing", api_name="/library_search")["data"] in ([], [[]])


def test_history_ab_players_and_differences(served):
    client, home, _ = served
    from distill.library.history import History

    for seed in (11, 12):
        client.predict("tiny", 1.0, seed, *TEXTURE, api_name="/generate")
    newest, older = History(home).list(limit=2)
    player_a, player_b, differences = client.predict(
        older.id, newest.id, api_name="/history_compare"
    )
    assert sf.info(player_a).frames == sf.info(player_b).frames == 48_000
    changed = {row[0]: row[1:] for row in differences["data"]}
    assert changed["seed"] == ["11", "12"]  # in words, not params.seed
    ab = client.predict(older.id, newest.id, api_name="/history_ab_file")
    assert sf.info(ab).frames == 48_000 * 2 + 24_000  # A, a 0.5 s gap, B


def test_replaying_a_blend_whose_partner_was_deleted_names_that_model(served, tiny_model):
    client, home, _ = served
    from distill.library.history import History
    from distill.library.store import Library

    partner = Library(home).import_file(tiny_model.model_file, name="partner pad")
    blend = ["wav", "48000", "24", False, -14.0, "partner pad", "", "", 30, 30, 30]
    client.predict("tiny", 1.0, 5, *TEXTURE, *SPATIAL, *blend, api_name="/generate")
    take = History(home).list(limit=1)[0]
    assert [b["name"] for b in take.sidecar["blend_models"]] == ["partner pad"]
    Library(home).delete(partner)
    with pytest.raises(AppError, match=r"blends in 'partner pad', deleted from the library"):
        client.predict(take.id, api_name="/history_replay")


def test_history_zip_holds_the_chosen_takes_and_their_settings(served):
    client, home, _ = served
    from distill.library.history import History

    for seed in (31, 32, 33):
        client.predict("tiny", 1.0, seed, *TEXTURE, api_name="/generate")
    newest, middle, _ = History(home).list(limit=3)
    archive = update_value(client.predict([newest.id, middle.id], "", api_name="/history_zip"))
    with zipfile.ZipFile(archive) as z:
        names = sorted(z.namelist())
        assert names == sorted(
            [e.audio.name for e in (newest, middle)]
            + [f"{e.audio.stem}.json" for e in (newest, middle)]
        )
        assert z.read(newest.audio.name) == newest.audio.read_bytes()
        assert json.loads(z.read(f"{newest.audio.stem}.json"))["params"]["seed"] == 33
    everything = update_value(client.predict([], "", api_name="/history_zip"))  # all listed
    with zipfile.ZipFile(everything) as z:
        from distill.ui.history_tab import LIST_LIMIT  # what the page lists, newest first

        listed = History(home).list(limit=LIST_LIMIT)  # takes of any format other tests made
        assert len([n for n in z.namelist() if not n.endswith(".json")]) == len(listed)


def test_every_take_made_on_the_page_in_one_zip(served):
    """The zip of a page's takes: one gradio_client is one page (its own session)."""
    _, home, _ = served
    client = Client(served[0].src, verbose=False)  # a fresh page: only its own takes
    made = [
        client.predict("tiny", 1.0, seed, *TEXTURE, api_name="/generate")[1] for seed in (41, 42)
    ]
    archive = update_value(client.predict(api_name="/zip_takes"))
    assert Path(archive).name in [p.name for p in (home / "ui" / "zips").iterdir()]
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(
            [Path(m).name for m in made] + [Path(m).with_suffix(".json").name for m in made]
        )
        for m in made:
            assert z.read(Path(m).name) == Path(m).read_bytes()


def test_a_model_downloads_as_its_distill_file(served):
    client, home, _ = served
    from distill.library.store import Library

    entry = Library(home).resolve("tiny")
    downloaded = Path(update_value(client.predict(entry.id, api_name="/export_model")))
    assert downloaded.name == "tiny.distill"
    assert downloaded.read_bytes() == entry.path.read_bytes()
    (written,) = (home / "ui" / "exports").rglob("*.distill")  # in a folder the page serves
    assert written.read_bytes() == entry.path.read_bytes()


def test_a_time_limited_run_finishes_its_time_budget(served, tiny_model):
    """Training with a time limit (and no epochs) ends as finished, not as a failed stop."""
    client, home, job = served
    from distill.library.store import Library

    assert job.wait(60)
    minutes = 0.05  # 3 s
    args = [str(tiny_model.data_dir), "budget", "auto", None, None, None, None, minutes]
    client.predict(*args, api_name="/start_training")
    deadline = time.monotonic() + 30
    while job.snapshot().position is None and time.monotonic() < deadline:
        time.sleep(0.1)
    running = job.snapshot()
    assert running.total_epochs is None and running.budget_minutes == minutes  # "epoch 2"
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == "finished", snap.ending
    assert snap.ending[0].startswith("used its time budget of 0.05 min")
    assert Library(home).resolve(snap.model_id).name == "budget"


def test_one_training_at_a_time_and_cancel(served, tiny_model):
    client, _, job = served
    client.predict(
        str(tiny_model.data_dir),
        "ui run",
        "auto",
        500,
        None,
        None,
        None,
        None,
        api_name="/start_training",
    )
    with pytest.raises(AppError, match="already running"):
        client.predict(
            str(tiny_model.data_dir),
            "again",
            "auto",
            5,
            None,
            None,
            None,
            None,
            api_name="/start_training",
        )
    deadline = time.monotonic() + 60
    while not job.snapshot().steps and time.monotonic() < deadline:
        time.sleep(0.2)
    client.predict(api_name="/cancel_training")
    assert job.wait(60)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.steps
    assert any("library" in line for line in snap.ending)


def test_import_a_model_file(served, tiny_model):
    client, home, _ = served
    from distill.library.store import Library

    client.predict(handle_file(str(tiny_model.model_file)), "", api_name="/import_model")
    names = [entry.name for entry in Library(home).list()]
    assert "tiny-2" in names  # a taken name gets -2
    with pytest.raises(AppError, match=r"choose a \.distill file"):
        client.predict(None, "", api_name="/import_model")


@pytest.mark.parametrize(
    ("args", "warned"),
    [([], False), (["--host", "0.0.0.0"], True), (["--host", "localhost"], False)],
)
def test_ui_command_binds_localhost_unless_told(monkeypatch, tmp_path, args, warned):
    from typer.testing import CliRunner

    from distill.cli.app import app

    calls = []
    monkeypatch.setattr("distill.ui.app.launch", lambda home, **kw: calls.append(kw))
    result = CliRunner().invoke(app, ["ui", "--no-browser", "--home", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == (args[1] if args else "127.0.0.1")
    assert calls[0]["open_browser"] is False
    assert ("reachable from other machines" in result.output) == warned


def test_a_takes_levels_say_what_the_loudness_target_did():
    """The line under a take: its loudness where it can be measured; for a take under one 400 ms
    block (integrated loudness is undefined there) that it was levelled looped to the target;
    the unit with the target the peak ceiling held it under; nothing about loudness without a
    target."""
    from distill.audio.write import ExportOptions, ExportResult
    from distill.ui.generate_tab import _levels

    def take(seconds: float, loudness: float | None, limit_db: float = 0.0) -> ExportResult:
        return ExportResult(
            Path("t.wav"),
            None,
            "wav",
            48_000,
            "24",
            int(seconds * 48_000),
            1,
            -1.0,
            loudness,
            3.0 + limit_db,
            limit_db,
        )

    target = ExportOptions(lufs=-14.0)
    assert _levels(take(2.0, -14.04), target) == "peak -1 dBFS, -14.0 LUFS"
    short = _levels(take(0.3, None), target)
    assert "too short to measure" in short and "-14 LUFS" in short
    limited = _levels(take(0.3, None, limit_db=-2.5), target)
    assert "peak ceiling kept it under -14 LUFS" in limited
    assert "LUFS" not in _levels(take(0.3, None), ExportOptions())
