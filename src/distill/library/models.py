"""A model's library entry: what `list` and `info` show without opening the file, and the rules
for the names, descriptions and tags users type."""

from __future__ import annotations

import json
import math
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from distill.errors import UserError
from distill.model.file import ModelMetadata, kept_weights

MAX_NAME = 100  # characters
MAX_TAG = 40


@dataclass(frozen=True)
class ModelEntry:
    id: str | None  # None: a .distill file outside the library, named by its path
    name: str
    path: Path  # the .distill file (absolute)
    description: str = ""
    tags: tuple[str, ...] = ()
    created: str | None = None  # when it was added to the library (ISO 8601, UTC)
    trained: str | None = None  # when training wrote it
    dataset: str | None = None
    files: int | None = None
    duration_s: float | None = None  # seconds of audio it was trained on
    epochs: int | None = None
    latent_dim: int | None = None
    controls: tuple[str, ...] = ()  # slider labels
    training: dict = field(default_factory=dict, compare=False)  # the file's training summary
    run: str | None = None  # the training run folder it came from

    @property
    def in_library(self) -> bool:
        return self.id is not None

    @property
    def size(self) -> int | None:
        """File size in bytes; None if the file is gone."""
        try:
            return self.path.stat().st_size
        except OSError:
            return None

    def matches(self, text: str) -> bool:
        """Case-insensitive substring of the name, the description or one of the tags."""
        needle = fold(text)
        return any(needle in fold(s) for s in (self.name, self.description, *self.tags))

    def epochs_text(self) -> str:
        """Epochs trained, which weights the file holds and why training stopped, in words
        (`distill model info` and the page's Library tab)."""
        if self.epochs is None:
            return "-"
        best = _int(self.training.get("best_epoch"))
        text = str(self.epochs)
        if kept_weights(self.training) == "last":
            text += f" (the last weights; best validation epoch {best})" if best else " (the last)"
        elif best:
            text += f" (the best epoch: {best})"
        stopped = self.training.get("stopped")
        return text + (f", stopped early: {stopped}" if stopped else "")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "created": self.created,
            "trained": self.trained,
            "dataset": self.dataset,
            "files": self.files,
            "duration_s": self.duration_s,
            "epochs": self.epochs,
            "best_epoch": _int(self.training.get("best_epoch")),
            "weights": kept_weights(self.training),
            "latent_dim": self.latent_dim,
            "final_losses": {
                k: v if _finite(v) else None
                for k, v in (self.training.get("final_losses") or {}).items()
            },
            "controls": list(self.controls),
            "path": str(self.path),
            "size": self.size,
            "in_library": self.in_library,
            "run": self.run,
        }

    @classmethod
    def from_row(cls, row: sqlite3.Row, home: Path) -> ModelEntry:
        return cls(
            id=row["id"],
            name=row["name"],
            path=home / row["file"],
            description=row["description"],
            tags=tuple(json.loads(row["tags"])),
            created=row["created"],
            trained=row["trained"],
            dataset=row["dataset"],
            files=row["files"],
            duration_s=row["duration_s"],
            epochs=row["epochs"],
            latent_dim=row["latent_dim"],
            controls=tuple(json.loads(row["controls"])),
            training=json.loads(row["training"]),
            run=row["run"],
        )

    @classmethod
    def from_file(cls, path: Path, metadata: ModelMetadata) -> ModelEntry:
        """An entry for a file outside the library (nothing is added)."""
        name, description, tags = file_info(metadata, fallback_name=path.stem)
        return cls(
            id=None,
            name=name,
            path=path,
            description=description,
            tags=tags,
            **training_columns(metadata),
        )


def file_info(metadata: ModelMetadata, fallback_name: str) -> tuple[str, str, tuple[str, ...]]:
    """(name, description, tags) stored in a file, cleaned; unusable parts fall back to defaults."""
    info = metadata.info if isinstance(metadata.info, dict) else {}
    name = "model"
    for candidate in (info.get("name"), fallback_name):
        try:
            name = clean_name(candidate or "")
            break
        except UserError:
            continue
    try:
        description = clean_description(info.get("description") or "")
    except UserError:
        description = ""
    tags = info.get("tags")
    try:
        tags = clean_tags(tags) if isinstance(tags, list) else ()
    except UserError:
        tags = ()
    return name, description, tags


def training_columns(metadata: ModelMetadata) -> dict:
    """What the library copies out of a file's metadata (types checked: files come from anyone)."""
    t = metadata.training if isinstance(metadata.training, dict) else {}
    duration = t.get("duration_s")
    return {
        "trained": _str(t.get("date")),
        "dataset": _str(t.get("dataset")),
        "files": _int(t.get("files")),
        "duration_s": float(duration) if _finite(duration) else None,
        "epochs": _int(t.get("epochs")),
        "latent_dim": metadata.model.latent_dim,
        "controls": tuple(control_labels(metadata.controls)),
        "training": t,
    }


def control_labels(controls: dict | None) -> list[str]:
    """Slider labels from a file's latent analysis (`controls.sliders.Controls.to_dict()`)."""
    axes = controls.get("axes") if isinstance(controls, dict) else None
    if not isinstance(axes, list):
        return []
    return [str(a.get("label")) for a in axes if isinstance(a, dict)]


def fold(text: str) -> str:
    """The form two names are compared in: NFC, case-folded."""
    return unicodedata.normalize("NFC", text).casefold()


def clean_name(name: str) -> str:
    """A model name as stored: trimmed, NFC; refused if empty, too long or multi-line."""
    text = unicodedata.normalize("NFC", str(name)).strip()
    if not text:
        raise UserError("a model name cannot be empty: give at least one letter or digit")
    if len(text) > MAX_NAME:
        raise UserError(
            f"a model name can have at most {MAX_NAME} characters (got {len(text)}): "
            "choose a shorter name"
        )
    if _has_control(text):
        raise UserError("a model name must be one line without control characters")
    return text


def clean_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Trimmed, empty ones dropped, duplicates (ignoring case) dropped, order kept."""
    kept: dict[str, str] = {}
    for tag in tags:
        text = unicodedata.normalize("NFC", str(tag)).strip()
        if not text:
            continue
        if len(text) > MAX_TAG or _has_control(text):
            raise UserError(
                f"tag {text[:MAX_TAG]!r} is not usable: tags are one line of at most "
                f"{MAX_TAG} characters"
            )
        kept.setdefault(fold(text), text)
    return tuple(kept.values())


def clean_description(text: str) -> str:
    text = unicodedata.normalize("NFC", str(text)).strip()
    if any(_has_control(line) for line in text.splitlines()):
        raise UserError("a description cannot contain control characters")
    return text


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finite(value: object) -> bool:
    """A real number JSON can hold (no bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
