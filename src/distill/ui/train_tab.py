"""Train tab: start, cancel and resume the app's one background training (jobs.TrainingJob over
`distill.training.session`), and watch it: progress and ETA, a live loss chart per component,
the configuration summary, the log and the preview players as previews are written (and when
the next ones come); once it has saved a model, a step to the Generate tab with it.

A gr.Timer polls the job every POLL_SECONDS; a page redraws only when the job's version moved, so
a page opened (or reopened) at any time shows the training where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from distill.errors import UserError
from distill.training.checkpoint import LAST
from distill.training.config import PRESET_NAMES
from distill.training.run import RUN_FILE
from distill.ui.common import UIContext, fmt, log, shown_errors
from distill.ui.jobs import JobSnapshot, TrainingJob
from distill.ui.plots import loss_chart

POLL_SECONDS = 1.5
MAX_PREVIEWS = 6  # a reconstruction, its original and 4 random latents per preview epoch
LOG_LINES = 12


@dataclass
class TrainTab:
    folder: gr.Textbox
    tab_select_outputs: list  # what refreshing the tab updates
    refresh_runs: object  # fn() → dropdown update
    trained: gr.Textbox  # (hidden) id of the model the last run saved: it changes once per run
    go_generate: gr.Button  # shown once a run has saved a model


def build(ctx: UIContext, job: TrainingJob) -> TrainTab:
    gr.Markdown(
        "Train a model on a folder of recordings. Training runs in the background: you can close "
        "this page and come back. Leave a number at 0 and the **preset** chooses it; **auto** "
        "picks the preset from how many sounds you have."
    )
    with gr.Row():
        folder = gr.Textbox(label="Folder of recordings", scale=3, elem_id="train-folder")
        name = gr.Textbox(label="Model name", placeholder="default: the folder's name", scale=2)
        preset = gr.Dropdown(
            ["auto", *PRESET_NAMES], value="auto", label="Preset", scale=1, elem_id="train-preset"
        )
    with gr.Row():
        # No minimum/maximum: the training config's validation names the valid range.
        # 0 (what an empty field shows and sends) means "the preset's value".
        max_minutes = gr.Number(
            label="Time limit (minutes)",
            info="0 = no limit: it stops when it has learned what it can",
            elem_id="train-minutes",
        )
        epochs = gr.Number(
            label="Epochs",
            info="how many times it listens through all your sounds; 0 = the preset's "
            "number (with a time limit: as many as fit)",
            precision=0,
            elem_id="train-epochs",
        )
    with gr.Accordion("Advanced (0 = the preset chooses)", open=False), gr.Row():
        batch_size = gr.Number(
            label="Sounds per step (batch size)",
            info="more: steadier learning, more memory",
            precision=0,
        )
        learning_rate = gr.Number(
            label="Learning speed (learning rate)",
            info="too high and it goes wrong, too low and it learns slowly",
        )
        latent_dim = gr.Number(
            label="Sound descriptors (latent size)",
            info="how many numbers describe a moment of sound: more hold more detail and "
            "need more sounds",
            precision=0,
        )
    with gr.Row():
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
    with gr.Accordion("Resume a stopped run", open=False):
        with gr.Row():
            run_choice = gr.Dropdown(
                label="Run", choices=[], scale=3, allow_custom_value=True, elem_id="train-run"
            )
            resume_button = gr.Button("Resume", scale=1, elem_id="train-resume")
        gr.Markdown(
            "A run continues from its last checkpoint with its own settings; *Epochs* and *Max "
            "minutes* above, if filled in, extend or limit it."
        )

    status = gr.Markdown("No training is running.", elem_id="train-status")
    go_generate = gr.Button(
        "Go to Generate with this model →", variant="primary", visible=False, elem_id="train-go"
    )
    trained = gr.Textbox(visible=False)  # the id of the model the run saved
    chart = gr.Image(
        label="Loss per component (log scale)",
        type="pil",
        format="png",
        interactive=False,
        elem_id="train-chart",
    )
    with gr.Accordion("Previews: what the model makes so far", open=True):
        preview_note = gr.Markdown(_preview_note(job.snapshot(), []), elem_id="train-preview-note")
        with gr.Row():
            previews = [
                gr.Audio(
                    type="filepath", visible=False, interactive=False, elem_id=f"train-preview-{i}"
                )
                for i in range(MAX_PREVIEWS)
            ]
    with gr.Row():
        config = gr.Textbox(label="Configuration", lines=7, interactive=False, max_lines=12)
        log_box = gr.Textbox(label="Log", lines=7, interactive=False, max_lines=12, autoscroll=True)
    seen = gr.State({})  # what this page shows: job version, preview files, summary
    timer = gr.Timer(POLL_SECONDS)

    def refresh_runs():
        return gr.Dropdown(choices=_resumable_runs(ctx.home))

    @shown_errors
    def start_training(folder_text, name_text, preset_name, n_epochs, batch, lr, latent, minutes):
        if not (folder_text or "").strip():
            raise UserError(
                "choose the folder of recordings first (check one in the Data tab, or type its "
                "path above)"
            )
        job.start(
            Path(folder_text.strip()).expanduser(),
            name=(name_text or "").strip() or None,
            preset=preset_name or "auto",
            epochs=n_epochs or None,
            batch_size=batch or None,
            learning_rate=lr or None,
            latent_dim=latent or None,
            max_minutes=minutes or None,
        )
        gr.Info("Training started: this page updates as it runs.")

    @shown_errors
    def resume_training(run, n_epochs, minutes):
        if not run:
            raise UserError("pick a run to resume (only runs with a checkpoint are listed)")
        job.resume(run, epochs=n_epochs or None, max_minutes=minutes or None)
        gr.Info(f"Resuming {run}.")

    @shown_errors
    def cancel_training():
        if job.cancel():
            gr.Info("Stopping after this step: a checkpoint and the best model so far are saved.")
        else:
            gr.Info("No training is running.")

    def poll(shown: dict):
        """Redraw what changed since this page's last poll (`shown`: what it shows now)."""
        snap = job.snapshot()
        if snap.version == shown.get("version"):
            return [gr.skip()] * (len(poll_outputs) - 1) + [shown]
        if snap.state == "failed" and snap.error:
            gr.Warning(f"Training failed: {snap.error}")
        steps_per_epoch = snap.position[2] if snap.position else None
        try:
            image = loss_chart(snap.steps, snap.epochs, steps_per_epoch) if snap.run else None
        except Exception:  # a chart bug must not turn every poll into an error pop-up
            log.exception("cannot draw the loss chart")
            image = gr.skip()
        files = _preview_files(snap.run)
        # Players are only touched when the files change: an update would stop playback.
        players = [gr.skip()] * MAX_PREVIEWS
        if [str(f) for f in files] != shown.get("previews"):
            players = _preview_updates(files)
        summary = "\n".join(snap.summary)
        saved = snap.model_id if snap.state in ("finished", "stopped") else None
        return [
            _status(snap),
            image,
            summary if summary != shown.get("summary") else gr.skip(),
            "\n".join(snap.messages[-LOG_LINES:]),
            gr.Button(interactive=snap.active),
            _preview_note(snap, files),
            *players,
            gr.Button(visible=bool(saved)),
            saved or "",
            {"version": snap.version, "previews": [str(f) for f in files], "summary": summary},
        ]

    poll_outputs = [
        status,
        chart,
        config,
        log_box,
        cancel,
        preview_note,
        *previews,
        go_generate,
        trained,
        seen,
    ]
    timer.tick(poll, [seen], poll_outputs, show_progress="hidden", api_name=False)
    settings = [folder, name, preset, epochs, batch_size, learning_rate, latent_dim, max_minutes]
    start.click(start_training, settings, None, api_name="start_training").then(
        poll, [seen], poll_outputs, show_progress="hidden", api_name=False
    )
    resume_button.click(
        resume_training, [run_choice, epochs, max_minutes], None, api_name="resume_training"
    ).then(poll, [seen], poll_outputs, show_progress="hidden", api_name=False)
    cancel.click(cancel_training, None, None, api_name="cancel_training")
    return TrainTab(
        folder=folder,
        tab_select_outputs=[run_choice],
        refresh_runs=refresh_runs,
        trained=trained,
        go_generate=go_generate,
    )


