"""Training checkpoints: atomic writes, last / best / every N epochs, keep K.

A checkpoint holds only tensors and plain Python values (no classes), saved with torch.save and
loaded with weights_only=True, so loading never executes code. Checkpoints stay inside a run
folder; the model a user shares is the safetensors-based final model, not a checkpoint.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch

from distill.atomic import atomic_write
from distill.errors import UserError

LAST, BEST = "last.pt", "best.pt"
_EPOCH_PATTERN = re.compile(r"epoch-(\d+)\.pt$")


class CheckpointError(UserError):
    """A checkpoint could not be read or written."""


def atomic_save(state: dict, path: Path) -> None:
    """Save `state` atomically (see distill.atomic): a crash leaves the old file or the new one."""
    try:
        atomic_write(path, lambda f: torch.save(state, f))
    except OSError as err:
        raise CheckpointError(
            f"cannot write checkpoint {path} ({err.strerror}): "
            "free some disk space or choose another --home"
        ) from err


def load(path: Path) -> dict:
    """A checkpoint's state; CheckpointError (one line) for anything else, pickled objects
    included: they are refused unread (weights_only), never loaded another way."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} is not a Distill checkpoint (damaged, or it holds Python objects, which are "
            "never loaded): delete it and resume from another checkpoint, or start the run again"
        ) from err
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({_first_line(err)}): it is damaged; delete it and "
            "resume from another checkpoint, or start the run again"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a Distill checkpoint: start the run again")
    return state


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def save_epoch(state: dict, folder: Path, epoch: int, keep: int) -> Path:
    """Save `epoch-NNNN.pt` and delete the oldest epoch checkpoints beyond the newest `keep`."""
    path = folder / f"epoch-{epoch:04d}.pt"
    atomic_save(state, path)
    epochs = sorted(
        (int(m.group(1)), p)
        for p in folder.glob("epoch-*.pt")
        if (m := _EPOCH_PATTERN.search(p.name))
    )
    for _, old in epochs[: max(0, len(epochs) - keep)]:
        old.unlink(missing_ok=True)
    return path
