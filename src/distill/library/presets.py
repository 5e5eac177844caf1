"""Presets: named slider settings of one library model, stored in the home's SQLite library.

Sliders are kept by label, the name users see, so a preset survives a model whose sliders were
renumbered; a label the model no longer has is reported by `apply`, never silently dropped. A
preset belongs to its model: deleting the model deletes its presets (foreign key cascade).

This module stores rows: the settings it is handed were checked by its caller, as generation reads
them (`distill.generation.presets.save_preset`).
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from distill.errors import UserError
from distill.home import resolve_home
from distill.library.models import MAX_NAME, ModelEntry, fold
from distill.library.store import DB_NAME, Library, connect, write


@dataclass(frozen=True)
class Preset:
    name: str
    model_id: str
    model_name: str
    sliders: dict[str, float]  # slider label → −10…+10
    variation: float | None  # 0…1; None = the generator's default
    spatial: dict | None  # SpatialOptions fields, e.g. {"mode": "stereo", "width": 0.7}
    created: str  # ISO 8601 UTC
    updated: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": {"id": self.model_id, "name": self.model_name},
            "sliders": dict(self.sliders),
            "variation": self.variation,
            "spatial": self.spatial,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Preset:
        return cls(
            name=row["name"],
            model_id=row["model_id"],
            model_name=row["model_name"],
            sliders=json.loads(row["sliders"]),
            variation=row["variation"],
            spatial=json.loads(row["spatial"]) if row["spatial"] else None,
            created=row["created"],
            updated=row["updated"],
        )


_SELECT = "SELECT p.*, m.name AS model_name FROM presets p JOIN models m ON m.id = p.model_id"


class Presets:
    """The presets of one Distill home. Holds no connection: one short-lived one per call."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = resolve_home(home)
        self.db = self.home / DB_NAME

    def save(
        self,
        model_ref: str | ModelEntry,
        name: str,
        *,
        sliders: dict[str, float],
        variation: float | None = None,
        spatial: dict | None = None,
        overwrite: bool = False,
    ) -> Preset:
        """Store settings under `name` for the model; an existing preset of that name (ignoring
        case) is replaced only with `overwrite`, keeping its creation time. The settings are
        stored as given: `generation.presets.save_preset` checks them first."""
        entry = self.model(model_ref)
        name = clean_preset_name(name)
        values = {
            "model_id": entry.id,
            "name": name,
            "name_key": fold(name),
            "sliders": json.dumps(sliders),
            "variation": variation,
            "spatial": json.dumps(spatial) if spatial else None,
            "updated": _now(),
        }
        with connect(self.db) as conn, write(conn):
            old = self._find(conn, entry, name)
            if old is not None and not overwrite:
                raise UserError(
                    f"model {entry.name!r} already has a preset called {old.name!r}: choose "
                    "another name, or replace it with --force"
                )
            conn.execute(
                "INSERT OR REPLACE INTO presets (model_id, name, name_key, sliders, variation, "
                "spatial, created, updated) VALUES (:model_id, :name, :name_key, :sliders, "
                ":variation, :spatial, :created, :updated)",
                {**values, "created": old.created if old else values["updated"]},
            )
            return self._get(conn, entry, name)

    def list(self, model_ref: str | ModelEntry | None = None) -> list[Preset]:
        """Every preset (of one model if given), by model name then preset name."""
        where, args = "", ()
        if model_ref is not None:
            where, args = " WHERE p.model_id = ?", (self.model(model_ref).id,)
        with connect(self.db, readonly=True) as conn:
            rows = conn.execute(f"{_SELECT}{where} ORDER BY m.name_key, p.name_key", args)
            return [Preset.from_row(row) for row in rows]

    def get(self, model_ref: str | ModelEntry, name: str) -> Preset:
        entry = self.model(model_ref)
        with connect(self.db, readonly=True) as conn:
            return self._get(conn, entry, name)

    def rename(self, model_ref: str | ModelEntry, name: str, new_name: str) -> Preset:
        entry = self.model(model_ref)
        new_name = clean_preset_name(new_name)
        with connect(self.db) as conn, write(conn):
            old = self._get(conn, entry, name)
            clash = self._find(conn, entry, new_name)
            if clash is not None and fold(clash.name) != fold(old.name):
                raise UserError(
                    f"model {entry.name!r} already has a preset called {clash.name!r}: "
                    "choose another name"
                )
            conn.execute(
                "UPDATE presets SET name = ?, name_key = ?, updated = ? "
                "WHERE model_id = ? AND name_key = ?",
                (new_name, fold(new_name), _now(), entry.id, fold(old.name)),
            )
            return self._get(conn, entry, new_name)

    def relabel(self, model_ref: str | ModelEntry, old_label: str, new_label: str) -> int:
        """A slider of the model was renamed: its presets follow (returns how many changed)."""
        entry = self.model(model_ref)
        changed = 0
        with connect(self.db) as conn, write(conn):
            rows = conn.execute(
                "SELECT name_key, sliders FROM presets WHERE model_id = ?", (entry.id,)
            ).fetchall()
            for row in rows:
                sliders = json.loads(row["sliders"])
                renamed = {
                    (new_label if label_key(label) == label_key(old_label) else label): value
                    for label, value in sliders.items()
                }
                if renamed != sliders:
                    conn.execute(
                        "UPDATE presets SET sliders = ?, updated = ? "
                        "WHERE model_id = ? AND name_key = ?",
                        (json.dumps(renamed), _now(), entry.id, row["name_key"]),
                    )
                    changed += 1
        return changed

    def delete(self, model_ref: str | ModelEntry, name: str) -> Preset:
        """Remove a preset; returns what was deleted."""
        entry = self.model(model_ref)
        with connect(self.db) as conn, write(conn):
            old = self._get(conn, entry, name)
            conn.execute(
                "DELETE FROM presets WHERE model_id = ? AND name_key = ?",
                (entry.id, fold(old.name)),
            )
        return old

    @staticmethod
    def apply(preset: Preset, labels: Sequence[str]) -> tuple[dict[int, float], list[str]]:
        """({0-based slider index: value} for the model's current slider `labels`, [labels the
        model no longer has]). The caller reports the second list: those settings are ignored."""
        by_label = {label_key(label): i for i, label in enumerate(labels)}
        values, stale = {}, []
        for label, value in preset.sliders.items():
            index = by_label.get(label_key(label))
            if index is None:
                stale.append(label)
            else:
                values[index] = float(value)
        return values, stale

    def model(self, ref: str | ModelEntry) -> ModelEntry:
        """The library model `ref` names (presets belong to library models, not loose files)."""
        entry = Library(self.home).resolve(ref)
        if not entry.in_library:
            raise UserError(
                f"{entry.path} is not in the library, and presets belong to library models: "
                f"add it first with `distill model import {entry.path}`"
            )
        return entry

    # -- helpers -------------------------------------------------------------------------------
    def _find(self, conn: sqlite3.Connection, entry: ModelEntry, name: str) -> Preset | None:
        row = conn.execute(
            f"{_SELECT} WHERE p.model_id = ? AND p.name_key = ?", (entry.id, fold(name.strip()))
        ).fetchone()
        return Preset.from_row(row) if row else None

    def _get(self, conn: sqlite3.Connection, entry: ModelEntry, name: str) -> Preset:
        found = self._find(conn, entry, name)
        if found is not None:
            return found
        names = [
            r["name"]
            for r in conn.execute(
                "SELECT name FROM presets WHERE model_id = ? ORDER BY name_key", (entry.id,)
            )
        ]
        if not names:
            raise UserError(
                f"model {entry.name!r} has no presets: save one with "
                f"`distill preset save {entry.name} NAME --slider LABEL=VALUE`"
            )
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        raise UserError(f"model {entry.name!r} has no preset called {name!r}; it has: {shown}")


def clean_preset_name(name: str) -> str:
    """A preset name as stored: trimmed, NFC, one line, 1 to MAX_NAME characters."""
    text = unicodedata.normalize("NFC", str(name)).strip()
    if not text:
        raise UserError("a preset name cannot be empty: give at least one letter or digit")
    if len(text) > MAX_NAME:
        raise UserError(f"a preset name can have at most {MAX_NAME} characters (got {len(text)})")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        raise UserError("a preset name must be one line without control characters")
    return text


def label_key(label: str) -> str:
    """How labels are matched: whitespace collapsed, case-folded (as `Controls.index_of` does)."""
    return " ".join(str(label).split()).casefold()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
