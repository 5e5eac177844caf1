"""`distill train DATA_DIR` and `distill train --resume RUN`.

A thin layer over `distill.training.session`: it checks the flags, shows progress (a Rich bar on a
terminal, plain lines in a log or with --json), turns the first Ctrl-C or SIGTERM into a clean stop
(the loop finishes its step, saves a checkpoint and writes the model) and says where everything
went. torch and `distill.training.*` are imported inside the functions so `distill --help` stays
fast.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, ClassVar

import typer

from distill.cli.train_display import PlainDisplay, RichDisplay, fmt, say
from distill.errors import UserError
from distill.terminal import json_text, printable
from distill.training.progress import Progress

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
    precision: Annotated[
        str,
        typer.Option(
            hidden=True, help="auto (bf16 where the hardware has it natively), fp32 or bf16."
        ),
    ] = "auto",
) -> dict | None:
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
        if name is not None:
            from distill.library.models import clean_name

            clean_name(name)  # the library's rule, now: not after minutes of training
        widths = _parse_channels(channels) if channels is not None else None
        spectral = _spectral(chunk_seconds) if chunk_seconds is not None else None
    if precision not in ("auto", "fp32", "bf16"):
        raise UserError(f"--precision must be auto, fp32 or bf16 (got {precision!r})")
    _check_settings(overrides)

    from distill.training import session  # torch: only once the flags are known to be good
    from distill.training.loop import StopFlag

    out = sys.stderr if json_output else sys.stdout
    interactive = not json_output and sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    stop = StopFlag()
    reporter: Progress = (
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
    except session.RunWriteError as err:  # the same line, with this home's resume command
        raise UserError(
            f"training stopped: cannot write in {err.run} ({err.reason}); the last checkpoint is "
            f"kept: free some space, then resume with: {resume_command(err.run, home)}"
        ) from err
    except KeyboardInterrupt:
        reporter.close()
        say(out, _quit_message(reporter, home))
        raise typer.Exit(signals.exit_code or SIGNAL_EXIT_BASE + signal.SIGINT) from None
    finally:
        reporter.close()

    code = signals.exit_code if result.stopped in StopOnSignals.REASONS.values() else 0
    command = resume_command(result.run, home) if result.stopped else None
    library = _library_entry(result, home)
    report = _report(result, library, home, device, out) if code == 0 else None
    if json_output:
        output = _result_json(result, reporter, command) | {"library": library, "report": report}
        typer.echo(json_text(output, indent=2))
    for line in _ending_lines(result, reporter, command):
        say(out, printable(line))
    if report:
        say(out, printable(f"report:      {report}"))
    if library:
        say(out, printable(f"saved to the library as {library['name']} (id {library['id']})"))
    if code:
        raise typer.Exit(code)
    return library  # for `distill demo`, which trains through this command


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


# --- signals ----------------------------------------------------------------------------------


class StopOnSignals:
    """While training: the first SIGINT / SIGTERM asks the loop to stop after its current step (it
    then saves a checkpoint and the model); a second one, or one before the loop has started,
    raises KeyboardInterrupt at once. The previous handlers come back on exit.

    The handler only sets a flag: printing from a signal handler can hit a reentrant write.
    """

    REASONS: ClassVar[dict[int, str]] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}

    def __init__(self, stop, display: Progress) -> None:
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


def _stopped_line(result, display: Progress, command: str) -> str:
    where = ""
    if display.position:
        epoch, step, per_epoch = display.position
        where = f" at epoch {epoch}, step {step}/{per_epoch}"
    if result.model_file is None:
        model = "no model file written (the weights were not finite)"
    else:
        model = f"{result.saved_weights()}, saved to {result.model_file}"
    return f"stopped ({result.stopped}){where} — checkpoint saved; {model}. Resume with: {command}"


def _ending_lines(result, display: Progress, command: str | None) -> list[str]:
    run = Path(result.run)
    if result.stopped:
        lines = [_stopped_line(result, display, command)]
    else:
        last = result.last_epoch
        lines = [
            f"finished {result.epochs_completed} epochs: train {fmt(last.get('train_total'))}, "
            f"val {fmt(last.get('val_total'))}; {result.saved_weights()}"
        ]
    lines += [
        f"run folder:  {run}",
        f"metrics:     {run / 'metrics.jsonl'}",
        f"previews:    {run / 'previews'}{'' if (run / 'previews').is_dir() else ' (none yet)'}",
        f"checkpoints: {run / 'checkpoints'}",
        f"model:       {result.model_file or '(none)'}",
    ]
    return lines


def _result_json(result, display: Progress, command: str | None) -> dict:
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
        "weights": result.weights,
        "weights_epoch": result.weights_epoch,
        "final_metrics": {k: _finite(v) for k, v in result.last_epoch.items()},
        "resume_command": command,
    }


def _library_entry(result, home: Path | None) -> dict | None:
    """{"id", "name"} of the library entry the run's model went to; None if it is not there."""
    from distill.library.store import Library

    try:  # the training has already warned if the library could not take the model
        entry = Library(home).find_run(result.run) if result.model_file else None
    except UserError:
        return None
    return {"id": entry.id, "name": entry.name} if entry else None


def _report(result, library: dict | None, home: Path | None, device: str | None, out) -> str | None:
    """The model report, written into the run folder (runs/<name>/report/report.html). The model
    is saved already: a report that fails is one warning line, never an error."""
    if result.model_file is None:
        return None
    name = library["name"] if library else Path(result.run).name
    again = ["distill", "model", "report", name if library else str(result.model_file)]
    again += ["--home", str(home)] if home else []
    say(out, "making the model report (the model's resynthesis of a few recordings)…")
    try:
        from distill.report import REPORT_DIR, write_report

        figures = write_report(
            result.model_file,
            run=Path(result.run),
            out=Path(result.run) / REPORT_DIR,
            name=name,
            model_id=library["id"] if library else None,
            device=device or "auto",
        )
    except Exception as err:  # any failure: the model must not be lost over its report
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        say(out, printable(f"warning: no model report ({first}); try: {shlex.join(again)}"))
        return None
    return figures["report"]


def _finite(value):
    """JSON has no NaN or Infinity."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _quit_message(display: Progress, home: Path | None) -> str:
    if not display.training or display.run is None:
        return "interrupted before training started: nothing was trained"
    if (display.run / "checkpoints" / "last.pt").exists():
        return (
            "quit without saving the current epoch; the last checkpoint is kept. Resume with: "
            + resume_command(display.run, home)
        )
    return "quit before the first checkpoint: nothing was saved; start the run again"
