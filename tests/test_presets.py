"""Presets (Python API) on a copy of the tiny model's home: save, list, get, rename, delete,
label checks, stale labels after a slider rename, and cascade on model deletion."""

from __future__ import annotations

import sqlite3

import pytest

from distill.controls.sliders import Controls
from distill.errors import UserError
from distill.generation.loaded import load
from distill.generation.presets import save_preset
from distill.library.presets import Presets
from distill.library.store import Library


@pytest.fixture
def controls(home) -> Controls:
    loaded = load("tiny", home=home, device="cpu")
    assert loaded.controls is not None and len(loaded.controls) >= 2
    return loaded.controls


def test_save_get_list_rename_delete(home, controls):
    first, second = controls.labels[:2]
    presets = Presets(home)
    saved = save_preset(
        home,
        "tiny",
        "Dark",
        sliders={first.upper(): -4, "2": 2.5},  # any case; numbers pick sliders by position
        variation=0.2,
        spatial={"mode": "stereo", "width": 0.7},
    )
    assert saved.sliders == {first: -4.0, second: 2.5}  # stored under the model's own labels
    assert (saved.variation, saved.spatial) == (0.2, {"mode": "stereo", "width": 0.7})
    assert saved.model_name == "tiny" and saved.created == saved.updated

    assert presets.get("tiny", "dark") == saved  # names ignore case
    save_preset(home, "tiny", "airy", sliders={first: 6})
    assert [p.name for p in presets.list("tiny")] == ["airy", "Dark"]
    assert [p.name for p in presets.list()] == ["airy", "Dark"]

    renamed = presets.rename("tiny", "DARK", "Night")
    assert renamed.name == "Night" and renamed.sliders == saved.sliders
    assert renamed.created == saved.created
    with pytest.raises(UserError, match="already has a preset called 'airy'"):
        presets.rename("tiny", "night", "AIRY")

    deleted = presets.delete("tiny", "night")
    assert deleted.name == "Night"
    with pytest.raises(UserError) as err:
        presets.get("tiny", "Night")
    assert str(err.value) == "model 'tiny' has no preset called 'Night'; it has: airy"
    presets.delete("tiny", "airy")
    with pytest.raises(UserError, match="has no presets: save one with"):
        presets.get("tiny", "airy")


def test_overwrite_needs_the_flag_and_keeps_the_creation_time(home, controls):
    label = controls.labels[0]
    presets = Presets(home)
    old = save_preset(home, "tiny", "kick", sliders={label: 1})
    with pytest.raises(UserError, match=r"already has a preset called 'kick'.*--force"):
        save_preset(home, "tiny", "KICK", sliders={label: 9})
    assert presets.get("tiny", "kick").sliders == {label: 1.0}
    new = save_preset(home, "tiny", "KICK", sliders={label: 9}, overwrite=True)
    assert (new.name, new.sliders, new.created) == ("KICK", {label: 9.0}, old.created)
    assert len(presets.list("tiny")) == 1


def test_unknown_labels_and_bad_values_are_refused_with_the_valid_names(home, controls):
    presets = Presets(home)
    with pytest.raises(UserError) as err:
        save_preset(home, "tiny", "x", sliders={"sparkle": 3})
    message = str(err.value)
    assert "no slider 'sparkle'" in message and all(label in message for label in controls.labels)
    for bad in (11, -10.5, float("nan"), "loud"):
        with pytest.raises(UserError, match="from −10 to 10"):
            save_preset(home, "tiny", "x", sliders={controls.labels[0]: bad})
    with pytest.raises(UserError, match="variation must be between 0 and 1"):
        save_preset(home, "tiny", "x", sliders={}, variation=1.5)
    with pytest.raises(UserError, match="stereo width"):
        save_preset(home, "tiny", "x", sliders={}, spatial={"mode": "stereo", "width": 3})
    with pytest.raises(UserError, match="cannot be empty"):
        save_preset(home, "tiny", "  ", sliders={})
    assert presets.list() == []


def test_apply_maps_labels_to_indices_and_reports_the_ones_gone(home, controls):
    first, second, third = controls.labels[:3]
    presets = Presets(home)
    preset = save_preset(home, "tiny", "mix", sliders={first: -3, third: 5})
    assert presets.apply(preset, controls.labels) == ({0: -3.0, 2: 5.0}, [])

    renamed = controls.rename(first, "sparkle")  # the user renamed a slider since
    values, stale = presets.apply(preset, renamed.labels)
    assert values == {2: 5.0} and stale == [first]
    assert presets.apply(preset, []) == ({}, [first, third])
    assert second not in preset.sliders


def test_presets_go_with_their_model(home, controls):
    presets = Presets(home)
    save_preset(home, "tiny", "gone-with-it", sliders={controls.labels[0]: 2})
    Library(home).delete("tiny")
    assert presets.list() == []
    with sqlite3.connect(home / "library.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM presets").fetchone() == (0,)
    with pytest.raises(UserError, match="no model"):
        presets.get("tiny", "gone-with-it")


def test_a_version_1_library_gains_the_new_tables_in_place(tmp_path):
    from distill.library import store
    from distill.library.history import History

    db = tmp_path / "library.sqlite"
    with sqlite3.connect(db) as conn:  # a library written by the first release
        for statement in store.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
    assert Presets(tmp_path).list() == [] and History(tmp_path).list() == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (2,)
