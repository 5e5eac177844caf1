"""`distill preset` and `distill history` through the real entry point, on a copy of the tiny
model's home: every command, JSON and text output, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from distill.library.store import Library, connect, write

ENTRY = [sys.executable, "-c", "from distill.cli.app import main; main()"]


def distill(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ENTRY, *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def home(tiny_model, tmp_path) -> Path:
    """A private copy of the tiny model's library, without the presets and takes other tests
    left in the shared home."""
    home = shutil.copytree(
        tiny_model.home,
        tmp_path / "home",
        ignore=shutil.ignore_patterns("cache", "runs", "history"),
    )
    with connect(home / "library.sqlite") as conn, write(conn):
        conn.execute("DELETE FROM presets")
        conn.execute("DELETE FROM history")
    return home


def test_preset_commands(home, tmp_path):
    first, second, third = Library(home).resolve("tiny").controls[:3]
    save = ["preset", "save", "tiny", "Dark", "--slider", f"{first}=-4", "--slider", "2=2.5"]
    saved = json.loads(
        ok(distill(*save, "--variation", "0.2", "--width", "0.6", "--json", home=home))
    )
    assert saved["sliders"] == {first: -4.0, second: 2.5}
    assert saved["variation"] == 0.2 and saved["spatial"] == {"width": 0.6, "mode": "stereo"}
    assert "--force" in one_line_error(distill(*save, home=home))
    assert "saved preset dark of tiny" in ok(
        distill(*save[:3], "dark", "--slider", "3=1", "--force", home=home)
    )

    listed = json.loads(ok(distill("preset", "list", "tiny", "--json", home=home)))
    assert [(p["name"], p["sliders"]) for p in listed["presets"]] == [("dark", {third: 1.0})]
    assert "dark" in ok(distill("preset", "list", home=home))
    shown = ok(distill("preset", "show", "TINY", "DARK", home=home))
    assert "preset:    dark" in shown and "model:     tiny" in shown

    # generate reads the preset by name
    out = tmp_path / "takes"
    report = json.loads(
        ok(
            distill(
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
                home=home,
            )
        )
    )
    assert report["takes"][0]["sliders"] == {third: 1.0}

    assert "to night" in ok(distill("preset", "rename", "tiny", "dark", "night", home=home))
    assert "deleted preset night of tiny" in ok(
        distill("preset", "delete", "tiny", "night", home=home)
    )
    error = one_line_error(distill("preset", "show", "tiny", "night", home=home))
    assert "model 'tiny' has no presets" in error
    error = one_line_error(
        distill("preset", "save", "tiny", "x", "--slider", "sparkle=1", home=home)
    )
    assert "no slider 'sparkle'" in error and first in error
    assert "nothing to save" in one_line_error(distill("preset", "save", "tiny", "x", home=home))


def test_history_commands(home, tmp_path):
    takes = tmp_path / "takes"
    generate = ["generate", "tiny", "-d", "1", "--mode", "texture", "-n", "2", "--seed", "5"]
    generate += ["--out", str(takes)]
    ok(distill(*generate, "--json", home=home))  # kept in the history as they are written

    listed = json.loads(ok(distill("history", "list", "--json", home=home)))["history"]
    assert [e["seed"] for e in listed] == [6, 5]  # newest first
    newer, older = (e["id"] for e in listed)
    assert older[:8] in ok(distill("history", "list", "--model", "tiny", "--limit", "5", home=home))
    shown = json.loads(ok(distill("history", "show", older[:6], "--json", home=home)))
    assert shown["sidecar"]["params"]["seed"] == 5 and Path(shown["audio"]).is_file()
    assert f"id:         {older}" in ok(distill("history", "show", older, home=home))

    compared = json.loads(ok(distill("history", "compare", older, newer, "--json", home=home)))
    assert compared["differences"] == [{"key": "params.seed", "a": 5, "b": 6}]
    ab = Path(compared["ab_file"])
    assert ab == home / "history" / f"ab-{older[:8]}-{newer[:8]}.wav"
    assert sf.info(ab).frames == 48_000 + 24_000 + 48_000
    text = ok(
        distill("history", "compare", older, newer, "--out", str(tmp_path / "ab.wav"), home=home)
    )
    assert "params.seed" in text and f"A/B: {tmp_path / 'ab.wav'}" in text

    replayed = json.loads(
        ok(
            distill(
                "history", "replay", older, "--out", str(tmp_path / "again"), "--json", home=home
            )
        )
    )
    assert replayed["identical"] is True and Path(replayed["path"]).parent == tmp_path / "again"

    assert f"deleted take {older}" in ok(distill("history", "delete", older, home=home))
    error = one_line_error(distill("history", "show", older, home=home))
    assert error == f"error: no take '{older}' in the history: see `distill history list`"
    assert "no take" in one_line_error(distill("history", "replay", "beef", home=home))
