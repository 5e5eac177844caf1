"""The model library (Python API): real tiny model files, a real SQLite file, two processes."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from distill.audio import synth
from distill.errors import UserError
from distill.generation.loaded import load
from distill.library import store
from distill.library.models import ModelEntry
from distill.library.store import Library, LibraryError
from distill.model.file import (
    ModelFileError,
    ModelMetadata,
    load_model_file,
    read_metadata,
    save_model_file,
)
from distill.model.vae import ConvVAE, ModelConfig
from distill.spectral import ChannelStats, SpectralConfig
from helpers import TINY_TRAINING, fake_controls

CONFIG = ModelConfig(n_mels=32, frames=16, channels=(4, 8, 8, 16, 16), latent_dim=8)
TINY = TINY_TRAINING  # helpers: a run of seconds


def make_model_file(path: Path, name: str, *, seed: int = 0, tags=(), description="") -> Path:
    """A real (untrained) tiny model, about 40 kB."""
    torch.manual_seed(seed)
    model = ConvVAE(CONFIG)
    metadata = ModelMetadata(
        model=CONFIG,
        spectral=SpectralConfig(n_mels=32, chunk_seconds=0.16),  # 16 frames, as the model
        stats=ChannelStats(mean=(-9.5, 0.01), std=(3.2, 0.4)),
        training={
            "dataset": "kicks",
            "files": 12,
            "duration_s": 31.5,
            "epochs": 3,
            "best_epoch": 2,
            "final_losses": {"train_total": 1.25, "val_total": 1.5},
            "date": "2025-01-02T03:04:05+00:00",
        },
        info={"name": name, "description": description, "tags": list(tags)},
        controls=fake_controls(["brightness", "warmth"]),
    )
    return save_model_file(path, model, metadata)


@pytest.fixture
def library(tmp_path) -> Library:
    return Library(tmp_path / "home")


@pytest.fixture
def files(tmp_path) -> Path:
    folder = tmp_path / "files"
    make_model_file(folder / "rain.distill", "rain", tags=["field", "Water"], description="Storm")
    make_model_file(folder / "kicks.distill", "Kicks", seed=1, tags=["drums"])
    make_model_file(folder / "pads.distill", "pads", seed=2, description="slow WATERY pads")
    return folder


def model_files(library: Library) -> list[Path]:
    """Every file under the models folder, hidden ones included (no staging leftovers)."""
    return sorted(library.models_dir.iterdir()) if library.models_dir.exists() else []


# --- adding and finding -----------------------------------------------------------------------


def test_add_copies_the_file_under_its_id_and_keeps_the_summary(library, files):
    entry = library.add(files / "rain.distill")

    assert entry.name == "rain" and len(entry.id) >= 12
    assert entry.path == library.home / "models" / f"{entry.id}.distill"
    assert (files / "rain.distill").is_file()  # a copy: the original stays
    assert (entry.dataset, entry.files, entry.duration_s, entry.epochs) == ("kicks", 12, 31.5, 3)
    assert entry.latent_dim == 8 and entry.controls == ("brightness", "warmth")
    assert entry.tags == ("field", "Water") and entry.description == "Storm"
    assert entry.training["final_losses"] == {"train_total": 1.25, "val_total": 1.5}
    assert model_files(library) == [entry.path]
    assert library.list() == [entry]


def test_move_removes_the_original(library, files):
    entry = library.add(files / "rain.distill", move=True)
    assert not (files / "rain.distill").exists() and entry.path.is_file()


def test_a_taken_name_gets_a_number_ignoring_case(library, files):
    first = library.add(files / "rain.distill")
    second = library.add(files / "rain.distill")
    third = library.import_file(files / "kicks.distill", name="RAIN")

    assert (first.name, second.name, third.name) == ("rain", "rain-2", "RAIN-3")
    assert read_metadata(second.path).info["name"] == "rain-2"  # the file carries it too
    assert read_metadata(files / "rain.distill").info["name"] == "rain"  # the original untouched


def test_list_is_by_name_and_search_matches_name_tag_or_description(library, files):
    for f in sorted(files.iterdir()):
        library.add(f)

    assert [e.name for e in library.list()] == ["Kicks", "pads", "rain"]
    assert [e.name for e in library.list("KICK")] == ["Kicks"]  # name
    assert [e.name for e in library.list("drum")] == ["Kicks"]  # tag
    assert [e.name for e in library.list("storm")] == ["rain"]  # description
    assert [e.name for e in library.list("water")] == ["pads", "rain"]  # description + tag
    assert library.list("nothing like it") == []


def test_resolve_by_name_id_prefix_or_path(library, files):
    rain = library.add(files / "rain.distill")
    library.add(files / "kicks.distill")

    assert library.resolve("RAIN") == rain  # names ignore case
    assert library.resolve(rain.id[:4]) == rain
    assert library.resolve(rain.id.upper()) == rain
    outside = library.resolve(str(files / "pads.distill"))
    assert outside.id is None and not outside.in_library and outside.name == "pads"
    assert outside.path == (files / "pads.distill").resolve()
    assert len(library.list()) == 2  # resolving a path adds nothing


def test_an_ambiguous_id_prefix_lists_the_matches(library, files, monkeypatch):
    counter = itertools.count(1)
    monkeypatch.setattr(store.secrets, "token_hex", lambda n: f"abcd{next(counter):012x}")
    library.add(files / "rain.distill")
    library.add(files / "kicks.distill")

    with pytest.raises(UserError, match="matches 2 models") as err:
        library.resolve("abcd")
    assert "rain" in str(err.value) and "Kicks" in str(err.value)
    with pytest.raises(UserError, match="no model"):
        library.resolve("abc")  # shorter than 4: not an id prefix


def test_an_unknown_ref_names_the_models_there_are(library, files):
    with pytest.raises(UserError, match="library is empty"):
        library.resolve("rain")
    library.add(files / "rain.distill")
    library.add(files / "kicks.distill")

    with pytest.raises(UserError) as err:
        library.resolve("rian")
    message = str(err.value)
    assert "'rian'" in message and "Kicks, rain" in message and "\n" not in message


# --- changing ---------------------------------------------------------------------------------


def test_rename_changes_the_file_too_and_an_export_carries_it(library, files, tmp_path):
    entry = library.add(files / "rain.distill")
    library.add(files / "kicks.distill")

    renamed = library.rename("rain", "Summer Rain")

    assert renamed.id == entry.id and renamed.name == "Summer Rain"
    _, metadata = load_model_file(renamed.path)  # still verifies: the digest covers tensors
    assert metadata.info == {
        "name": "Summer Rain",
        "description": "Storm",
        "tags": ["field", "Water"],
    }
    with pytest.raises(UserError, match="already exists"):
        library.rename("summer rain", "KICKS")
    assert library.rename(entry.id, "summer rain").name == "summer rain"  # its own name, new case

    exported = library.export("summer rain", tmp_path)
    elsewhere = Library(tmp_path / "other home").import_file(exported)
    assert elsewhere.name == "summer rain" and elsewhere.tags == ("field", "Water")


def test_describe_sets_description_and_tags(library, files):
    library.add(files / "kicks.distill")

    entry = library.describe(
        "kicks", description="  808 and acoustic  ", tags=["Drums", " low ", "drums", ""]
    )

    assert entry.description == "808 and acoustic" and entry.tags == ("Drums", "low")
    assert read_metadata(entry.path).info["tags"] == ["Drums", "low"]
    assert library.describe("kicks", tags=[]).tags == ()
    assert library.resolve("kicks").description == "808 and acoustic"  # None kept it
    assert [e.name for e in library.list("acoustic")] == ["Kicks"]


@pytest.mark.parametrize("bad", ["", "   ", "two\nlines", "x" * 101])
def test_unusable_names_are_refused(library, files, bad):
    library.add(files / "rain.distill")
    with pytest.raises(UserError, match="name"):
        library.rename("rain", bad)


def test_delete_removes_the_row_and_the_file(library, files):
    rain = library.add(files / "rain.distill")
    kicks = library.add(files / "kicks.distill")

    assert library.delete(rain.id[:6]) == rain

    assert library.list() == [kicks] and model_files(library) == [kicks.path]
    with pytest.raises(UserError, match="not in the library"):
        library.delete(str(files / "pads.distill"))
    assert (files / "pads.distill").is_file()


def test_export_never_overwrites_without_being_told(library, files, tmp_path):
    library.add(files / "rain.distill")
    target = tmp_path / "out" / "mine.distill"
    with pytest.raises(UserError, match="folder not found"):
        library.export("rain", target)
    target.parent.mkdir()
    target.write_bytes(b"precious")

    with pytest.raises(UserError, match="already exists"):
        library.export("rain", target)
    assert target.read_bytes() == b"precious"

    assert library.export("rain", target, overwrite=True) == target
    assert read_metadata(target).info["name"] == "rain"
    assert sorted(p.name for p in target.parent.iterdir()) == ["mine.distill"]  # no temp left


def test_load_gives_the_same_model_back(library, files):
    library.add(files / "kicks.distill")
    original, _ = load_model_file(files / "kicks.distill")

    loaded = load("kicks", home=library.home, device="cpu")

    x = torch.randn(1, 2, 32, 16)
    assert torch.allclose(original(x)[1], loaded.model(x)[1])  # μ of the same input
    assert loaded.metadata.info["name"] == library.resolve(loaded.model_id).name == "Kicks"


# --- what must never happen -------------------------------------------------------------------


def test_a_damaged_file_is_refused_and_changes_nothing(library, files):
    library.add(files / "rain.distill")
    before = (library.list(), model_files(library))
    truncated = files / "cut.distill"
    raw = (files / "kicks.distill").read_bytes()
    truncated.write_bytes(raw[: len(raw) // 2])
    altered = files / "altered.distill"
    altered.write_bytes(raw[:-10] + bytes(b ^ 0xFF for b in raw[-10:]))

    with pytest.raises(ModelFileError, match="damaged or truncated") as err:
        library.import_file(truncated)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelFileError, match="altered"):
        library.import_file(altered)
    with pytest.raises(ModelFileError, match="not found"):
        library.import_file(files / "missing.distill")

    assert (library.list(), model_files(library)) == before


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b\\c", "/abs/path", "..", "C:\\x"])
def test_hostile_names_stay_names(library, files, tmp_path, name):
    entry = library.import_file(files / "rain.distill", name=name)
    renamed = library.rename(entry, name + " again")

    assert library.resolve(name + " again") == renamed
    assert model_files(library) == [library.models_dir / f"{entry.id}.distill"]
    out = tmp_path / "exports"
    out.mkdir()
    exported = library.export(renamed, out)
    assert exported.parent == out and exported.suffix == ".distill"
    home_files = {p for p in (tmp_path / "home").rglob("*") if p.is_file()}
    assert {p.parent.name for p in home_files} == {"home", "models"}
    assert not list(tmp_path.glob("etc*")) and not (tmp_path / "a").exists()


def test_two_processes_adding_at_once(tmp_path, files):
    home = tmp_path / "home"
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from distill.library.store import Library
        while time.time() < float(sys.argv[3]):  # both start together, torch already imported
            time.sleep(0.001)
        for _ in range(10):
            Library(Path(sys.argv[1])).add(Path(sys.argv[2]), name="same")
        """
    )
    start = str(time.time() + 5.0)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(home), str(files / f"{which}.distill"), start],
            stderr=subprocess.PIPE,
            text=True,
        )
        for which in ("rain", "kicks")
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]

    assert [p.returncode for p in processes] == [0, 0], errors
    assert not any("locked" in e for e in errors)
    entries = Library(home).list()
    assert len(entries) == 20
    assert {e.name for e in entries} == {"same", *(f"same-{n}" for n in range(2, 21))}
    assert len(model_files(Library(home))) == 20


