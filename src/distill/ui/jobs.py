"""The page's one background training: a thread running `session.train` or `session.resume`,
and a Reporter that keeps what the Train tab shows (summary, progress, ETA, losses, messages).

The job belongs to the app (build_app makes it), not to a browser tab: closing the tab leaves the
training running, and any page opened later polls the same job and shows where it is.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distill.errors import UserError
from distill.training.loop import StopFlag
from distill.training.progress import Progress
from distill.training.run import RUN_FILE

log = logging.getLogger("distill.ui")

MAX_MESSAGES = 200  # lines of the training's log kept for the page
CANCEL_REASON = "cancelled in the web page"
_CHARTED = ("total", "stft", "mag", "if", "conv", "kl", "skipped")  # step record keys kept


class TrainingBusyError(UserError):
    """A second training was started while one runs."""


@dataclass
class JobSnapshot:
    """A consistent copy of the job's state for one poll of the page."""

    state: str  # idle | running | stopping | finished | stopped | failed
    version: int  # grows with every change: a poll redraws only when it moved
    run: Path | None = None
    summary: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    position: tuple[int, int, int] | None = None  # (epoch from 1, step, steps per epoch)
    total_epochs: int | None = None
    fraction: float | None = None  # 0…1
    eta_seconds: float | None = None
    error: str | None = None
    ending: list[str] = field(default_factory=list)  # what happened, once it ended
    budget_minutes: float | None = None  # the run's time limit, if it has one
    preview_every: int | None = None  # epochs between previews
    model_id: str | None = None  # the library model the run saved, once it ended

    @property
    def active(self) -> bool:
        return self.state in ("running", "stopping")


class _Recorder(Progress):
    """The loop's Reporter for the page: the CLI's progress model (epochs, ETA, --max-minutes)
    plus every record, kept in memory for the chart. Called from the training thread."""

    def __init__(self, stop: StopFlag, changed: Callable[[], None]) -> None:
        super().__init__(stop)
        self.changed = changed
        self.summary_lines: list[str] = []
        self.messages: list[str] = []
        self.steps: list[dict] = []
        self.epochs: list[dict] = []
        self.preview_every: int | None = None

    def summary(self, lines: list[str]) -> None:
        super().summary(lines)
        self.summary_lines = list(lines)
        every = _planned(self.run).get("preview_every")
        self.preview_every = every if isinstance(every, int) and every > 0 else None
        self.changed()

    def step(self, record: dict, epoch: int, step: int, steps_per_epoch: int) -> None:
        self._note_step(epoch, step, steps_per_epoch)
        done = epoch * steps_per_epoch + step  # global step counted from the run's start
        # Only what the chart draws: a long run has 100 000s of steps.
        self.steps.append({"step": done, **{k: record.get(k) for k in _CHARTED}})
        notice = self.stop_notice()
        if notice:
            self.message(notice)
        self.changed()

    def epoch(self, record: dict) -> None:
        self.val_total = record.get("val_total")
        self.epochs.append(dict(record))
        self.changed()

    def message(self, text: str) -> None:
        self.messages = [*self.messages, text][-MAX_MESSAGES:]
        self.changed()


