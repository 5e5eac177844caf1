"""Soak: concurrent generate / rename / delete / import / history commands against one home, then
a check that nothing was lost or left inconsistent.

    .venv/bin/python bench/soak.py                 # about a minute
    .venv/bin/python bench/soak.py --seconds 300   # longer

A tiny model is trained on synthetic sounds (seconds) and imported under four names; then, for
`--seconds`, separate processes of the real command run at once: two generators writing takes
with the same seed into one folder (with history), a renamer, a deleter that deletes a model and
imports it again under a new name, and a history browser that lists, shows and deletes takes.
At the end:

- the database: `PRAGMA integrity_check` is "ok" and `PRAGMA foreign_key_check` finds nothing;
- rows against files: every model row has its file and every model file its row; every history
  row has its audio and thumbnail and every history folder its row; no staging or temp files;
- no take lost: every take a generate reported exists with its sidecar, each under its own name;
  every take kept in the history is still there, unless the history browser deleted it or its
  model was deleted (a take goes with its model);
- every command ended with 0, or with one line of error that a concurrent change explains
  ("no model called …", "was deleted meanwhile" …): never a traceback.

Prints one JSON line (commands run, errors seen, problems found); exit code 1 if any problem.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ENTRY = [sys.executable, "-c", "from distill.cli.app import main; main()"]
# One-line errors a concurrent change explains (a model renamed or deleted by another process).
EXPECTED = (
    "no model",
    "deleted meanwhile",
    "already deleted",
    "is missing",
    "no take",
    "already exists",
    "not found",
)


class Soak:
    def __init__(self, home: Path, model_file: Path, out: Path, seconds: float) -> None:
        self.home, self.model_file, self.out = home, model_file, out
        self.seconds = seconds
        self.deadline = 0.0  # set when the workers start
        self.lock = threading.Lock()
        self.commands: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.problems: list[str] = []
        self.takes: list[dict] = []  # {"path", "model_id"} of every take a generate reported
        self.deleted_models: set[str] = set()
        self.deleted_takes: set[str] = set()  # history sources the browser deleted
        self.serial = 0

    # -- running commands ------------------------------------------------------------------
    def run(self, kind: str, *args: str) -> dict | None:
        """One command; its JSON output, or None after an explained one-line error."""
        env = {**os.environ, "DISTILL_HOME": str(self.home), "PYTHONIOENCODING": "utf-8"}
        result = subprocess.run(
            [*ENTRY, *args], capture_output=True, text=True, env=env, timeout=600
        )
        with self.lock:
            self.commands[kind] += 1
        if result.returncode == 0:
            return json.loads(result.stdout) if "--json" in args else {}
        lines = result.stderr.strip().splitlines()
        one_line = len(lines) == 1 and lines[0].startswith("error: ")
        explained = one_line and result.returncode == 2 and any(e in lines[0] for e in EXPECTED)
        with self.lock:
            if explained:
                self.errors[f"{kind}: {_gist(lines[0])}"] += 1
            else:
                self.problems.append(f"{kind} {args} → rc {result.returncode}: {result.stderr}")
        return None

    def names(self) -> list[str]:
        """The library's models by id (a rename elsewhere does not change it; a delete does)."""
        listed = self.run("list", "model", "list", "--json")
        return [m["id"] for m in (listed or {}).get("models", [])]

    def fresh_name(self, prefix: str) -> str:
        with self.lock:
            self.serial += 1
            return f"{prefix}-{self.serial}"

    # -- the workers ---------------------------------------------------------------------------
    def generator(self, seed: int) -> None:
        while time.monotonic() < self.deadline:
            names = self.names()
            if not names:
                continue
            name = random.choice(names)
            args = ["generate", name, "-d", "0.5", "-n", "2", "--seed", str(seed)]
            args += ["--out", str(self.out)]
            report = self.run("generate", *args, "--json")
            if report:
                with self.lock:
                    self.takes += [
                        {"path": t["path"], "model_id": report["model"]["id"]}
                        for t in report["takes"]
                    ]

    def renamer(self) -> None:
        while time.monotonic() < self.deadline:
            names = self.names()
            if names:
                self.run("rename", "model", "rename", random.choice(names), self.fresh_name("r"))

    def deleter(self) -> None:
        while time.monotonic() < self.deadline:
            time.sleep(2.0)  # models must live long enough for takes to be made of them
            names = self.names()
            if len(names) > 1:
                gone = self.run(
                    "delete", "model", "delete", random.choice(names), "--yes", "--json"
                )
                if gone:
                    with self.lock:
                        self.deleted_models.add(gone["deleted"]["id"])
            name = self.fresh_name("m")
            self.run("import", "model", "import", str(self.model_file), "--name", name)

    def historian(self) -> None:
        while time.monotonic() < self.deadline:
            listed = self.run("history list", "history", "list", "--json") or {}
            entries = listed.get("history", [])
            if not entries:
                time.sleep(0.5)
                continue
            entry = random.choice(entries)
            self.run("history show", "history", "show", entry["id"], "--json")
            if random.random() < 0.3:
                gone = self.run("history delete", "history", "delete", entry["id"], "--json")
                if gone:
                    with self.lock:
                        self.deleted_takes.add(gone["deleted"]["source"])

    # -- checking ------------------------------------------------------------------------------
    def check(self) -> dict:
        db = sqlite3.connect(self.home / "library.sqlite")
        db.row_factory = sqlite3.Row
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            self.problems.append(f"integrity_check: {integrity}")
        if db.execute("PRAGMA foreign_key_check").fetchall():
            self.problems.append("foreign_key_check found rows without their model")
        models = db.execute("SELECT id, file FROM models").fetchall()
        history = db.execute(
            "SELECT id, audio, thumbnail, source, model_id FROM history"
        ).fetchall()
        db.close()

        files = {p.name for p in _listing(self.home / "models")}
        for row in models:
            if not (self.home / row["file"]).is_file():
                self.problems.append(f"model {row['id']} has no file")
        orphans = files - {Path(row["file"]).name for row in models}
        if orphans:
            self.problems.append(f"files without a model row: {sorted(orphans)}")
        folders = {p.name for p in _listing(self.home / "history") if p.is_dir()}
        for row in history:
            for key in ("audio", "thumbnail"):
                if not (self.home / row[key]).is_file():
                    self.problems.append(f"history {row['id']} has no {key}")
        orphans = folders - {row["id"] for row in history}
        if orphans:
            self.problems.append(f"history folders without a row: {sorted(orphans)}")
        leftovers = [
            p.name
            for folder in (self.home, self.home / "models", self.home / "history", self.out)
            for p in _listing(folder)
            if p.name.startswith(".")
        ]
        if leftovers:
            self.problems.append(f"staging or temp files left: {sorted(leftovers)}")

        paths = [t["path"] for t in self.takes]
        if len(set(paths)) != len(paths):
            self.problems.append("two generates reported the same file")
        for take in self.takes:
            path = Path(take["path"])
            if not path.is_file() or not path.with_suffix(".json").is_file():
                self.problems.append(f"take lost: {path}")
            elif json.loads(path.with_suffix(".json").read_text())["export"]["file"] != path.name:
                self.problems.append(f"{path} holds another take's sidecar")
        kept = {row["source"] for row in history}
        for take in self.takes:
            source = str(Path(take["path"]).resolve())
            if source in kept or source in self.deleted_takes:
                continue
            if take["model_id"] not in self.deleted_models:
                self.problems.append(f"take missing from the history: {source}")
        on_disk = {p.name for p in self.out.glob("*.wav")}
        if len(on_disk) != len(self.takes):
            self.problems.append(f"{len(on_disk)} takes on disk, {len(self.takes)} reported")
        return {"models": len(models), "history_rows": len(history), "takes": len(self.takes)}