# --- the database itself ----------------------------------------------------------------------


def test_database_is_wal_and_versioned(library, files):
    library.add(files / "rain.distill")
    with sqlite3.connect(library.db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (store.SCHEMA_VERSION,)
        ]
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(LibraryError, match="newer Distill"):
        library.list()


def test_a_damaged_database_is_one_line(library):
    library.db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="damaged") as err:
        library.list()
    assert "\n" not in str(err.value)


def test_the_same_run_replaces_its_entry(library, files, tmp_path):
    run = tmp_path / "runs" / "rain"
    run.mkdir(parents=True)
    first = library.add(files / "rain.distill", name="rain", run=run)
    library.describe(first, description="mine")
    library.rename(first, "my rain")

    again = library.add(files / "kicks.distill", name="rain", run=run)

    assert again.id == first.id and again.name == "my rain" and again.description == "mine"
    assert library.find_run(run) == again and len(library.list()) == 1
    assert read_metadata(again.path).info["name"] == "my rain"
    assert model_files(library) == [again.path]
    replaced, _ = load_model_file(again.path)
    kicks, _ = load_model_file(files / "kicks.distill")
    assert all(
        torch.equal(a, b)
        for a, b in zip(replaced.state_dict().values(), kicks.state_dict().values(), strict=True)
    )


