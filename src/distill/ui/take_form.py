"""The Generate tab's form: the settings a take, a pack, a resynthesis and a preset share (blend,
spatial and export fields, then the sliders), and the check that runs before anything is
rendered.

The check (a gradio validator) names each problem beside the field that has it, and the page
keeps the last take: nothing is rendered until the form is right. Each field is checked on its
own against the defaults, so a message lands on the field it is about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from distill.audio.formats import BIT_DEPTHS, FORMATS, SAMPLE_RATES
from distill.audio.write import ExportOptions
from distill.errors import UserError
from distill.generation.generate import MAX_BLEND, BlendVoice, GenerationParams
from distill.generation.spatial import MODES as SPATIAL_MODES
from distill.generation.spatial import SpatialOptions

# The form's fields, in the order the handlers receive them after their own inputs.
SINGLE_FIELDS = (
    "mode",
    "width",
    "azimuth",
    "elevation",
    "orbit",
    "file_format",
    "rate",
    "depth",
    "normalize",
    "lufs",
)
SPATIAL, EXPORT = SpatialOptions(), ExportOptions()  # their defaults are the form's
# Which form field a message of ExportOptions.validate / SpatialOptions.validate is about.
_EXPORT_WORDS = (("LUFS", "lufs"), ("bit depth", "depth"), ("Hz", "rate"), ("sample rate", "rate"))
_SPATIAL_WORDS = (("width", "width"), ("azimuth", "azimuth"), ("elevation", "elevation"))
# "Bit depth (WAV, FLAC)": the formats that store a chosen depth (the others' codec decides)
_DEPTH_LABEL = f"Bit depth ({', '.join(n.upper() for n, f in FORMATS.items() if f.bit_depths)})"
_SPATIAL_WORDS += (("orbit", "orbit"),)


@dataclass
class FormFields:
    """The form's components, as build_form laid them out."""

    inputs: list  # every TakeForm input, in order: single fields, blend, weights, sliders
    spatial: list  # mode, width, azimuth, elevation, orbit (what a preset sets)
    blend_models: list[gr.Dropdown]  # their choices follow the library


def build_form(sliders: list[gr.Slider]) -> FormFields:
    """The blend, spatial and export sections; the spatial fields shown are the mode's own
    (width for stereo; direction, height and circling for binaural)."""
    with gr.Accordion("Blend with other models", open=False):
        gr.Markdown(
            f"Mix up to {MAX_BLEND} other models in; each takes its weight in percent and the "
            "model above keeps the rest (weights together under 100 %)."
        )
        blend_models, blend_weights = [], []
        for i in range(MAX_BLEND):
            with gr.Row():
                blend_models.append(
                    gr.Dropdown(
                        label=f"Blend model {i + 1}",
                        choices=[("(none)", "")],
                        value="",
                        allow_custom_value=True,
                        elem_id=f"gen-blend-{i}",
                    )
                )
                blend_weights.append(gr.Slider(1, 99, value=30, step=1, label="Weight (%)"))

    with gr.Accordion("Spatial", open=False):
        mode = gr.Radio(
            list(SPATIAL_MODES),
            value=SPATIAL.mode,
            label="Spatial mode",
            info="mono · stereo: a wider image · binaural: placed around your head (headphones)",
            elem_id="gen-spatial",
        )
        width = gr.Slider(
            0.0,
            1.0,
            value=SPATIAL.width,
            step=0.05,
            label="Stereo width",
            visible=SPATIAL.mode == "stereo",
            elem_id="gen-width",
        )
        with gr.Row(visible=SPATIAL.mode == "binaural", elem_id="gen-binaural") as binaural:
            azimuth = gr.Slider(
                -180, 180, value=SPATIAL.azimuth, step=5, label="Direction (°, + to the right)"
            )
            elevation = gr.Slider(
                -90, 90, value=SPATIAL.elevation, step=5, label="Height (°, + above)"
            )
            orbit = gr.Number(
                SPATIAL.orbit or 0, label="Circling (seconds per turn, 0 = stays in place)"
            )

    with gr.Accordion("Export", open=False), gr.Row():
        file_format = gr.Dropdown(list(FORMATS), value=EXPORT.format, label="Format")
        rate = gr.Dropdown(
            [str(r) for r in SAMPLE_RATES], value=str(EXPORT.sample_rate), label="Sample rate"
        )
        depth = gr.Dropdown(list(BIT_DEPTHS), value=EXPORT.bit_depth, label=_DEPTH_LABEL)
        normalize = gr.Checkbox(label="Normalize loudness")
        lufs = gr.Number(-14.0, label="Loudness (LUFS)", elem_id="gen-lufs")

    def shown_for(chosen):
        return gr.Slider(visible=chosen == "stereo"), gr.Row(visible=chosen == "binaural")

    mode.change(shown_for, [mode], [width, binaural], api_name=False)
    singles = [mode, width, azimuth, elevation, orbit, file_format, rate, depth, normalize, lufs]
    return FormFields(
        inputs=[*singles, *blend_models, *blend_weights, *sliders],
        spatial=[mode, width, azimuth, elevation, orbit],
        blend_models=blend_models,
    )