class TrainingJob:
    """At most one training at a time, in a background thread; safe to poll from any thread."""

    def __init__(self, home: Path, device: str = "auto", overrides: dict | None = None) -> None:
        self.home = Path(home)
        self.device = device
        # Test-only settings (tiny spectral/channels…): passed to session.train, winning over
        # the page's own fields so a browser-started training takes seconds.
        self.overrides = dict(overrides or {})
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = StopFlag()
        self._recorder: _Recorder | None = None
        self._state = "idle"
        self._version = 0
        self._error: str | None = None
        self._ending: list[str] = []
        self._cancelled = False  # the page asked it to stop (else a stop is its time limit)
        self._model_id: str | None = None

    # -- starting ------------------------------------------------------------------------------
    def start(self, data_dir: str | Path, *, name: str | None, preset: str, **settings) -> None:
        """Train a new model on `data_dir`; settings are TrainingConfig fields (None = the
        preset's). Raises TrainingBusyError if a training runs."""
        from distill.training import session

        options = {k: v for k, v in settings.items() if v is not None}
        if self.device != "auto":
            options.setdefault("device", self.device)
        options |= self.overrides

        def work(recorder: _Recorder, stop: StopFlag):
            return session.train(
                data_dir,
                home=self.home,
                name=name or None,
                preset=preset,
                reporter=recorder,
                stop=stop,
                **options,
            )

        self._launch(work, f"training on {data_dir}")

    def resume(self, run: str | Path, **settings) -> None:
        """Continue a stopped run; `settings` may change epochs and max_minutes (None = keep)."""
        from distill.training import session

        options = {k: v for k, v in settings.items() if v is not None}

        def work(recorder: _Recorder, stop: StopFlag):
            return session.resume(run, home=self.home, reporter=recorder, stop=stop, **options)

        self._launch(work, f"resuming {run}")

    def _launch(self, work, what: str) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                where = self._where()
                raise TrainingBusyError(
                    f"a training is already running{where}: wait for it to finish or cancel it "
                    "before starting another (one training at a time)"
                )
            self._stop = StopFlag()
            self._recorder = _Recorder(self._stop, self._changed)
            self._state, self._error, self._ending = "running", None, []
            self._cancelled, self._model_id = False, None
            self._version += 1
            recorder, stop = self._recorder, self._stop
            self._thread = threading.Thread(
                target=self._run, args=(work, recorder, stop), name="distill-training", daemon=True
            )
            self._thread.start()
        log.info("started %s", what)

    def _run(self, work, recorder: _Recorder, stop: StopFlag) -> None:
        try:
            result = work(recorder, stop)
        except UserError as err:
            self._end("failed", error=str(err))
        except Exception:
            log.exception("training failed")
            self._end(
                "failed",
                error="the training stopped on an internal error: the details are in the "
                "terminal where `distill ui` runs",
            )
        else:
            # The page stops a run only when asked to; any other stop is the run's time limit,
            # which is how a time-limited run is meant to end: it finished its budget.
            cancelled = bool(result.stopped) and self._cancelled
            entry = self._saved_entry(result)
            ending = self._ending_lines(result, entry, cancelled)
            self._end(
                "stopped" if cancelled else "finished",
                ending=ending,
                model_id=entry.id if entry else None,
            )

    def _end(
        self,
        state: str,
        error: str | None = None,
        ending: list[str] | None = None,
        model_id: str | None = None,
    ) -> None:
        with self._lock:
            self._state, self._error, self._ending = state, error, ending or []
            self._model_id = model_id
            self._version += 1

    def _saved_entry(self, result):
        """The library entry the run added, or None."""
        from distill.library.store import Library

        try:
            return Library(self.home).find_run(result.run) if result.model_file else None
        except UserError:
            return None

    def _ending_lines(self, result, entry, cancelled: bool) -> list[str]:
        last = result.last_epoch
        losses = (
            f"how far its copies are from your sounds: {_fmt(last.get('train_total'))} on the "
            f"training sounds, {_fmt(last.get('val_total'))} on held-back ones (lower is "
            f"better); {result.saved_weights()}"
        )
        if cancelled:
            lines = [f"stopped ({result.stopped}) after {result.epochs_completed} epochs"]
        elif result.stopped:
            budget = self._recorder.max_seconds if self._recorder else None
            minutes = f" of {budget / 60:g} min" if budget else ""
            lines = [f"used its time budget{minutes}: {result.epochs_completed} epochs; {losses}"]
        else:
            lines = [f"finished {result.epochs_completed} epochs; {losses}"]
        if result.ended:
            lines.append(result.ended)
        if entry is not None:
            lines.append(f"saved to the library as **{entry.name}**: try it in the Generate tab")
        elif result.model_file is None:
            lines.append("no model was written (the weights were not finite)")
        if result.model_file is not None and result.stopped != CANCEL_REASON:
            lines.append(self._report(result, entry))
        run = Path(result.run).name
        if cancelled:
            lines.append(f"resume it later: pick run **{run}** and press Resume")
        elif result.stopped:
            lines.append(f"for more time: pick run **{run}** under Resume and press Resume")
        return lines

    def _report(self, result, entry) -> str:
        """The model report, written into the run folder; the model is saved already, so a
        report that fails is one line, never a failed training."""
        if self._recorder is not None:
            self._recorder.message("making the model report…")
        try:
            from distill.report import REPORT_DIR, write_report

            figures = write_report(
                result.model_file,
                run=Path(result.run),
                out=Path(result.run) / REPORT_DIR,
                name=entry.name if entry else None,
                model_id=entry.id if entry else None,
                device=self.device,
            )
        except Exception as err:  # any failure: the model must not be lost over its report
            log.warning("the model report failed: %s", err, exc_info=True)
            return "no model report could be made: try **Report** in the Library tab"
        return f"model report: `{figures['report']}` (also from the Library tab)"

    # -- stopping ------------------------------------------------------------------------------
    def cancel(self, reason: str = CANCEL_REASON) -> bool:
        """Ask the running training to stop after its current step (it saves a checkpoint and
        the best model so far). False if nothing runs."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                return False
            self._stop.request(reason)
            self._cancelled = True
            if self._state == "running":
                self._state = "stopping"
            self._version += 1
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the training thread to end; True if nothing runs any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    # -- polling -------------------------------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        with self._lock:
            recorder = self._recorder
            snap = JobSnapshot(
                state=self._state,
                version=self._version,
                error=self._error,
                ending=list(self._ending),
                model_id=self._model_id,
            )
            if recorder is None:
                return snap
            snap.run = recorder.run
            snap.summary = list(recorder.summary_lines)
            snap.messages = list(recorder.messages)
            snap.steps = list(recorder.steps)
            snap.epochs = list(recorder.epochs)
            snap.position = recorder.position
            snap.total_epochs = recorder.total_epochs
            snap.budget_minutes = recorder.max_seconds / 60 if recorder.max_seconds else None
            snap.preview_every = recorder.preview_every
            if snap.active and recorder.position is not None:  # (both need a step done)
                snap.fraction = recorder.fraction()
                snap.eta_seconds = recorder.eta_seconds()
            elif snap.state == "finished":
                snap.fraction = 1.0
            return snap

    def _changed(self) -> None:
        with self._lock:
            self._version += 1

    def _where(self) -> str:
        recorder = self._recorder
        if recorder is None or recorder.run is None:
            return ""
        where = f" ({recorder.run.name}"
        if recorder.position:
            where += f", epoch {recorder.epoch_of(recorder.position[0])}"
        return where + ")"


def _planned(run: Path | None) -> dict:
    """The run's training settings, from the run.json the session wrote before the loop."""
    try:
        training = json.loads((Path(run) / RUN_FILE).read_text(encoding="utf-8"))["training"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return training if isinstance(training, dict) else {}


def _fmt(value) -> str:
    from distill.training.progress import fmt

    return fmt(value)
