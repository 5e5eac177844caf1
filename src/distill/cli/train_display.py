"""How `distill train` draws progress: a Rich bar on a terminal, plain lines in a log or with
--json (on stderr). What they draw (where the run is, its ETA) is training.progress.Progress."""

from __future__ import annotations

import time
from typing import TextIO

from distill.training.progress import Progress, fmt

__all__ = ["PlainDisplay", "Progress", "RichDisplay", "fmt", "say"]

STEP_LINE_SECONDS = 10.0  # plain output: at most one step line per 10 s (every epoch gets a line)


class PlainDisplay(Progress):
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


class RichDisplay(Progress):
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


def _step_losses(record: dict) -> str:
    if record.get("skipped"):
        return "skipped: non-finite loss or gradient"
    return (
        f"loss {fmt(record.get('total'))} ({_components(record, '')})  "
        f"β {fmt(record.get('beta'), 3)}  lr {fmt(record.get('lr'), 3)}"
    )


def _epoch_line(record: dict, display: Progress) -> str:
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