@dataclass
class TakeForm:
    """The settings that generate, resynthesize and save-preset share, in `form` order."""

    mode: str
    width: float
    azimuth: float
    elevation: float
    orbit: float | None
    file_format: str
    rate: str
    depth: str
    normalize: bool
    lufs: float | None
    blend_models: list[str]
    blend_weights: list[float]
    sliders: list[float]

    @classmethod
    def parse(cls, values) -> TakeForm:
        """From the handler's values: the single fields, then the blend models, their weights
        and the sliders."""
        singles = len(SINGLE_FIELDS)
        head, rest = list(values[:singles]), list(values[singles:])
        models, rest = rest[:MAX_BLEND], rest[MAX_BLEND:]
        weights, sliders = rest[:MAX_BLEND], rest[MAX_BLEND:]
        return cls(*head, blend_models=models, blend_weights=weights, sliders=sliders)

    def slider_values(self, loaded) -> dict[int, float]:
        """{0-based: value} for each of the model's sliders (hidden ones are not its own)."""
        count = len(loaded.controls) if loaded.controls else 0
        return {i: float(v) for i, v in enumerate(self.sliders[:count])}

    def spatial(self) -> SpatialOptions:
        options = SpatialOptions(
            mode=self.mode or "mono",
            width=float(self.width),
            azimuth=float(self.azimuth),
            elevation=float(self.elevation),
            orbit=float(self.orbit) if self.orbit else None,
        )
        options.validate()
        return options

    def blend(self) -> tuple[BlendVoice, ...]:
        return tuple(
            BlendVoice(model=ref, weight=float(weight))
            for ref, weight in zip(self.blend_models, self.blend_weights, strict=True)
            if ref
        )

    def export(self) -> ExportOptions:
        if self.normalize and self.lufs is None:
            raise UserError("type a loudness target in LUFS (e.g. -14) or untick Normalize")
        options = ExportOptions(
            format=self.file_format,
            sample_rate=int(self.rate),
            bit_depth=self.depth,
            lufs=float(self.lufs) if self.normalize else None,
        )
        options.validate()
        return options


class Problems:
    """What is wrong with a form, by field name: `check(field, fn)` runs fn and keeps its
    UserError's message for that field (the first one per field)."""

    def __init__(self) -> None:
        self.by_field: dict[str, str] = {}

    def check(self, name: str, fn: Callable[[], object]) -> bool:
        try:
            fn()
        except UserError as err:
            self.by_field.setdefault(name, str(err))
            return False
        return True

    def validations(self, names: list[str]) -> list[dict]:
        """One gr.validate per input of the event, in its input order."""
        return [
            gr.validate(name not in self.by_field, self.by_field.get(name, "")) for name in names
        ]


def check_form(problems: Problems, form: TakeForm, model_of: Callable[[str], object]) -> None:
    """Spatial, export and blend settings; `model_of` resolves a blend model's name."""
    try:
        form.spatial()
    except UserError as err:
        problems.by_field.setdefault(_field_of(str(err), _SPATIAL_WORDS, "mode"), str(err))
    try:
        form.export()
    except UserError as err:
        problems.by_field.setdefault(_field_of(str(err), _EXPORT_WORDS, "file_format"), str(err))
    for i, ref in enumerate(form.blend_models):
        if ref:
            problems.check(f"blend_model_{i}", lambda ref=ref: model_of(ref))
    used = [i for i, ref in enumerate(form.blend_models) if ref]
    if used:
        blend = dataclasses.replace(GenerationParams(), blend=form.blend())
        problems.check(f"blend_weight_{used[0]}", blend.validate)


def check_take(
    problems: Problems,
    *,
    seconds,
    seed,
    variation,
    mode: str | None,
    density,
    level,
) -> None:
    """The take's own settings, each against the defaults (duration with its mode)."""
    base = GenerationParams()

    def valid(**changes) -> Callable[[], None]:
        return lambda: dataclasses.replace(base, **changes).validate()

    duration = float(seconds) if seconds else None  # empty or 0: the model's typical length
    problems.check("mode_of_take", valid(mode=mode))
    problems.check("duration", valid(duration=duration, mode=mode))
    problems.check("seed", valid(seed=int(seed or 0)))
    if variation is not None:
        problems.check("variation", valid(variation=float(variation)))
    if density is not None:
        problems.check("density", valid(density=float(density)))
    if level:
        problems.check("level", valid(level=str(level)))


def form_names(sliders: int) -> list[str]:
    """The names of the form's inputs, in `form` order (for Problems.validations)."""
    blend = [f"blend_model_{i}" for i in range(MAX_BLEND)]
    weights = [f"blend_weight_{i}" for i in range(MAX_BLEND)]
    return [*SINGLE_FIELDS, *blend, *weights, *(f"slider_{i}" for i in range(sliders))]


def _field_of(message: str, words: tuple[tuple[str, str], ...], default: str) -> str:
    for word, name in words:
        if word in message:
            return name
    return default
