"""How `distill train` shows progress: a Rich bar on a terminal, plain lines in a log or with
--json (on stderr), both fed by the training loop's Reporter calls."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TextIO

STEP_LINE_SECONDS = 10.0  # plain output: at most one step line per 10 s (every epoch gets a line)


class Display:
    """What both displays share: the run's size, where the last step was, the ETA.

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


class PlainDisplay(Display):
    """One line per epoch and at most one step line per STEP_LINE_SECONDS (every step if verbose):
    for logs, pipes and --json (then on stderr)."""

    def __init__(self, out: TextIO, stop, every_step: bool = False) -> None:
        super().__init__(stop)
        self.out, self.every_step = out, every_step
        self._last_line: float | None = None

    def summary(self, lines: list[str]) -> None:
        super().summary(lines)
        for line in lines:
            say(self.out, line)

    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None:
        self._note_step(epoch, step, steps_per_epoch)
        now = time.monotonic()
        if self.every_step or self._last_line is None or now - self._last_line >= STEP_LINE_SECONDS:
            self._last_line = now
            where = f"epoch {self.epoch_of(epoch + 1)}  step {step}/{steps_per_epoch}"
            say(self.out, f"{where}  {_step_losses(record)}")
        notice = self.stop_notice()
        if notice:
            say(self.out, notice)

    def epoch(self, record: dict) -> None:
        self.val_total = record.get("val_total")
        self._last_line = time.monotonic()
        say(self.out, _epoch_line(record, self))

    def message(self, text: str) -> None:
        say(self.out, text)


class RichDisplay(Display):
    """A progress bar (epoch, step, loss, validation loss, ETA); epoch lines print above it."""

    def __init__(self, stop) -> None:
        from rich.console import Console

        super().__init__(stop)
        self.console = Console(highlight=False)
        self.progress = None
        self.task = None

    def summary(self, lines: list[str]) -> None:
        super().summary(lines)
        for line in lines:
            self.console.print(_escape(line), style="dim" if not line.startswith("run:") else None)

    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None:
        self._note_step(epoch, step, steps_per_epoch)
        if self.progress is None:
            self._start()
        fraction = self.fraction()
        self.progress.update(
            self.task,
            total=None if fraction is None else 1.0,
            completed=fraction or 0.0,
            epoch=self.epoch_of(epoch + 1),
            step=f"{step}/{steps_per_epoch}",
            loss="skipped" if record.get("skipped") else fmt(record.get("total")),
        )
        notice = self.stop_notice()
        if notice:
            self.console.print(_escape(notice), style="yellow")

    def _start(self) -> None:
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        display = self

        class EtaColumn(ProgressColumn):
            """The display's own ETA: it knows about --max-minutes, rich's speed would not."""

            def render(self, task) -> Text:
                eta = display.eta_seconds()
                return Text(
                    f"ETA {_duration(eta) if eta is not None else '-'}", "progress.remaining"
                )

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("step {task.fields[step]}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
            EtaColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task(
            "train", total=None, epoch="", step="", loss="-", val=fmt(self.val_total)
        )
        self.progress.start()

    def epoch(self, record: dict) -> None:
        self.val_total = record.get("val_total")
        if self.progress is not None:
            self.progress.update(self.task, val=fmt(self.val_total))
        self.console.print(_escape(_epoch_line(record, self)))

    def message(self, text: str) -> None:
        style = "yellow" if text.startswith("warning") else None
        self.console.print(_escape(text), style=style)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _planned_training(run: Path | None) -> dict:
    """The run's training settings, from the run.json the session wrote before the loop."""
    if run is None:
        return {}
    try:
        training = json.loads((run / "run.json").read_text(encoding="utf-8"))["training"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return training if isinstance(training, dict) else {}


def _step_losses(record: dict) -> str:
    if record.get("skipped"):
        return "skipped: non-finite loss or gradient"
    return (
        f"loss {fmt(record.get('total'))} ({_components(record, '')})  "
        f"β {fmt(record.get('beta'), 3)}  lr {fmt(record.get('lr'), 3)}"
    )


def _epoch_line(record: dict, display: Display) -> str:
    line = (
        f"epoch {display.epoch_of(record.get('epoch', 0))}  "
        f"train {fmt(record.get('train_total'))} ({_components(record, 'train_')})  "
        f"val {fmt(record.get('val_total'))}  {fmt(record.get('samples_per_s'), 3)} samples/s"
    )
    eta = display.eta_seconds()
    last = display.total_epochs and record.get("epoch", 0) >= display.total_epochs
    if eta is not None and not last:
        line += f"  ETA {_duration(eta)}"
    if record.get("best_epoch") == record.get("epoch"):
        line += "  (best)"
    return line


def _components(record: dict, prefix: str) -> str:
    return " ".join(f"{k} {fmt(record.get(prefix + k))}" for k in ("stft", "mag", "if", "kl"))


def fmt(value, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)
