"""Training progress as the loop reports it: where the run is and how long it has left.

The CLI (cli/train_display.py) and the web page (ui/jobs.py) subclass Progress to draw it; the
state and the ETA arithmetic live here, once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path


class Progress:
    """Where a run is: its size, the last step, the share done and the ETA (with --max-minutes,
    from the clock). The CLI's displays and the web page's training job draw it.

    Implements the loop's Reporter protocol (summary, step, epoch, message).
    """

    def __init__(self, stop) -> None:
        self.stop = stop
        self.run: Path | None = None
        self.total_epochs: int | None = None
        self.steps_per_epoch: int | None = None
        self.position: tuple[int, int, int] | None = None  # (epoch from 1, step, steps per epoch)
        self.training = False  # True once the loop is about to start (a stop can then save)
        self.val_total: float | None = None
        self._stop_announced = False
        self.max_seconds: float | None = None  # --max-minutes of the run, in seconds
        self._started: float | None = None  # when this session's loop began (monotonic s)
        self._first_step: tuple[float, int] | None = None  # (time, steps done before it)

    def summary(self, lines: list[str]) -> None:
        for line in lines:
            if line.startswith("run: "):
                self.run = Path(line.removeprefix("run: "))
        training = _planned_training(self.run)
        self.total_epochs = training.get("epochs")
        self.max_seconds = training["max_minutes"] * 60 if training.get("max_minutes") else None
        from distill.training.config import TIME_LIMITED_EPOCHS

        if self.max_seconds and (self.total_epochs or 0) >= TIME_LIMITED_EPOCHS:
            self.total_epochs = None  # the time decides: "epoch 3", an ETA from the clock
        self._started = time.monotonic()
        self.training = True

    def _note_step(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        self.position = (epoch + 1, step, steps_per_epoch)
        self.steps_per_epoch = steps_per_epoch
        if self._first_step is None:
            self._first_step = (time.monotonic(), self._done_steps() - 1)

    def _done_steps(self) -> int:
        epoch, step, per_epoch = self.position or (1, 0, 0)
        return (epoch - 1) * per_epoch + step

    def _total_steps(self) -> int | None:
        """None until a step has been seen: a run resumed right at the end of an epoch reports
        that epoch before its first step, when the steps per epoch are not known yet."""
        if not (self.total_epochs and self.steps_per_epoch):
            return None
        return self.total_epochs * self.steps_per_epoch

    def fraction(self) -> float | None:
        """Share of the run done, 0…1. With --max-minutes the loop fits its schedule into the time
        (see Trainer.progress), so the elapsed share of the time counts too."""
        total = self._total_steps()
        if self._first_step is None:
            return None
        if not total:
            return self._time_share()
        done = min(1.0, self._done_steps() / total)
        if self.max_seconds and self._started is not None:
            at_start = self._first_step[1] / total
            elapsed = (time.monotonic() - self._started) / self.max_seconds
            done = max(done, min(1.0, at_start + (1 - at_start) * elapsed))
        return done

    def eta_seconds(self) -> float | None:
        """Wall time left: at this session's pace (validation and previews included), and never
        more than what is left of --max-minutes."""
        total = self._total_steps()
        if self._first_step and not total and self.max_seconds and self._started is not None:
            return max(0.0, self.max_seconds - (time.monotonic() - self._started))
        if not (self._first_step and total):
            return None
        started, steps_before = self._first_step
        done_here = self._done_steps() - steps_before
        if done_here <= 0:
            return None
        now = time.monotonic()
        eta = max(0, total - self._done_steps()) * (now - started) / done_here
        if self.max_seconds and self._started is not None:
            eta = min(eta, max(0.0, self.max_seconds - (now - self._started)))
        return eta

    def _time_share(self) -> float | None:
        if not (self.max_seconds and self._started is not None):
            return None
        return min(1.0, (time.monotonic() - self._started) / self.max_seconds)

    def stop_notice(self) -> str | None:
        """Once, after a stop was asked for: what happens now."""
        if not self.stop.reason or self._stop_announced:
            return None
        self._stop_announced = True
        again = " (Ctrl-C again quits without saving)" if self.stop.reason == "interrupted" else ""
        return f"{self.stop.reason}: finishing this step, then saving a checkpoint and model{again}"

    def epoch_of(self, number: int) -> str:
        return f"{number}/{self.total_epochs}" if self.total_epochs else f"{number}"

    def close(self) -> None: ...


def _planned_training(run: Path | None) -> dict:
    """The run's training settings, from the run.json the session wrote before the loop."""
    if run is None:
        return {}
    try:
        training = json.loads((run / "run.json").read_text(encoding="utf-8"))["training"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return training if isinstance(training, dict) else {}


def fmt(value, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"