def _status(snap: JobSnapshot) -> str:
    run = f" `{snap.run.name}`" if snap.run else ""
    if snap.state == "idle":
        return "No training is running."
    if snap.state == "failed":
        return f"**⚠ Training failed{run}:** {snap.error}"
    if snap.state in ("finished", "stopped"):
        return "\n\n".join(
            [f"**{'Finished' if snap.state == 'finished' else 'Stopped'}**{run}", *snap.ending]
        )
    if snap.position is None:
        head = f"**Preparing**{run}: reading and caching the sounds…"
    else:
        epoch, step, per_epoch = snap.position
        total = f" of {snap.total_epochs}" if snap.total_epochs else ""
        head = f"**Training**{run} — epoch {epoch}{total}, step {step}/{per_epoch}"
        if snap.fraction is not None:
            head += f" — {100 * snap.fraction:.0f} %"
            if snap.budget_minutes:
                head += f" of its {snap.budget_minutes:g} min"
        if snap.eta_seconds is not None:
            head += f" — ETA {_duration(snap.eta_seconds)}"
        if snap.steps:
            head += f" — loss {fmt(snap.steps[-1].get('total'))}"
        if snap.epochs:
            head += f", validation {fmt(snap.epochs[-1].get('val_total'))}"
    if snap.state == "stopping":
        head += "\n\n**Stopping** after this step: saving a checkpoint and the model…"
    return head


