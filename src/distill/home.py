"""The Distill home folder (library, runs, cache) and safe names for things users name."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from distill.errors import UserError

HOME_ENV = "DISTILL_HOME"


def resolve_home(option: str | Path | None = None) -> Path:
    """`--home` if given, else $DISTILL_HOME, else the platform's user data folder; created."""
    if option:
        home = Path(option).expanduser()
    elif os.environ.get(HOME_ENV):
        home = Path(os.environ[HOME_ENV]).expanduser()
    else:
        from platformdirs import user_data_dir

        home = Path(user_data_dir("distill", appauthor=False))
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot use {home} as the Distill home ({err.strerror}): "
            f"pass --home or set {HOME_ENV} to a writable folder"
        ) from err
    return home.resolve()


def safe_name(name: str, fallback: str = "untitled") -> str:
    """A user-typed name as a single safe path component.

    Keeps letters (any script), digits, '-', '_' and '.'; everything else becomes '-'. No path
    separators, no leading dots (so never '..' or a hidden file), at most 80 characters.
    """
    text = unicodedata.normalize("NFC", name).strip()
    text = re.sub(r"[^\w.\-]+", "-", text, flags=re.UNICODE)
    text = re.sub(r"-{2,}", "-", text).strip("-.")
    return text[:80] or fallback
