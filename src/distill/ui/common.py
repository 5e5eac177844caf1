"""What every tab shares: the app's context (home, device, folders, loaded models) and the rule
that a user error is a visible message in the page, never a stack trace."""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from distill.errors import UserError

log = logging.getLogger("distill.ui")

MB = 1024 * 1024
DEFAULT_MAX_UPLOAD_MB = 200  # per file: ~20 min of 48 kHz stereo 24-bit WAV
# Models held in memory between clicks (3.0 M parameters ≈ 12 MB; a seed-design model ≈ 70 MB).
LOADED_MODELS_KEPT = 4
INTERNAL_ERROR = (
    "Something went wrong inside Distill: the details are in the terminal where `distill ui` "
    "runs. Please report it if it happens again."
)


@dataclass
class UIContext:
    """One app's settings and state; created by build_app, handed to every tab."""

    home: Path
    device: str = "auto"
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    _models: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # Everything the page writes lives in these folders (the ones it may serve back to the page).
    @property
    def ui_dir(self) -> Path:
        return self.home / "ui"

    @property
    def takes_dir(self) -> Path:
        return self.ui_dir / "takes"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    def served_dirs(self) -> list[Path]:
        """Folders whose files the page may show or offer for download."""
        return [self.ui_dir, self.home / "runs", self.home / "history"]

    def model(self, ref: str):
        """A LoadedModel by library name or id, kept in memory while its file is unchanged."""
        from distill.generation.loaded import load
        from distill.library.store import Library

        if not ref:
            raise UserError("no model chosen: pick one from the list (train one in the Train tab)")
        entry = Library(self.home).resolve(ref)
        try:
            stamp = entry.path.stat().st_mtime_ns
        except OSError as err:
            raise UserError(
                f"the file of model {entry.name!r} is missing ({entry.path}): delete the entry "
                "in the Library tab and import the model again"
            ) from err
        key = (str(entry.path), stamp)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        loaded = load(entry.id or str(entry.path), home=self.home, device=self.device)
        with self._lock:
            self._models[key] = loaded
            while len(self._models) > LOADED_MODELS_KEPT:
                self._models.popitem(last=False)
        return loaded


def shown_errors(fn):
    """Wrap an event handler: a UserError becomes its one-line message in the page; any other
    exception is logged with its traceback and the page shows a short generic message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception:
            log.exception("error in the web page's %s", fn.__name__)
            raise gr.Error(INTERNAL_ERROR, print_exception=False) from None

    return wrapper


def model_choices(home: Path) -> list[tuple[str, str]]:
    """(label, value) pairs for a model dropdown: the library's models by name, valued by id."""
    from distill.library.store import Library

    return [(entry.name, entry.id) for entry in Library(home).list()]


def fmt(value, digits: int = 4) -> str:
    """A number for a table or a status line; '-' for missing or non-finite values."""
    from distill.training.progress import fmt as cli_fmt

    return cli_fmt(value, digits)
