"""Metrics written as JSON lines (one object per step or epoch) and divergence detection."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from distill.atomic import atomic_write


class MetricsLog:
    """Appends one JSON object per line to `metrics.jsonl`, flushed per line so a crash or a
    kill -9 leaves every complete line readable (and a resumed run keeps appending).

    A resumed run passes `after_step`, the global step of the checkpoint it continues from: the
    lines a killed run wrote after that checkpoint (its steps are about to be trained again) and
    a torn last line are dropped first, so no step appears twice and no line is glued to a torn
    one. A write the disk refuses raises its OSError (the line may be torn: see above).
    """

    def __init__(self, path: Path, *, after_step: int | None = None) -> None:
        self.path = path
        if path.exists():
            _keep_complete(path, after_step)
        # Unbuffered: a line goes to the file in write(), so a refused write leaves nothing
        # buffered for close() to fail on a second time.
        self._file = path.open("ab", buffering=0)

    def write(self, record: dict) -> None:
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()
        }
        data = memoryview((json.dumps(clean) + "\n").encode("utf-8"))
        while data:  # a regular file may take part of a write when its disk fills
            data = data[self._file.write(data) :]

    def close(self) -> None:
        self._file.close()


def _keep_complete(path: Path, after_step: int | None) -> None:
    """Rewrite `path` (atomically) without a torn last line and, given `after_step`, without the
    records of later steps; untouched when there is nothing to drop."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, torn = lines[:-1], lines[-1]  # the part after the last newline
    kept = [line for line in complete if after_step is None or _step(line) <= after_step]
    if not torn and len(kept) == len(complete):
        return
    text = b"".join(line + b"\n" for line in kept)
    atomic_write(path, lambda f: f.write(text))


def _step(line: bytes) -> float:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return math.inf  # a damaged line: dropped with the steps after the checkpoint
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else 0


def read_metrics(path: Path) -> list[dict]:
    """Every complete line of a metrics file (a torn last line from a crash is skipped)."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


@dataclass
class DivergenceWatch:
    """Warns after `patience` consecutive epochs of rising validation loss (once per streak)."""

    patience: int = 5
    previous: float | None = None
    rising: int = 0
    history: list[float] = field(default_factory=list)

    def update(self, value: float) -> bool:
        """Record this epoch's validation loss; True exactly when the streak reaches `patience`."""
        self.rising = self.rising + 1 if self.previous is not None and value > self.previous else 0
        self.previous = value
        self.history.append(value)
        return self.rising == self.patience

    def state(self) -> dict:
        return {"previous": self.previous, "rising": self.rising, "history": list(self.history)}

    @classmethod
    def from_state(cls, state: dict, patience: int = 5) -> DivergenceWatch:
        return cls(patience, state["previous"], state["rising"], list(state["history"]))
