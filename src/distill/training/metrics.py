"""Metrics written as JSON lines (one object per step or epoch) and divergence detection."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path


class MetricsLog:
    """Appends one JSON object per line to `metrics.jsonl`, flushed per line so a crash or a
    kill -9 leaves every complete line readable (and a resumed run keeps appending)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: dict) -> None:
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()
        }
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


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