def _listing(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _gist(line: str) -> str:
    return next(e for e in EXPECTED if e in line)


def tiny_model(folder: Path) -> Path:
    """A tiny model trained for a few seconds on synthetic sounds (as the tests' fixture)."""
    import soundfile as sf

    from distill.audio import synth
    from distill.model.loss import LossConfig, STFTLossConfig
    from distill.spectral import SpectralConfig
    from distill.training.session import train

    sounds = folder / "sounds"
    sounds.mkdir(parents=True)
    for name, audio in synth.demo_corpus(7, 8):
        sf.write(sounds / f"{name}.wav", audio[: int(0.9 * 48_000)], 48_000, subtype="PCM_24")
    result = train(
        sounds,
        home=folder / "training home",
        name="soak",
        epochs=5,
        spectral=SpectralConfig(chunk_seconds=0.5),
        channels=(4, 8, 8, 16, 16),
        loss=LossConfig(stft=STFTLossConfig(max_items=2)),
        preset="conservative",
        latent_dim=8,
        batch_size=4,
        augment={"copies": 0},
        threads=1,
    )
    assert result.model_file is not None
    return result.model_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_file = tiny_model(folder)
        home, out = folder / "home", folder / "takes"
        soak = Soak(home, model_file, out, args.seconds)
        for i in range(4):
            soak.run("import", "model", "import", str(model_file), "--name", f"m{i}")
        started = time.monotonic()
        soak.deadline = started + args.seconds
        workers = [
            threading.Thread(target=soak.generator, args=(7,)),
            threading.Thread(target=soak.generator, args=(7,)),  # the same seed, the same folder
            threading.Thread(target=soak.renamer),
            threading.Thread(target=soak.deleter),
            threading.Thread(target=soak.historian),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        counts = soak.check()
        report = {
            "seconds": round(time.monotonic() - started, 1),
            "commands": dict(soak.commands),
            "explained_errors": dict(soak.errors),
            **counts,
            "problems": soak.problems,
        }
        print(json.dumps(report))
        sys.exit(1 if soak.problems else 0)


if __name__ == "__main__":
    main()
