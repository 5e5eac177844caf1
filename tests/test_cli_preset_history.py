"""`distill preset` and `distill history` through the real entry point, on a copy of the tiny
model's home: every command, JSON and text output, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from distill.library.store import Library
from helpers import distill, ok, one_line_error


def test_preset_commands(home, tmp_path):
    first, second, third = Library(home).resolve("tiny").controls[:3]
    save = ["preset", "save", "tiny", "Dark", "--slider", f"{first}=-4", "--slider", "2=2.5"]
    saved = json.loads(ok(distill(home, *save, "--variation", "0.2", "--width", "0.6", "--json")))
    assert saved["sliders"] == {first: -4.0, second: 2.5}
    assert saved["variation"] == 0.2 and saved["spatial"] == {"width": 0.6, "mode": "stereo"}
    assert "--force" in one_line_error(distill(home, *save))
    assert "saved preset dark of tiny" in ok(
        distill(home, *save[:3], "dark", "--slider", "3=1", "--force")
    )

    listed = json.loads(ok(distill(home, "preset", "list", "tiny", "--json")))
    assert [(p["name"], p["sliders"]) for p in listed["presets"]] == [("dark", {third: 1.0})]
    assert "dark" in ok(distill(home, "preset", "list"))
    shown = ok(distill(home, "preset", "show", "TINY", "DARK"))
    assert "preset:    dark" in shown and "model:     tiny" in shown

    # generate reads the preset by name
    out = tmp_path / "takes"
    report = json.loads(
        ok(
            distill(
                home,
                "generate",
                "tiny",
                "--preset",
                "dark",
                "-d",
                "0.5",
                "--seed",
                "1",
                "--out",
                str(out),
                "--no-history",
                "--json",
            )
        )
    )
    assert report["takes"][0]["sliders"] == {third: 1.0}

    assert "to night" in ok(distill(home, "preset", "rename", "tiny", "dark", "night"))
    assert "deleted preset night of tiny" in ok(distill(home, "preset", "delete", "tiny", "night"))
    error = one_line_error(distill(home, "preset", "show", "tiny", "night"))
    assert "model 'tiny' has no presets" in error
    error = one_line_error(distill(home, "preset", "save", "tiny", "x", "--slider", "sparkle=1"))
    assert "no slider 'sparkle'" in error and first in error
    assert "nothing to save" in one_line_error(distill(home, "preset", "save", "tiny", "x"))


def test_history_commands(home, tmp_path):
    takes = tmp_path / "takes"
    generate = ["generate", "tiny", "-d", "1", "--mode", "texture", "-n", "2", "--seed", "5"]
    generate += ["--out", str(takes)]
    ok(distill(home, *generate, "--json"))  # kept in the history as they are written

    listed = json.loads(ok(distill(home, "history", "list", "--json")))["history"]
    assert [e["seed"] for e in listed] == [6, 5]  # newest first
    newer, older = (e["id"] for e in listed)
    assert older[:8] in ok(distill(home, "history", "list", "--model", "tiny", "--limit", "5"))
    shown = json.loads(ok(distill(home, "history", "show", older[:6], "--json")))
    assert shown["sidecar"]["params"]["seed"] == 5 and Path(shown["audio"]).is_file()
    assert f"id:         {older}" in ok(distill(home, "history", "show", older))

    compared = json.loads(ok(distill(home, "history", "compare", older, newer, "--json")))
    assert compared["differences"] == [{"key": "params.seed", "a": 5, "b": 6}]
    ab = Path(compared["ab_file"])
    assert ab == home / "history" / f"ab-{older[:8]}-{newer[:8]}.wav"
    assert sf.info(ab).frames == 48_000 + 24_000 + 48_000
    text = ok(distill(home, "history", "compare", older, newer, "--out", str(tmp_path / "ab.wav")))
    assert "params.seed" in text and f"A/B: {tmp_path / 'ab.wav'}" in text

    replayed = json.loads(
        ok(distill(home, "history", "replay", older, "--out", str(tmp_path / "again"), "--json"))
    )
    assert replayed["identical"] is True and Path(replayed["path"]).parent == tmp_path / "again"

    assert f"deleted take {older}" in ok(distill(home, "history", "delete", older))
    error = one_line_error(distill(home, "history", "show", older))
    assert error == f"error: no take '{older}' in the history: see `distill history list`"
    assert "no take" in one_line_error(distill(home, "history", "replay", "beef"))
