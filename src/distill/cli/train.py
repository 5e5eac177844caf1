"""`distill train DATA_DIR` and `distill train --resume RUN`.

A thin layer over `distill.training.session`: it checks the flags, shows progress (a Rich bar on a
terminal, plain lines in a log or with --json), turns the first Ctrl-C or SIGTERM into a clean stop
(the loop finishes its step, saves a checkpoint and writes the model) and says where everything
went. torch and `distill.training.*` are imported inside the functions so `distill --help` stays
fast.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, ClassVar, TextIO

import typer

from distill.errors import UserError

STEP_LINE_SECONDS = 10.0  # plain output: at most one step line per 10 s (every epoch gets a line)
SIGNAL_EXIT_BASE = (
    128  # shell convention: killed by signal N exits 128 + N (SIGINT 130, SIGTERM 143)
)

# TrainingConfig fields and the flags that set them, so a validation error names the flag.
_FLAGS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "latent_dim": "--latent-dim",
    "seed": "--seed",
    "device": "--device",
    "max_minutes": "--max-minutes",
    "threads": "--threads",
}
# What --resume may change (session.resume enforces the same set).
_RESUME_FIELDS = ("epochs", "device", "max_minutes", "threads")


def train_command(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Argument(
            help="Folder of recordings (searched recursively). Leave out with --resume.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Run name (default: the folder's name); a taken name gets -2, -3, …"),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(help="auto (chosen by file count), conservative, balanced or aggressive."),
    ] = "auto",
    epochs: Annotated[
        int | None,
        typer.Option(help="Epochs (default: the preset's). With --resume, more extends the run."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Chunks per step.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    latent_dim: Annotated[int | None, typer.Option(help="Size of the latent space.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the weights, split and shuffle.")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto (default), cpu, cuda, cuda:N or mps.")
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(help="Stop after this many minutes, saving a checkpoint and the model."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN",
            help="Continue a stopped run (its name or folder) from its last checkpoint.",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object to stdout at the end; progress to stderr."
        ),
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option(help="Distill home (default: $DISTILL_HOME or the user data folder)."),
    ] = None,
    threads: Annotated[int | None, typer.Option(hidden=True, help="torch CPU threads.")] = None,
    channels: Annotated[
        str | None,
        typer.Option(hidden=True, help="Conv widths, e.g. 8,16,16,32,32 (tests, experiments)."),
    ] = None,
    chunk_seconds: Annotated[
        float | None, typer.Option(hidden=True, help="Chunk length in seconds (default 1).")
    ] = None,
    precision: Annotated[str, typer.Option(hidden=True, help="fp32 or bf16 (autocast).")] = "fp32",
) -> None:
    """Train a model on a folder of recordings, or continue a stopped run with --resume.

    Ctrl-C or SIGTERM stops after the current step and saves a checkpoint and the best model.

    Exit codes: 0 finished or --max-minutes, 130 Ctrl-C, 143 SIGTERM, 1 too few files, 2 errors.
    """
    shared = ctx.obj or {}  # the root command's --home / --device / --verbose
    home = home or shared.get("home")
    device = device or shared.get("device")
    overrides = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": lr,
        "latent_dim": latent_dim,
        "seed": seed,
        "device": device,
        "max_minutes": max_minutes,
        "threads": threads,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if (data_dir is None) == (resume is None):
        raise UserError(
            "give either a folder of recordings (distill train DATA_DIR) or --resume RUN, not both"
            if resume
            else "give a folder of recordings (distill train DATA_DIR) or --resume RUN to continue"
        )
    spectral, widths = None, None
    if resume:
        _check_resume_flags(overrides, name, preset, channels, chunk_seconds)
    else:
        _check_folder_exists(data_dir)
        _check_preset(preset)
        widths = _parse_channels(channels) if channels is not None else None
        spectral = _spectral(chunk_seconds) if chunk_seconds is not None else None
    if precision not in ("fp32", "bf16"):
        raise UserError(f"--precision must be fp32 or bf16 (got {precision!r})")
    _check_settings(overrides)

    from distill.training import session  # torch: only once the flags are known to be good
    from distill.training.loop import StopFlag

    out = sys.stderr if json_output else sys.stdout
    interactive = not json_output and sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    stop = StopFlag()
    reporter: _Display = (
        RichDisplay(stop)
        if interactive
        else PlainDisplay(out, stop, every_step=bool(shared.get("verbose")))
    )
    signals = StopOnSignals(stop, reporter)
    try:
        with signals:
            if resume:
                result = session.resume(
                    resume,
                    home=home,
                    reporter=reporter,
                    stop=stop,
                    precision=precision,
                    **overrides,
                )
            else:
                result = session.train(
                    data_dir,
                    home=home,
                    name=name,
                    preset=preset,
                    spectral=spectral,
                    channels=widths,
                    reporter=reporter,
                    stop=stop,
                    precision=precision,
                    **overrides,
                )
    except KeyboardInterrupt:
        reporter.close()
        _say(out, _quit_message(reporter, home))
        raise typer.Exit(signals.exit_code or SIGNAL_EXIT_BASE + signal.SIGINT) from None
    finally:
        reporter.close()

    code = signals.exit_code if result.stopped else 0
    command = resume_command(result.run, home) if result.stopped else None
    if json_output:
        typer.echo(json.dumps(_result_json(result, reporter, command), indent=2))
    for line in _ending_lines(result, reporter, command):
        _say(out, line)
    if code:
        raise typer.Exit(code)


# --- checking the flags (no torch needed) ---------------------------------------------------


def _check_folder_exists(data_dir: Path) -> None:
    """The dataset check says the same; saying it here spares the wait for torch to load."""
    folder = data_dir.expanduser()
    if not folder.exists():
        raise UserError(f"folder not found: {folder}: check the path")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder: pass the folder that holds it")


def _check_preset(preset: str) -> None:
    from distill.training.config import PRESET_NAMES

    if preset != "auto" and preset not in PRESET_NAMES:
        raise UserError(f"unknown preset {preset!r}: choose one of auto, {', '.join(PRESET_NAMES)}")


def _check_resume_flags(overrides: dict, name, preset, channels, chunk_seconds) -> None:
    fixed = [_FLAGS[k] for k in overrides if k not in _RESUME_FIELDS]
    fixed += [
        flag
        for flag, given in (
            ("--name", name is not None),
            ("--preset", preset != "auto"),
            ("--channels", channels is not None),
            ("--chunk-seconds", chunk_seconds is not None),
        )
        if given
    ]
    if fixed:
        allowed = ", ".join(_FLAGS[k] for k in _RESUME_FIELDS)
        raise UserError(
            f"--resume continues a run as it was configured: {', '.join(fixed)} cannot change "
            f"(only {allowed}); start a new run to change them"
        )


def _check_settings(overrides: dict) -> None:
    """Validate the flags against TrainingConfig's rules now, naming the flag in the error."""
    from distill.training.config import PRESETS, ConfigError

    try:  # the valid ranges are the same in every preset
        PRESETS["balanced"].with_overrides(**overrides)
    except ConfigError as err:
        message = str(err)
        for field, flag in _FLAGS.items():
            if message.startswith(f"{field} "):
                message = flag + message[len(field) :]
        raise UserError(message) from None
    requested = overrides.get("device", "auto")
    if requested not in ("auto", "cpu"):
        from distill.training.device import pick_device

        pick_device(requested)  # no CUDA / MPS here: one line now, before any folder is made


