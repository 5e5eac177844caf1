"""Files dropped into the page → a fresh folder under `<home>/uploads/`, checked on the way in.

A browser names its files however it likes, so a name never becomes a path as it is: each is
passed through `safe_name` (one path component, no separators, no leading dot). A file over the
size limit, with an extension Distill does not read, or whose header cannot be read, is reported
and not copied.

`keep_upload` keeps one file the same way (the Generate tab's "Like this recording"), in a folder
named by its content, so the path a take's sidecar records stays valid for replay.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from distill.audio.read import AUDIO_EXTENSIONS, probe
from distill.errors import UserError
from distill.home import safe_name


@dataclass
class SavedUploads:
    folder: Path | None  # None when no file was accepted
    copied: list[str] = field(default_factory=list)  # names in `folder`
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name as sent, why)
    skipped: int = 0  # files of other kinds left out of a whole folder (only_audio)


def save_uploads(
    files: list[str | Path],
    uploads_dir: Path,
    set_name: str,
    max_bytes: int,
    *,
    only_audio: bool = False,
) -> SavedUploads:
    """Copy the acceptable `files` (paths of the server's temporary copies) into a new folder
    `uploads_dir/<safe set_name>` (`-2`, `-3` … if taken). With `only_audio` (a whole folder was
    sent) files whose extension is not audio are counted as skipped, not listed as refused."""
    if not files:
        raise UserError("no files to upload: drop some audio files on the upload box first")
    result = SavedUploads(folder=None)
    taken: set[str] = set()
    for file in files:
        source = Path(file)
        sent = source.name
        name = safe_name(sent, fallback="audio")
        if only_audio and Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
            result.skipped += 1
            continue
        why = upload_problem(source, name, max_bytes)
        if why:
            result.rejected.append((sent, why))
            continue
        if result.folder is None:
            result.folder = fresh_folder(uploads_dir, safe_name(set_name, fallback="upload"))
        name = distinct_name(name, taken)
        shutil.copyfile(source, result.folder / name)
        result.copied.append(name)
    return result


def keep_upload(source: str | Path, folder: Path, max_bytes: int) -> Path:
    """A checked copy of one uploaded file at `folder/<content hash>/<safe name>`: the same
    recording uploaded again is the same path. Raises UserError when the file is refused."""
    source = Path(source)
    name = safe_name(source.name, fallback="audio")
    why = upload_problem(source, name, max_bytes)
    if why:
        raise UserError(f"{name}: {why}")
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    target = folder / digest.hexdigest()[:16] / name
    if not target.is_file():
        from distill.atomic import atomic_write

        def copy(out) -> None:
            with open(source, "rb") as f:
                shutil.copyfileobj(f, out)

        atomic_write(target, copy)
    return target


def upload_problem(source: Path, name: str, max_bytes: int) -> str | None:
    """Why the uploaded file `source` (sent as `name`) is refused, or None."""
    suffix = Path(name).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        kinds = ", ".join(sorted(AUDIO_EXTENSIONS))
        return f"not an audio file Distill reads ({suffix or 'no extension'}; use {kinds})"
    size = source.stat().st_size
    if size > max_bytes:
        return f"too large ({size / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB)"
    try:
        probe(source)
    except UserError:
        return "cannot be read as audio (damaged, or not really audio)"
    return None


def fresh_folder(parent: Path, base: str) -> Path:
    candidate, n = parent / base, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{base}-{n}"
    candidate.mkdir(parents=True)
    return candidate


def distinct_name(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.ext`, `-3` … if an earlier file of this upload had it (any case)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate.casefold())
    return candidate
