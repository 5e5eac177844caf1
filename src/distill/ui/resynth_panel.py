"""The Generate tab's resynthesis: an uploaded recording through the chosen model, with the
sliders above as offsets (`LoadedModel.resynth` + `render.write_resynthesis`). Its result has
its own player, download and line here, in its section, not in the Take player far above."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from distill.audio.read import AUDIO_EXTENSIONS, read_mono
from distill.errors import UserError
from distill.generation.render import take_path, write_resynthesis
from distill.home import safe_name
from distill.ui.common import UIContext, shown_errors
from distill.ui.take_form import Problems, TakeForm, check_form, form_names
from distill.ui.uploads import upload_problem


@dataclass
class ResynthPanel:
    button: gr.Button  # enabled once a model is chosen


def build(ctx: UIContext, model: gr.Dropdown, form: list, levels) -> ResynthPanel:
    """`form`: the TakeForm inputs; `levels(export, options)`: the peak/loudness words."""
    with gr.Accordion("Resynthesize a file through this model", open=False):
        gr.Markdown(
            "Your own recording, played through the model: it keeps the recording's timing and "
            "takes on the model's sound; the sliders above push it further."
        )
        source = gr.File(
            label="Audio file", file_types=sorted(AUDIO_EXTENSIONS), elem_id="gen-resynth-file"
        )
        button = gr.Button(
            "Resynthesize with the sliders above", interactive=False, elem_id="gen-resynth"
        )
        status = gr.Markdown(elem_id="gen-resynth-status")
        with gr.Row():
            audio = gr.Audio(
                label="Resynthesized",
                type="filepath",
                interactive=False,
                elem_id="gen-resynth-audio",
            )
            download = gr.File(label="Download", interactive=False, elem_id="gen-resynth-download")

    def check(ref, upload, *rest):
        problems = Problems()
        problems.check("model", lambda: ctx.model(ref))
        if not upload:
            problems.by_field["source"] = "choose an audio file to resynthesize first"
        else:
            path = Path(upload)
            why = upload_problem(path, path.name, ctx.max_upload_bytes)
            if why:
                problems.by_field["source"] = f"{path.name}: {why}"
        check_form(problems, TakeForm.parse(rest), ctx.model)
        sliders = len(rest) - len(form_names(0))
        return problems.validations(["model", "source", *form_names(sliders)])

    @shown_errors
    def resynthesize(ref, upload, *rest):
        form_values = TakeForm.parse(rest)
        if not upload:
            raise UserError("choose an audio file to resynthesize first")
        path = Path(upload)
        why = upload_problem(path, path.name, ctx.max_upload_bytes)
        if why:
            raise UserError(f"{path.name}: {why}")
        loaded = ctx.model(ref)
        values = form_values.slider_values(loaded)
        samples = read_mono(path, loaded.sample_rate)
        if len(samples) == 0:
            raise UserError(f"{path.name} holds no audio")
        out = loaded.resynth(samples, rate=loaded.sample_rate, sliders=values)
        options = form_values.export()
        stem = f"{safe_name(path.stem, fallback='input')}-through-{safe_name(loaded.name)}"
        target = take_path(ctx.ui_dir / "resynth", stem, options.suffix)
        e = write_resynthesis(
            loaded, out, loaded.sample_rate, values, options, target, source=path.name
        )
        info = f"`{e.path.name}` — {path.name} through {loaded.name}, {levels(e, options)}"
        return str(e.path), str(e.path), info

    button.click(
        resynthesize,
        [model, source, *form],
        [audio, download, status],
        validator=check,
        show_progress_on=[status],
        api_name="resynthesize",
    )
    return ResynthPanel(button=button)