def _parse_channels(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if not 1 <= len(widths) <= 8 or min(widths) < 1:
        raise UserError(f"--channels must be 1–8 comma-separated positive integers (got {text!r})")
    return widths


def _spectral(chunk_seconds: float):
    from distill.spectral.config import SpectralConfig

    if not 0.1 <= chunk_seconds <= 10.0:  # also rejects NaN
        raise UserError(f"--chunk-seconds must be between 0.1 and 10 (got {chunk_seconds})")
    return SpectralConfig(chunk_seconds=chunk_seconds)


# --- progress displays ------------------------------------------------------------------------


class _Display:
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
        self._first_step: tuple[float, int] | None = None  # (time, global step) this session

    def summary(self, lines: list[str]) -> None:
        for line in lines:
            if line.startswith("run: "):
                self.run = Path(line.removeprefix("run: "))
        self.total_epochs = _planned_epochs(self.run)
        self.training = True

    def _note_step(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        self.position = (epoch + 1, step, steps_per_epoch)
        self.steps_per_epoch = steps_per_epoch
        if self._first_step is None:
            self._first_step = (time.monotonic(), self._done_steps() - 1)

    def _done_steps(self) -> int:
        epoch, step, per_epoch = self.position or (1, 0, 0)
        return (epoch - 1) * per_epoch + step

    def eta_seconds(self) -> float | None:
        """Wall time left at this session's pace (validation and previews included)."""
        if not (self._first_step and self.total_epochs and self.steps_per_epoch):
            return None
        started, steps_before = self._first_step
        done_here = self._done_steps() - steps_before
        if done_here <= 0:
            return None
        left = self.total_epochs * self.steps_per_epoch - self._done_steps()
        return max(0, left) * (time.monotonic() - started) / done_here

    def stop_notice(self) -> str | None:
        """Once, after a stop was asked for: what happens now."""
        if not self.stop.reason or self._stop_announced:
            return None
        self._stop_announced = True
        return (
            f"{self.stop.reason}: finishing this step, then saving a checkpoint and the model "
            "(Ctrl-C again quits without saving)"
        )

    def epoch_of(self, number: int) -> str:
        return f"{number}/{self.total_epochs}" if self.total_epochs else f"{number}"

    def close(self) -> None: ...


class PlainDisplay(_Display):
    """One line per epoch and at most one step line per STEP_LINE_SECONDS (every step if verbose):
    for logs, pipes and --json (then on stderr)."""

    def __init__(self, out: TextIO, stop, every_step: bool = False) -> None:
        super().__init__(stop)
        self.out, self.every_step = out, every_step
        self._last_line: float | None = None

    def summary(self, lines: list[str]) -> None:
        super().summary(lines)
        for line in lines:
            _say(self.out, line)

    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None:
        self._note_step(epoch, step, steps_per_epoch)
        now = time.monotonic()
        if self.every_step or self._last_line is None or now - self._last_line >= STEP_LINE_SECONDS:
            self._last_line = now
            where = f"epoch {self.epoch_of(epoch + 1)}  step {step}/{steps_per_epoch}"
            _say(self.out, f"{where}  {_step_losses(record)}")
        notice = self.stop_notice()
        if notice:
            _say(self.out, notice)

    def epoch(self, record: dict) -> None:
        self.val_total = record.get("val_total")
        self._last_line = time.monotonic()
        _say(self.out, _epoch_line(record, self))

    def message(self, text: str) -> None:
        _say(self.out, text)


class RichDisplay(_Display):
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
        loss = "skipped" if record.get("skipped") else _num(record.get("total"))
        self.progress.update(
            self.task,
            completed=self._done_steps(),
            epoch=self.epoch_of(epoch + 1),
            step=f"{step}/{steps_per_epoch}",
            loss=loss,
        )
        notice = self.stop_notice()
        if notice:
            self.console.print(_escape(notice), style="yellow")

    def _start(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("step {task.fields[step]}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        total = self.total_epochs * self.steps_per_epoch if self.total_epochs else None
        # Created at the resumed position, so the speed (and ETA) counts only this session's steps.
        self.task = self.progress.add_task(
            "train",
            total=total,
            completed=self._done_steps() - 1,
            epoch="",
            step="",
            loss="-",
            val=_num(self.val_total),
        )
        self.progress.start()

    def epoch(self, record: dict) -> None:
        self.val_total = record.get("val_total")
        if self.progress is not None:
            self.progress.update(self.task, val=_num(self.val_total))
        self.console.print(_escape(_epoch_line(record, self)))

    def message(self, text: str) -> None:
        style = "yellow" if text.startswith("warning") else None
        self.console.print(_escape(text), style=style)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _planned_epochs(run: Path | None) -> int | None:
    """The run's epoch count, from the run.json the session wrote before training."""
    if run is None:
        return None
    try:
        return int(json.loads((run / "run.json").read_text(encoding="utf-8"))["training"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _step_losses(record: dict) -> str:
    if record.get("skipped"):
        return "skipped: non-finite loss or gradient"
    return (
        f"loss {_num(record.get('total'))} ({_components(record, '')})  "
        f"β {_num(record.get('beta'), 3)}  lr {_num(record.get('lr'), 3)}"
    )


def _epoch_line(record: dict, display: _Display) -> str:
    line = (
        f"epoch {display.epoch_of(record.get('epoch', 0))}  "
        f"train {_num(record.get('train_total'))} ({_components(record, 'train_')})  "
        f"val {_num(record.get('val_total'))}  {_num(record.get('samples_per_s'), 3)} samples/s"
    )
    eta = display.eta_seconds()
    if eta is not None and display.total_epochs and record.get("epoch", 0) < display.total_epochs:
        line += f"  ETA {_duration(eta)}"
    if record.get("best_epoch") == record.get("epoch"):
        line += "  (best)"
    return line


def _components(record: dict, prefix: str) -> str:
    return " ".join(f"{k} {_num(record.get(prefix + k))}" for k in ("stft", "mag", "if", "kl"))


def _num(value, digits: int = 4) -> str:
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


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)


# --- signals ----------------------------------------------------------------------------------


class StopOnSignals:
    """While training: the first SIGINT / SIGTERM asks the loop to stop after its current step (it
    then saves a checkpoint and the model); a second one, or one before the loop has started,
    raises KeyboardInterrupt at once. The previous handlers come back on exit.

    The handler only sets a flag: printing from a signal handler can hit a reentrant write.
    """

    REASONS: ClassVar[dict[int, str]] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}

    def __init__(self, stop, display: _Display) -> None:
        self.stop, self.display = stop, display
        self.received: int | None = None  # the signal that asked for the stop
        self.last: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():  # only there can Python trap
            for signum in self.REASONS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        self.last = signum
        if self.received is None and self.display.training:
            self.received = signum
            self.stop.request(self.REASONS[signum])
            return
        raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        signum = self.last if self.received is None else self.received
        return SIGNAL_EXIT_BASE + signum if signum else 0


# --- the ending -------------------------------------------------------------------------------


def resume_command(run: Path, home: Path | None) -> str:
    """The command that continues `run`, quoted for a POSIX shell (paths with spaces)."""
    from distill.home import HOME_ENV, resolve_home

    home_dir = resolve_home(home)
    target = run.name if run.parent == home_dir / "runs" else str(run)
    parts = ["distill", "train", "--resume", target]
    if home or os.environ.get(HOME_ENV):  # not the platform default: say which home
        parts += ["--home", str(home_dir)]
    return shlex.join(parts)


def _stopped_line(result, display: _Display, command: str) -> str:
    where = ""
    if display.position:
        epoch, step, per_epoch = display.position
        where = f" at epoch {epoch}, step {step}/{per_epoch}"
    if result.model_file is None:
        model = "no model file written (the weights were not finite)"
    elif result.best_epoch > 0:
        model = f"model from the best epoch ({result.best_epoch}) saved to {result.model_file}"
    else:
        model = (
            f"model from the current weights (no epoch finished yet) saved to {result.model_file}"
        )
    return f"stopped ({result.stopped}){where} — checkpoint saved; {model}. Resume with: {command}"


def _ending_lines(result, display: _Display, command: str | None) -> list[str]:
    run = Path(result.run)
    if result.stopped:
        lines = [_stopped_line(result, display, command)]
    else:
        last = result.last_epoch
        lines = [
            f"finished {result.epochs_completed} epochs: train {_num(last.get('train_total'))}, "
            f"val {_num(last.get('val_total'))}; best epoch {result.best_epoch}"
        ]
    lines += [
        f"run folder:  {run}",
        f"metrics:     {run / 'metrics.jsonl'}",
        f"previews:    {run / 'previews'}",
        f"checkpoints: {run / 'checkpoints'}",
        f"model:       {result.model_file or '(none)'}",
    ]
    return lines


def _result_json(result, display: _Display, command: str | None) -> dict:
    run = Path(result.run)
    position = None
    if display.position:
        epoch, step, per_epoch = display.position
        position = {"epoch": epoch, "step": step, "steps_per_epoch": per_epoch}
    return {
        "run": str(run),
        "name": run.name,
        "model_file": str(result.model_file) if result.model_file else None,
        "metrics": str(run / "metrics.jsonl"),
        "previews": str(run / "previews"),
        "checkpoints": str(run / "checkpoints"),
        "epochs_completed": result.epochs_completed,
        "stopped": result.stopped,
        "stopped_at": position if result.stopped else None,
        "best_epoch": result.best_epoch,
        "final_metrics": {k: _finite(v) for k, v in result.last_epoch.items()},
        "resume_command": command,
    }


def _finite(value):
    """JSON has no NaN or Infinity."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _quit_message(display: _Display, home: Path | None) -> str:
    if not display.training or display.run is None:
        return "interrupted before training started: nothing was trained"
    if (display.run / "checkpoints" / "last.pt").exists():
        return (
            "quit without saving the current epoch; the last checkpoint is kept. Resume with: "
            + resume_command(display.run, home)
        )
    return "quit before the first checkpoint: nothing was saved; start the run again"
