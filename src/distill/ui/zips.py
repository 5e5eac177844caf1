"""Several takes as one download: a zip of their audio files and their settings (JSON), flat,
under safe and distinct names. Used by the Generate tab (a pack, this page's takes) and the
History tab (the chosen takes)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from distill.errors import UserError
from distill.home import safe_name
from distill.ui.uploads import distinct_name


@dataclass(frozen=True)
class Member:
    """One file of the zip: a file on disk, or JSON written from a dict."""

    name: str  # as it should appear in the zip (made safe and distinct)
    path: Path | None = None
    data: dict | None = None


def write_zip(path: Path, members: list[Member]) -> Path:
    """Write `members` into the zip `path` atomically (stored, not compressed: audio does not
    shrink). A name taken by an earlier member gets `-2`, `-3` … before its extension."""
    from distill.atomic import atomic_write

    if not members:
        raise UserError("nothing to put in the zip: generate or choose some takes first")
    taken: set[str] = set()

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            for member in members:
                name = distinct_name(safe_name(member.name, fallback="take"), taken)
                if member.path is not None:
                    archive.write(member.path, arcname=name)
                else:
                    text = json.dumps(member.data, indent=2, ensure_ascii=False)
                    archive.writestr(name, text.encode("utf-8"))

    try:
        atomic_write(path, write)
    except OSError as err:
        raise UserError(
            f"cannot write the zip {path.name} ({err.strerror or err}): free some space in "
            f"{path.parent}"
        ) from err
    return path


def take_members(audio: Path) -> list[Member]:
    """A take written by Distill and its sidecar (`<stem>.json` beside it, if there)."""
    members = [Member(audio.name, path=audio)]
    sidecar = audio.with_suffix(".json")
    if sidecar.is_file():
        members.append(Member(sidecar.name, path=sidecar))
    return members
