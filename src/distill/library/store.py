"""The model library of a Distill home: `.distill` files in `<home>/models/<id>.distill`,
indexed in one SQLite database, `<home>/library.sqlite`. `Library` is the API the CLI, the web UI
and scripts call.

The CLI and the web UI (another process) use it at the same time, so: WAL mode (readers never
block the writer), a busy timeout (a writer waits for another instead of failing), and every write
in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two writers never
deadlock upgrading read locks). Connections are short-lived: one per operation, closed after it.

Schema changes are appended to MIGRATIONS, never edited: migration i takes version i to i + 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from distill.atomic import atomic_write
from distill.errors import UserError
from distill.home import resolve_home, safe_name
from distill.library.models import (
    ModelEntry,
    clean_description,
    clean_name,
    clean_tags,
    file_info,
    fold,
    training_columns,
)
from distill.model.file import (
    SUFFIX,
    ModelFileError,
    ModelMetadata,
    load_model_file,
    read_metadata,
    verify_model_file,
    write_controls,
    write_corpus,
    write_info,
)

DB_NAME = "library.sqlite"
MODELS_DIR = "models"
ID_BYTES = 8  # 16 hex characters
MIN_PREFIX = 4  # shortest id prefix accepted as a reference
BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another before giving up

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 → 1: models
        """CREATE TABLE models (
            id TEXT PRIMARY KEY,            -- random hex; also the file's name
            name TEXT NOT NULL,             -- display string, as typed
            name_key TEXT NOT NULL UNIQUE,  -- casefolded name: unique ignoring case
            description TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',      -- JSON list of strings
            file TEXT NOT NULL,             -- relative to the home: models/<id>.distill
            created TEXT NOT NULL,          -- added to the library, ISO 8601 UTC
            trained TEXT,                   -- when training wrote the file
            dataset TEXT,
            files INTEGER,
            duration_s REAL,                -- seconds of audio trained on
            epochs INTEGER,
            latent_dim INTEGER,
            controls TEXT NOT NULL DEFAULT '[]',  -- JSON list of slider labels
            training TEXT NOT NULL DEFAULT '{}',  -- JSON: the file's training summary
            run TEXT                        -- run folder it came from; NULL when imported
        )""",
        "CREATE INDEX models_run ON models (run)",
    ),
    (  # 1 → 2: presets and generation history; both go with their model
        """CREATE TABLE presets (
            model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            name TEXT NOT NULL,             -- display string, as typed
            name_key TEXT NOT NULL,         -- casefolded name: unique per model ignoring case
            sliders TEXT NOT NULL DEFAULT '{}',  -- JSON {slider label: −10…+10}
            variation REAL,                 -- 0…1; NULL = the generator's default
            spatial TEXT,                   -- JSON spatial settings, e.g. {"mode": "stereo"}
            created TEXT NOT NULL,          -- ISO 8601 UTC
            updated TEXT NOT NULL,
            PRIMARY KEY (model_id, name_key)
        )""",
        """CREATE TABLE history (
            id TEXT PRIMARY KEY,            -- random hex; also the folder of its files
            created TEXT NOT NULL,          -- ISO 8601 UTC, microseconds: orders the list
            model_id TEXT REFERENCES models(id) ON DELETE CASCADE,  -- NULL: not a library model
            model_name TEXT NOT NULL,
            seed INTEGER,
            duration REAL,                  -- seconds
            params TEXT NOT NULL,           -- JSON: the take's whole sidecar
            audio TEXT NOT NULL,            -- kept copy, relative to the home: history/<id>/…
            thumbnail TEXT NOT NULL,        -- waveform PNG, relative to the home
            source TEXT                     -- where the take was written originally
        )""",
        "CREATE INDEX history_created ON history (created)",
        "CREATE INDEX history_model ON history (model_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class LibraryError(UserError):
    """The library database cannot be opened, is damaged, or is too new."""


@contextlib.contextmanager
def connect(db: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """An open connection on an up-to-date schema, closed on exit.

    Autocommit mode (isolation_level=None): reads need no transaction; writes use `write()`.
    `readonly` opens the file for reading only and never creates, migrates or switches it to
    WAL, so a full or read-only disk cannot stop a command that only reads (see _open_readonly).
    """
    conn = _open_readonly(db) if readonly else None
    readonly = conn is not None  # else an older schema to migrate: a writer's connection
    if conn is None:
        try:
            conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as err:
            raise LibraryError(f"cannot open the library {db} ({err}): check the folder") from err
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")  # later tables cascade on model deletion
        if not readonly:
            _use_wal(conn)
            _migrate(conn, db)
        yield conn
    except sqlite3.DatabaseError as err:
        explained = _explain(err, db)
        if explained is err:
            raise
        raise explained from err
    finally:
        conn.close()


def _open_readonly(db: Path) -> sqlite3.Connection | None:
    """A connection that reads `db` without writing a byte; None where only a writer can help
    (an older schema to migrate first).

    A library that does not exist yet reads as an empty one (in memory: nothing is created). A
    WAL database read normally still needs its -shm side file, which a full disk cannot give;
    then it is read as `immutable` (without the side files: commits that another process has
    not yet checkpointed are not seen, which only a full disk ever costs).
    """
    if not db.is_file():
        conn = sqlite3.connect(":memory:", isolation_level=None)
        _migrate(conn, db)
        return conn
    uri = f"file:{urllib.parse.quote(str(db))}?mode=ro"
    conn = None
    for suffix in ("", "&immutable=1"):
        try:
            conn = sqlite3.connect(
                uri + suffix, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            if _version(conn) != SCHEMA_VERSION:
                conn.close()
                return None
            return conn
        except sqlite3.DatabaseError as err:
            if conn is not None:
                conn.close()
            conn = None
            retry = isinstance(err, sqlite3.OperationalError) and not suffix
            if not retry or "locked" in str(err) or "busy" in str(err):
                explained = _explain(err, db)
                if explained is err:
                    raise
                raise explained from err
    return None


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    with conn:  # commits, or rolls back and re-raises
        yield conn


def _use_wal(conn: sqlite3.Connection) -> None:
    # Switching to WAL needs a moment alone with the file and may answer "locked" at once instead
    # of waiting out the busy timeout, so retry; once set, the mode persists in the file.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _migrate(conn: sqlite3.Connection, db: Path) -> None:
    current = _version(conn)
    if current == SCHEMA_VERSION:
        return
    with write(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = _version(conn)  # again, under the write lock: another process may have won
        if current > SCHEMA_VERSION:
            raise LibraryError(
                f"{db} was written by a newer Distill (library version {current}, this one "
                f"knows ≤ {SCHEMA_VERSION}): upgrade Distill to use it"
            )
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))


def _version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return row[0] if row else 0


def _explain(err: sqlite3.DatabaseError, db: Path) -> Exception:
    """A one-line UserError for what a user can fix; anything else (a bug) unchanged."""
    text = str(err)
    if "locked" in text or "busy" in text:
        return LibraryError(
            f"the library {db} stayed busy for {BUSY_TIMEOUT_MS // 1000} s (another Distill "
            "is writing to it): try again in a moment"
        )
    if "not a database" in text or "malformed" in text:
        return LibraryError(
            f"the library {db} is damaged ({text}): move it aside and import your models again "
            "from the models folder beside it"
        )
    if "readonly" in text or "unable to open" in text or "disk" in text:
        return LibraryError(f"cannot write the library {db} ({text}): check the folder")
    return err


class Library:
    """The model library of one Distill home. Cheap to create and holds no connection: make one
    per call. Names are display strings, unique ignoring case; files are named by id."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = resolve_home(home)
        self.db = self.home / DB_NAME
        self.models_dir = self.home / MODELS_DIR

    # -- adding --------------------------------------------------------------------------------
    def add(
        self,
        model_file: Path,
        *,
        name: str | None = None,
        move: bool = False,
        run: Path | None = None,
    ) -> ModelEntry:
        """Copy a model file into the library after verifying it in full; a taken name gets -2,
        -3, …. `move` removes the original once the copy is in. `run` (a training run folder)
        makes a later add from the same run replace that entry, keeping its id, name,
        description and tags."""
        source = Path(model_file).expanduser()
        wanted = clean_name(name) if name is not None else None
        read_metadata(source)  # one line for a file that is not a model, before copying it
        staging = self.models_dir / f".incoming-{secrets.token_hex(ID_BYTES)}{SUFFIX}"
        try:
            _copy(source, staging)
            try:  # the copy is what the library keeps: verify it, naming the user's file
                _, metadata = load_model_file(staging)
            except ModelFileError as err:
                raise ModelFileError(str(err).replace(staging.name, source.name)) from err
            entry = self._insert(staging, metadata, wanted, run)
        finally:
            staging.unlink(missing_ok=True)
        if move:
            source.unlink(missing_ok=True)
        return entry

    def import_file(self, path: str | Path, *, name: str | None = None) -> ModelEntry:
        """Add a `.distill` file from anywhere (it is copied; the original stays)."""
        return self.add(Path(path), name=name)

    def _insert(
        self, staging: Path, metadata: ModelMetadata, wanted: str | None, run: Path | None
    ) -> ModelEntry:
        name, description, tags = file_info(metadata, fallback_name="model")
        columns = training_columns(metadata)
        values = {
            **columns,
            "controls": json.dumps(list(columns["controls"])),
            "training": json.dumps(columns["training"]),
        }
        run_key = str(Path(run).resolve()) if run is not None else None
        with connect(self.db) as conn, write(conn):
            previous = None
            if run_key is not None:
                previous = conn.execute("SELECT * FROM models WHERE run = ?", (run_key,)).fetchone()
            if previous is not None:
                model_id = previous["id"]
                name, description = previous["name"], previous["description"]
                tags = tuple(json.loads(previous["tags"]))
                sets = ", ".join(f"{k} = :{k}" for k in values)
                conn.execute(f"UPDATE models SET {sets} WHERE id = :id", {**values, "id": model_id})
            else:
                model_id = secrets.token_hex(ID_BYTES)
                name = _free_name(conn, wanted or name)
                row = {
                    **values,
                    "id": model_id,
                    "name": name,
                    "name_key": fold(name),
                    "description": description,
                    "tags": json.dumps(list(tags)),
                    "file": f"{MODELS_DIR}/{model_id}{SUFFIX}",
                    "created": _now(),
                    "run": run_key,
                }
                keys = ", ".join(row)
                conn.execute(
                    f"INSERT INTO models ({keys}) VALUES ({', '.join(':' + k for k in row)})", row
                )
            info = {"name": name, "description": description, "tags": list(tags)}
            if metadata.info != info:  # the file carries its library name when exported
                write_info(staging, info)
            # Last, so that any failure above rolls back and leaves a replaced run's file as it was.
            os.replace(staging, self.models_dir / f"{model_id}{SUFFIX}")
            return self._get(conn, model_id)

    # -- finding -------------------------------------------------------------------------------
    def list(self, search: str | None = None) -> list[ModelEntry]:
        """Every model, by name; `search` keeps those whose name, description or a tag contains
        it (ignoring case)."""
        with connect(self.db, readonly=True) as conn:
            rows = conn.execute("SELECT * FROM models ORDER BY name_key").fetchall()
        entries = [ModelEntry.from_row(row, self.home) for row in rows]
        return [e for e in entries if not search or e.matches(search)]

    def resolve(self, ref: str | ModelEntry) -> ModelEntry:
        """A model by exact name (ignoring case), then by id prefix (≥ 4 characters), then by the
        path of a `.distill` file on disk (an entry that is not in the library). An entry passes
        through, so a caller that resolved once acts on exactly that model."""
        if isinstance(ref, ModelEntry):
            return ref
        text = str(ref).strip()
        with connect(self.db, readonly=True) as conn:
            row = conn.execute("SELECT * FROM models WHERE name_key = ?", (fold(text),)).fetchone()
            if row is None and len(text) >= MIN_PREFIX and re.fullmatch(r"[0-9a-fA-F]+", text):
                rows = conn.execute(
                    "SELECT * FROM models WHERE id LIKE ? ORDER BY name_key", (text.lower() + "%",)
                ).fetchall()
                if len(rows) > 1:
                    matches = ", ".join(f"{r['name']} ({r['id']})" for r in rows[:6])
                    raise UserError(
                        f"id {text!r} matches {len(rows)} models ({matches}): give more of the id"
                    )
                row = rows[0] if rows else None
            if row is not None:
                return ModelEntry.from_row(row, self.home)
            known = [r["name"] for r in conn.execute("SELECT name FROM models ORDER BY name_key")]
        path = Path(text).expanduser()
        if text and path.is_file():
            path = path.resolve()
            return ModelEntry.from_file(path, read_metadata(path))
        raise UserError(_unknown(text, known))

    def find_run(self, run: Path) -> ModelEntry | None:
        """The entry a training run added, if any."""
        with connect(self.db, readonly=True) as conn:
            row = conn.execute(
                "SELECT * FROM models WHERE run = ?", (str(Path(run).resolve()),)
            ).fetchone()
        return ModelEntry.from_row(row, self.home) if row else None

    def verify(self, ref: str | ModelEntry) -> ModelEntry:
        """The entry, once its file has been read whole and checked (bounds, shapes, digests)."""
        entry = self.resolve(ref)
        _require_file(entry)
        verify_model_file(entry.path)
        return entry

    # -- changing ------------------------------------------------------------------------------
    def rename(self, ref: str | ModelEntry, new_name: str) -> ModelEntry:
        """A new name, in the library and inside the model file (so an export carries it)."""
        entry = self._in_library(ref)
        name = clean_name(new_name)
        with connect(self.db) as conn, write(conn):
            clash = conn.execute(
                "SELECT name FROM models WHERE name_key = ? AND id != ?", (fold(name), entry.id)
            ).fetchone()
            if clash:
                raise UserError(
                    f"a model called {clash['name']!r} already exists: choose another name"
                )
            conn.execute(
                "UPDATE models SET name = ?, name_key = ? WHERE id = ?",
                (name, fold(name), entry.id),
            )
            return self._rewrite_info(conn, entry)

    def describe(
        self, ref: str | ModelEntry, description: str | None = None, tags: list[str] | None = None
    ) -> ModelEntry:
        """Set the description and/or replace the tags (None leaves one as it is)."""
        entry = self._in_library(ref)
        with connect(self.db) as conn, write(conn):
            if description is not None:
                conn.execute(
                    "UPDATE models SET description = ? WHERE id = ?",
                    (clean_description(description), entry.id),
                )
            if tags is not None:
                conn.execute(
                    "UPDATE models SET tags = ? WHERE id = ?",
                    (json.dumps(list(clean_tags(tags))), entry.id),
                )
            return self._rewrite_info(conn, entry)

    def set_controls(self, ref: str | ModelEntry, controls: dict) -> ModelEntry:
        """Store new sliders (a Controls.to_dict()) in the model file and the index."""
        entry = self._in_library(ref)
        labels = [axis["label"] for axis in controls.get("axes", [])]
        with connect(self.db) as conn, write(conn):
            conn.execute(
                "UPDATE models SET controls = ? WHERE id = ?", (json.dumps(labels), entry.id)
            )
            _require_file(entry)
            write_controls(entry.path, controls)  # inside: a failed write keeps the old row
            return self._get(conn, entry.id)

    def set_corpus(self, ref: str | ModelEntry, corpus: dict, tensors: dict) -> ModelEntry:
        """Store a new corpus memory (controls.corpus) in the model file (the index has none)."""
        entry = self._in_library(ref)
        with connect(self.db) as conn, write(conn):  # one writer at a time, as for sliders
            _require_file(entry)
            write_corpus(entry.path, corpus, tensors)
            return self._get(conn, entry.id)

    def delete(self, ref: str | ModelEntry) -> ModelEntry:
        """Remove the entry and its file together, with its presets and generation history
        (rows and kept audio); returns what was deleted."""
        from distill.library.history import remove_kept_files

        entry = self._in_library(ref)
        with connect(self.db) as conn, write(conn):
            taken = conn.execute("SELECT id FROM history WHERE model_id = ?", (entry.id,))
            history_ids = [row["id"] for row in taken]  # their rows go by cascade, below
            if not conn.execute("DELETE FROM models WHERE id = ?", (entry.id,)).rowcount:
                raise UserError(
                    f"model {entry.name!r} was already deleted: see `distill model list`"
                )
            try:  # inside the transaction: a file that cannot go keeps its entry
                entry.path.unlink(missing_ok=True)
            except OSError as err:
                raise UserError(
                    f"cannot delete {entry.path} ({err.strerror}): check the folder's permissions"
                ) from err
        remove_kept_files(self.home, history_ids)  # after the commit: no row without its files
        return entry

    def export(self, ref: str | ModelEntry, dest: str | Path, *, overwrite: bool = False) -> Path:
        """Copy a model out to the file `dest`, or into the folder `dest` as `<safe name>.distill`.
        Written atomically; an existing file is replaced only with `overwrite`."""
        entry = self.resolve(ref)
        _require_file(entry)
        dest = Path(dest).expanduser()
        target = (
            dest / f"{safe_name(entry.name, fallback='model')}{SUFFIX}" if dest.is_dir() else dest
        )
        if not target.parent.is_dir():
            raise UserError(f"folder not found: {target.parent}: create it or export elsewhere")
        if target.exists():
            if target.resolve() == entry.path.resolve():
                raise UserError(f"{target} is the model's own file: export it somewhere else")
            if not overwrite:
                raise UserError(
                    f"{target} already exists: choose another name, or replace it with --force"
                )
        _copy(entry.path, target)
        return target

    # -- helpers -------------------------------------------------------------------------------
    def _in_library(self, ref: str | ModelEntry) -> ModelEntry:
        entry = self.resolve(ref)
        if not entry.in_library:
            raise UserError(
                f"{entry.path} is not in the library: add it first with "
                f"`distill model import {entry.path}`"
            )
        return entry

    def _get(self, conn: sqlite3.Connection, model_id: str) -> ModelEntry:
        row = conn.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            raise UserError(f"model {model_id} was deleted meanwhile: see `distill model list`")
        return ModelEntry.from_row(row, self.home)

    def _rewrite_info(self, conn: sqlite3.Connection, entry: ModelEntry) -> ModelEntry:
        """Write the row's name, description and tags into its file (inside the transaction, so
        a file that cannot be written leaves the row unchanged)."""
        updated = self._get(conn, entry.id)
        _require_file(updated)
        info = {
            "name": updated.name,
            "description": updated.description,
            "tags": list(updated.tags),
        }
        write_info(updated.path, info)
        return updated


def _free_name(conn: sqlite3.Connection, wanted: str) -> str:
    """`wanted`, or `wanted-2`, `-3` … — the first not taken (ignoring case)."""
    taken = {row[0] for row in conn.execute("SELECT name_key FROM models")}
    candidate, n = wanted, 1
    while fold(candidate) in taken:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _copy(source: Path, target: Path) -> None:
    try:
        with source.open("rb") as f:
            atomic_write(target, lambda out: shutil.copyfileobj(f, out, 1 << 20))
    except OSError as err:
        raise UserError(
            f"cannot copy {source} to {target} ({err.strerror}): check the path and free space"
        ) from err


def _require_file(entry: ModelEntry) -> None:
    if entry.in_library and not entry.path.is_file():
        raise UserError(
            f"the file of model {entry.name!r} is missing ({entry.path}): remove the entry with "
            f"`distill model delete {entry.id}`"
        )


def _unknown(ref: str, known: list[str]) -> str:
    if not known:
        return (
            f"no model called {ref!r}: the library is empty; train one with `distill train` "
            "or add a file with `distill model import FILE`"
        )
    shown = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
    return f"no model or .distill file called {ref!r}; the library has: {shown}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