# --- training adds its model --------------------------------------------------------------------


def test_training_ends_with_the_model_in_the_library_and_resume_replaces_it(tmp_path):
    from distill.training.session import resume, train

    data = tmp_path / "my sounds"
    data.mkdir()
    for name, audio in synth.demo_corpus(7, 6):
        sf.write(data / f"{name}.wav", audio[: int(0.9 * 48_000)], 48_000)
    home = tmp_path / "home"

    result = train(data, home=home, name="my sounds", epochs=1, **TINY)

    library = Library(home)
    entry = library.find_run(result.run)
    assert entry is not None and entry.name == "my sounds" and entry.epochs == 1
    assert result.model_file.is_file()  # the run keeps its own copy
    assert entry.path.parent == library.models_dir and entry.dataset == "my sounds"

    resumed = resume(result.run.name, home=home, epochs=2)

    again = library.find_run(resumed.run)
    assert again.id == entry.id and again.epochs == 2 and len(library.list()) == 1


@pytest.mark.parametrize(
    ("training", "text"),
    [
        ({"epochs": 3, "best_epoch": 2}, "3 (the best epoch: 2)"),  # files from before "weights"
        ({"epochs": 3, "best_epoch": 2, "weights": "best"}, "3 (the best epoch: 2)"),
        (
            {"epochs": 40, "best_epoch": 31, "weights": "last", "stopped": "time limit of 5 min"},
            "40 (the last weights; best validation epoch 31), stopped early: time limit of 5 min",
        ),
        ({}, "-"),
    ],
)
def test_an_entry_says_which_epochs_weights_it_holds(tmp_path, training, text):
    entry = ModelEntry(
        id=None,
        name="x",
        path=tmp_path / "x.distill",
        epochs=training.get("epochs"),
        training=training,
    )
    assert entry.epochs_text() == text
    assert entry.to_dict()["weights"] == training.get("weights", "best")
