"""The Generate tab's presets: save the sliders, variation and spatial settings under a name,
recall them, delete one (after a confirmation, as models and takes are) —
`distill.generation.presets.save_preset` and `distill.library.presets.Presets`, as
`distill preset …` uses them."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from distill.errors import UserError
from distill.generation.presets import save_preset as save_checked_preset
from distill.generation.render import describe_sliders
from distill.generation.spatial import SpatialOptions
from distill.library.presets import Presets
from distill.ui.common import UIContext, shown_errors
from distill.ui.take_form import TakeForm


@dataclass
class PresetsPanel:
    dropdown: gr.Dropdown  # the model's presets: on_model refills it (see choices)


@dataclass
class Targets:
    """The Generate tab's fields a preset reads and sets."""

    model: gr.Dropdown
    sliders: list[gr.Slider]
    variation: gr.Slider
    spatial: list  # mode, width, azimuth, elevation, orbit
    form: list  # the TakeForm inputs


def build(ctx: UIContext, to: Targets) -> PresetsPanel:
    with gr.Accordion("Presets", open=False):
        with gr.Row():
            preset = gr.Dropdown(
                label="Saved presets",
                choices=[],
                scale=3,
                allow_custom_value=True,
                elem_id="gen-preset",
            )
            load_preset = gr.Button("Recall", scale=1, elem_id="gen-recall-preset")
            delete_preset = gr.Button(
                "Delete…", scale=1, variant="stop", elem_id="gen-delete-preset"
            )
        with gr.Row(visible=False, elem_id="gen-preset-confirm") as confirm_row:
            confirm_text = gr.Markdown()
            confirm = gr.Button("Yes, delete it", variant="stop", elem_id="gen-confirm-preset")
            keep = gr.Button("Cancel", elem_id="gen-keep-preset")
        with gr.Row():
            preset_name = gr.Textbox(
                label="Save the current settings as", scale=3, elem_id="gen-preset-name"
            )
            overwrite = gr.Checkbox(label="replace a preset of that name", scale=1)
            save_preset = gr.Button("Save preset", scale=1, elem_id="gen-save-preset")

    @shown_errors
    def save(ref, name, replace, wander, *rest):
        form = TakeForm.parse(rest)
        loaded = ctx.model(ref)
        labels = describe_sliders(loaded, form.slider_values(loaded))
        saved = save_checked_preset(
            ctx.home,
            ref,
            name or "",
            sliders=labels,
            variation=float(wander),
            spatial=form.spatial().to_dict(),
            overwrite=bool(replace),
        )
        gr.Info(f"Saved preset {saved.name!r} for {saved.model_name}.")
        return choices(ctx, ref, selected=saved.name)

    @shown_errors
    def recall(ref, name):
        if not name:
            raise UserError("pick a saved preset first")
        store = Presets(ctx.home)
        found = store.get(ref, name)
        controls = ctx.model(ref).controls if ref else None
        values, stale = store.apply(found, controls.labels if controls else [])
        for label in stale:
            gr.Warning(f"preset {found.name!r} sets {label!r}, which this model no longer has")
        slider_values = [values.get(i, 0.0) for i in range(len(to.sliders))]
        wander = found.variation if found.variation is not None else gr.skip()
        spatial_fields = [gr.skip()] * 5
        if found.spatial:
            s = SpatialOptions.from_dict(found.spatial)
            spatial_fields = [s.mode, s.width, s.azimuth, s.elevation, s.orbit or 0]
        return [*slider_values, wander, *spatial_fields]

    @shown_errors
    def ask(ref, name):
        if not name:
            raise UserError("pick a saved preset first")
        found = Presets(ctx.home).get(ref, name)
        text = f"**Delete preset {found.name}** of {found.model_name}? This cannot be undone."
        return gr.Row(visible=True), text

    @shown_errors
    def delete(ref, name):
        gone = Presets(ctx.home).delete(ref, name)
        gr.Info(f"Deleted preset {gone.name!r}.")
        return gr.Row(visible=False), choices(ctx, ref)

    save_preset.click(
        save,
        [to.model, preset_name, overwrite, to.variation, *to.form],
        preset,
        api_name="save_preset",
    )
    load_preset.click(
        recall,
        [to.model, preset],
        [*to.sliders, to.variation, *to.spatial],
        api_name="recall_preset",
    )
    delete_preset.click(ask, [to.model, preset], [confirm_row, confirm_text], api_name=False)
    keep.click(lambda: gr.Row(visible=False), None, confirm_row, api_name=False)
    confirm.click(delete, [to.model, preset], [confirm_row, preset], api_name="delete_preset")
    return PresetsPanel(dropdown=preset)


def choices(ctx: UIContext, ref, selected: str | None = None) -> gr.Dropdown:
    """The model's presets for the dropdown (`selected` chosen if it is one of them)."""
    names = [p.name for p in Presets(ctx.home).list(ref)] if ref else []
    return gr.Dropdown(choices=names, value=selected if selected in names else None)