def _preview_note(snap: JobSnapshot, files: list[Path]) -> str:
    """What the previews are and when the next ones come."""
    every = snap.preview_every
    if files:
        epoch = int(files[0].parent.name.removeprefix("epoch-") or 0)
        note = (
            f"Epoch {epoch}: one of your sounds (*original*) and the model's copy of it "
            "(*reconstruction*), and new sounds from random points (*latent*)."
        )
        if snap.active and every:
            note += f" The next previews come after epoch {epoch - epoch % every + every}."
        return note
    if not snap.active:
        return "While a model trains, short sounds it makes appear here every few epochs."
    when = f"after epoch {every}" if every else "after the first few epochs"
    now = f" (now at epoch {snap.position[0]})" if snap.position else ""
    again = f", then every {every} epochs" if every else ""
    return f"The first previews come {when}{now}{again}, and when the training ends."


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _preview_files(run: Path | None) -> list[Path]:
    """The WAVs of the newest preview epoch of `run`."""
    if run is None or not (run / "previews").is_dir():
        return []
    folders = sorted(p for p in (run / "previews").glob("epoch-*") if p.is_dir())
    return sorted(folders[-1].glob("*.wav"))[:MAX_PREVIEWS] if folders else []


def _preview_updates(files: list[Path]) -> list:
    """The files in the players, labelled with their epoch; the other players hidden."""
    updates = []
    for path in files:
        epoch = path.parent.name.removeprefix("epoch-").lstrip("0") or "0"
        updates.append(gr.Audio(value=str(path), label=f"epoch {epoch}: {path.stem}", visible=True))
    return updates + [gr.Audio(value=None, visible=False)] * (MAX_PREVIEWS - len(updates))


def _resumable_runs(home: Path) -> list[str]:
    """Run names (newest first) that have a checkpoint to continue from."""
    runs = home / "runs"
    if not runs.is_dir():
        return []
    found = [
        p
        for p in runs.iterdir()
        if (p / RUN_FILE).is_file() and (p / "checkpoints" / LAST).exists()
    ]
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]
