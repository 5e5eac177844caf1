"""Generate tab: a model's sliders (safe range and warning zone shown), duration, seed, variation,
mode (one-shot or texture), density, level, a recording to make variations of, presets, blend
and spatial settings, export options → a take (`LoadedModel.params` + `render_takes`) with its
player, waveform, spectrogram and download; a sample pack (`render_takes(count=N)`) as a grid of
players and one zip; and resynthesis of an uploaded file (`LoadedModel.resynth` +
`render.write_resynthesis`).

Every default shown here comes from generation.defaults (the CLI's and the API's too)."""

from __future__ import annotations

import dataclasses
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from distill.audio.read import AUDIO_EXTENSIONS, read_mono
from distill.audio.write import BIT_DEPTHS, FORMATS, SAMPLE_RATES, ExportOptions
from distill.controls.sliders import SLIDER_LIMIT
from distill.errors import UserError
from distill.generation.defaults import (
    DEFAULT_DENSITY,
    DEFAULT_LEVEL,
    DEFAULT_VARIATION,
    DENSITY_RANGE,
    LEVELS,
)
from distill.generation.generate import (
    MAX_BLEND,
    MAX_SECONDS,
    MIN_ONESHOT_SECONDS,
    MIN_SECONDS,
    BlendVoice,
)
from distill.generation.level import PEAK_DBFS
from distill.generation.render import (
    describe_sliders,
    iter_takes,
    render_takes,
    take_path,
    write_resynthesis,
)
from distill.generation.spatial import MODES as SPATIAL_MODES
from distill.generation.spatial import SpatialOptions
from distill.home import safe_name
from distill.library.presets import Presets
from distill.ui.common import UIContext, fmt, model_choices, shown_errors
from distill.ui.plots import spectrogram_image, waveform_image
from distill.ui.uploads import keep_upload, upload_problem

MAX_SLIDERS = 8  # the latent analysis keeps at most 8 axes (controls.analysis)
SEED_RANGE = 2**31  # the dice draws below this: exact in a browser's numbers (< 2**53)
SLIDER_STEP = 0.1
SPATIAL, EXPORT = SpatialOptions(), ExportOptions()  # their defaults are the form's
MODEL_MODE = "model"  # the Mode radio's "the model's own" (GenerationParams.mode None)
MODE_CHOICES = [("model default", MODEL_MODE), ("one-shot", "oneshot"), ("texture", "texture")]
MODE_WORDS = {"oneshot": "one-shot", "texture": "texture"}
PACK_RANGE = (2, 32)  # takes in one pack
DEFAULT_PACK = 8
LEVEL_INFO = (
    f"auto: one-shots peak at {PEAK_DBFS:g} dBFS, textures at your training sounds' loudness · "
    f"peak: {PEAK_DBFS:g} dBFS peak · loudness: the training sounds' loudness · raw: as the "
    "model made it"
)


@dataclass
class GenerateTab:
    model: gr.Dropdown
    blend_models: list[gr.Dropdown]
    refresh: object  # fn(current) → updates of [model, *blend_models]


def build(ctx: UIContext) -> GenerateTab:
    with gr.Row():
        # Custom values: a script may name a model the page has not listed; resolving it decides.
        model = gr.Dropdown(
            label="Model", choices=[], scale=4, allow_custom_value=True, elem_id="gen-model"
        )
        controls_info = gr.Markdown(elem_id="gen-controls")
    sliders = [
        gr.Slider(
            -SLIDER_LIMIT,
            SLIDER_LIMIT,
            value=0.0,
            step=SLIDER_STEP,
            label=f"slider {i + 1}",
            visible=False,
            elem_id=f"gen-slider-{i}",
        )
        for i in range(MAX_SLIDERS)
    ]
    warning = gr.Markdown(elem_id="gen-warning")
    with gr.Row():
        randomize = gr.Button("Randomize (inside the safe ranges)", elem_id="gen-randomize")
        reset = gr.Button("Reset all to 0", elem_id="gen-reset")
    with gr.Row():
        # No minimum/maximum here: GenerationParams.validate says what the range is.
        duration = gr.Number(
            None,
            label="Duration (s)",
            info="0 or empty = the model's typical length (a one-shot: its natural decay); "
            f"{MIN_SECONDS:g} to {MAX_SECONDS:g} (one-shots from {MIN_ONESHOT_SECONDS:g})",
            elem_id="gen-duration",
        )
        seed = gr.Number(
            lambda: secrets.randbelow(SEED_RANGE), label="Seed", precision=0, elem_id="gen-seed"
        )
        dice = gr.Button("Dice: new seed", elem_id="gen-dice", scale=0, min_width=120)
        variation = gr.Slider(
            0.0,
            1.0,
            value=DEFAULT_VARIATION,
            step=0.05,
            label="Variation",
            info="0 = close to one of your sounds, 1 = new blends between distant ones",
            elem_id="gen-variation",
        )
    with gr.Row():
        take_mode = gr.Radio(
            MODE_CHOICES,
            value=MODEL_MODE,
            label="Mode",
            info="choose a model to see which it makes",
            elem_id="gen-mode",
        )
        density = gr.Slider(
            DENSITY_RANGE[0],
            DENSITY_RANGE[1],
            value=DEFAULT_DENSITY,
            step=0.1,
            label="Density",
            info="textures only: events per second × this (1 = as in your sounds)",
            elem_id="gen-density",
        )
        level = gr.Dropdown(
            list(LEVELS), value=DEFAULT_LEVEL, label="Level", info=LEVEL_INFO, elem_id="gen-level"
        )
    with gr.Accordion("Like this recording (optional): variations of one sound", open=False):
        like = gr.Audio(
            label="Like this recording",
            type="filepath",
            sources=["upload"],
            format=None,  # the file as it was uploaded: it is checked, copied and read as it is
            elem_id="gen-like",
        )

    with gr.Accordion("Presets", open=False):
        with gr.Row():
            preset = gr.Dropdown(
                label="Saved presets",
                choices=[],
                scale=3,
                allow_custom_value=True,
                elem_id="gen-preset",
            )
            load_preset = gr.Button("Recall", scale=1)
            delete_preset = gr.Button("Delete", scale=1, variant="stop")
        with gr.Row():
            preset_name = gr.Textbox(label="Save the current settings as", scale=3)
            overwrite = gr.Checkbox(label="replace a preset of that name", scale=1)
            save_preset = gr.Button("Save preset", scale=1, elem_id="gen-save-preset")

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
                    )
                )
                blend_weights.append(gr.Slider(1, 99, value=30, step=1, label="Weight (%)"))

    with gr.Accordion("Spatial", open=False):
        with gr.Row():
            mode = gr.Radio(
                list(SPATIAL_MODES), value=SPATIAL.mode, label="Spatial mode", elem_id="gen-spatial"
            )
            width = gr.Slider(0.0, 1.0, value=SPATIAL.width, step=0.05, label="Stereo width")
        with gr.Row():
            azimuth = gr.Slider(
                -180, 180, value=SPATIAL.azimuth, step=5, label="Binaural azimuth (°, + right)"
            )
            elevation = gr.Slider(
                -90, 90, value=SPATIAL.elevation, step=5, label="Binaural elevation (°, + up)"
            )
            orbit = gr.Number(SPATIAL.orbit or 0, label="Orbit (s per turn, 0 = fixed)")

    with gr.Accordion("Export", open=False), gr.Row():
        file_format = gr.Dropdown(list(FORMATS), value=EXPORT.format, label="Format")
        rate = gr.Dropdown(
            [str(r) for r in SAMPLE_RATES], value=str(EXPORT.sample_rate), label="Sample rate"
        )
        depth = gr.Dropdown(list(BIT_DEPTHS), value=EXPORT.bit_depth, label="Bit depth (WAV, FLAC)")
        normalize = gr.Checkbox(label="Normalize loudness")
        lufs = gr.Number(-14.0, label="Loudness (LUFS)")

    with gr.Row():
        generate = gr.Button("Generate", variant="primary", elem_id="gen-generate", scale=3)
        pack_count = gr.Number(
            DEFAULT_PACK,
            label="Takes in a pack",
            precision=0,
            minimum=PACK_RANGE[0],
            maximum=PACK_RANGE[1],
            info=f"{PACK_RANGE[0]} to {PACK_RANGE[1]}; seeds from the one above, one by one",
            elem_id="gen-pack-count",
            scale=1,
        )
        generate_pack = gr.Button("Generate a pack", elem_id="gen-pack", scale=1)
    with gr.Row():
        audio = gr.Audio(label="Take", type="filepath", interactive=False, elem_id="gen-audio")
        download = gr.File(label="Download", interactive=False, elem_id="gen-file")
    result_info = gr.Markdown(elem_id="gen-info")
    with gr.Row():
        wave = gr.Image(
            label="Waveform", type="pil", format="png", interactive=False, elem_id="gen-wave"
        )
        spectrogram = gr.Image(
            label="Spectrogram (log frequency)",
            type="pil",
            format="png",
            interactive=False,
            elem_id="gen-spec",
        )

    pack_info = gr.Markdown(elem_id="gen-pack-info")
    pack_zip = gr.File(
        label="The whole pack (zip)", interactive=False, visible=False, elem_id="gen-pack-zip"
    )
    with gr.Row(elem_id="gen-pack-takes"):
        pack_players = [
            gr.Audio(
                type="filepath",
                interactive=False,
                visible=False,
                min_width=260,
                elem_id=f"gen-pack-take-{i}",
            )
            for i in range(PACK_RANGE[1])
        ]

    with gr.Accordion("Resynthesize a file through this model", open=False):
        source = gr.File(
            label="Audio file", file_types=sorted(AUDIO_EXTENSIONS), elem_id="gen-resynth-file"
        )
        resynth = gr.Button("Resynthesize with the sliders above", elem_id="gen-resynth")

    # -- handlers ---------------------------------------------------------------------------
    def controls_of(ref):
        return ctx.model(ref).controls if ref else None

    @shown_errors
    def on_model(ref):
        controls = controls_of(ref)
        n = len(controls) if controls else 0
        updates = []
        for i in range(MAX_SLIDERS):
            if i < n:
                lo, hi = controls.safe_range(i)
                updates.append(
                    gr.Slider(
                        value=0.0,
                        label=f"{controls.labels[i]} (safe {lo:+.1f}…{hi:+.1f})",
                        info="beyond the safe range is the warning zone: sounds the model "
                        "never heard",
                        visible=True,
                    )
                )
            else:
                updates.append(gr.Slider(value=0.0, visible=False))
        if not ref:
            info = "No model yet: train one in the **Train** tab."
        elif n:
            info = f"{n} slider{'s' if n > 1 else ''}, −10…+10; 0 is the training sounds' average."
        else:
            info = "This model has no sliders (its latent analysis is missing)."
        mode_info = "choose a model to see which it makes"
        if ref:
            what, mode_info = _describe_corpus(ctx.model(ref))
            info += "  \n" + what
        return [*updates, info, "", _preset_choices(ctx, ref), gr.Radio(info=mode_info)]

    def warn(ref, *values):
        try:
            controls = controls_of(ref)
        except UserError:
            return ""
        if controls is None:
            return ""
        notes = []
        for i, value in enumerate(values[: len(controls)]):
            lo, hi = controls.safe_range(i)
            if not lo - 1e-9 <= value <= hi + 1e-9:
                notes.append(
                    f"**⚠ {controls.labels[i]} at {value:+.1f}** is outside its safe range "
                    f"({lo:+.1f}…{hi:+.1f}): the model never heard this; expect artefacts."
                )
        return "\n\n".join(notes)

    @shown_errors
    def randomize_sliders(ref):
        controls = controls_of(ref)
        n = len(controls) if controls else 0
        values = []
        for i in range(MAX_SLIDERS):
            if i < n:
                lo, hi = controls.safe_range(i)
                values.append(round(lo + (hi - lo) * secrets.randbelow(10_001) / 10_000, 1))
            else:
                values.append(0.0)
        return values

    def prepare(ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest):
        """(loaded model, GenerationParams, ExportOptions) from the form's values."""
        form = _Form.parse(rest)
        loaded = ctx.model(ref)
        options = form.export()
        like_path = None
        if like_upload:
            like_path = keep_upload(like_upload, ctx.uploads_dir / "like", ctx.max_upload_bytes)
        params = loaded.params(
            float(seconds) if seconds else None,  # a browser sends an empty field as 0
            seed=int(seed_value or 0),
            sliders=form.slider_values(loaded),
            variation=float(DEFAULT_VARIATION if wander is None else wander),
            spatial=form.spatial(),
            blend=form.blend(),
            mode=None if chosen_mode in (None, "", MODEL_MODE) else str(chosen_mode),
            density=float(DEFAULT_DENSITY if dens is None else dens),
            level=str(lvl or DEFAULT_LEVEL),
            like=like_path,
        )
        return loaded, params, options

    @shown_errors
    def render(
        ref,
        seconds=None,
        seed_value=0,
        wander=None,
        chosen_mode=None,
        dens=None,
        lvl=None,
        like_upload=None,
        *rest,
    ):  # defaults of None: optional in the page's API (gradio_client), like the empty fields
        loaded, params, options = prepare(
            ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest
        )
        (take,) = render_takes(loaded, params, options, ctx.takes_dir, home=ctx.home, history=True)
        e = take.export
        settings = ", ".join(
            f"{k} {v:+.1f}" for k, v in describe_sliders(loaded, params.sliders).items()
        )
        info = (
            f"`{e.path.name}` — {MODE_WORDS.get(take.mode, take.mode)}, "
            f"{e.frames / e.sample_rate:.2f} s, seed {params.seed}, "
            f"{e.sample_rate} Hz {e.channels} ch, {_levels(e, options)}"
            + (f"; {settings}" if settings else "")
            + f"  \nsaved in `{e.path.parent}` with its settings (`{e.path.stem}.json`)"
        )
        exported = take.audio * 10 ** (e.gain_db / 20)  # the level of the file written
        picture = waveform_image(exported)
        spec = spectrogram_image(exported, loaded.sample_rate)
        return str(e.path), str(e.path), info, picture, spec

    @shown_errors
    def render_pack(
        ref,
        count,
        seconds=None,
        seed_value=0,
        wander=None,
        chosen_mode=None,
        dens=None,
        lvl=None,
        like_upload=None,
        *rest,
        progress=gr.Progress(),  # noqa: B008  (gradio's way of asking for a progress bar)
    ):
        lo, hi = PACK_RANGE
        if count is None or not lo <= int(count) <= hi:
            raise UserError(f"a pack holds {lo} to {hi} takes: type a number in that range")
        n = int(count)
        loaded, params, options = prepare(
            ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest
        )
        base = safe_name(loaded.name, fallback="take")
        folder = _fresh_folder(ctx.takes_dir / "packs", f"{base}-{params.seed}")
        takes = []
        progress((0, n), desc="rendering the pack", unit="takes")
        for take in iter_takes(loaded, params, options, folder, count=n, stem=base, home=ctx.home):
            takes.append(take)
            progress((len(takes), n), desc="rendering the pack", unit="takes")
        sidecar = folder / f"{base}-pack.json"
        archive = write_pack_zip(folder / f"{base}-pack.zip", [t.path for t in takes], sidecar)
        modes = sorted({MODE_WORDS.get(t.mode, t.mode) for t in takes})
        info = (
            f"**{n} takes** ({', '.join(modes)}; seeds {params.seed}…{params.seed + n - 1}) "
            f"in `{folder}`; the zip holds them and `{sidecar.name}` (every take's settings)."
        )
        players = [gr.Audio(value=str(t.path), label=t.path.name, visible=True) for t in takes] + [
            gr.Audio(value=None, visible=False)
        ] * (PACK_RANGE[1] - n)
        return [info, gr.File(value=str(archive), visible=True), *players]

    @shown_errors
    def resynthesize(ref, upload, *rest):
        form = _Form.parse(rest)
        if not upload:
            raise UserError("choose an audio file to resynthesize first")
        path = Path(upload)
        _check_upload(path, ctx.max_upload_bytes)
        loaded = ctx.model(ref)
        values = form.slider_values(loaded)
        audio = read_mono(path, loaded.sample_rate)
        if len(audio) == 0:
            raise UserError(f"{path.name} holds no audio")
        out = loaded.resynth(audio, rate=loaded.sample_rate, sliders=values)
        options = form.export()
        stem = f"{safe_name(path.stem, fallback='input')}-through-{safe_name(loaded.name)}"
        target = take_path(ctx.ui_dir / "resynth", stem, options.suffix)
        e = write_resynthesis(
            loaded, out, loaded.sample_rate, values, options, target, source=path.name
        )
        info = f"`{e.path.name}` — {path.name} through {loaded.name}, {_levels(e, options)}"
        exported = out * 10 ** (e.gain_db / 20)
        return (
            str(e.path),
            str(e.path),
            info,
            waveform_image(exported),
            spectrogram_image(exported, loaded.sample_rate),
        )

    @shown_errors
    def save(ref, name, replace, wander, *rest):
        form = _Form.parse(rest)
        loaded = ctx.model(ref)
        labels = describe_sliders(loaded, form.slider_values(loaded))
        saved = Presets(ctx.home).save(
            ref,
            name or "",
            sliders=labels,
            variation=float(wander),
            spatial=form.spatial().to_dict(),
            overwrite=bool(replace),
        )
        gr.Info(f"Saved preset {saved.name!r} for {saved.model_name}.")
        return _preset_choices(ctx, ref, selected=saved.name)

    @shown_errors
    def recall(ref, name):
        if not name:
            raise UserError("pick a saved preset first")
        store = Presets(ctx.home)
        found = store.get(ref, name)
        values, stale = store.apply(found, controls_of(ref))
        for label in stale:
            gr.Warning(f"preset {found.name!r} sets {label!r}, which this model no longer has")
        slider_values = [values.get(i, 0.0) for i in range(MAX_SLIDERS)]
        wander = found.variation if found.variation is not None else gr.skip()
        spatial_fields = [gr.skip()] * 5
        if found.spatial:
            s = SpatialOptions.from_dict(found.spatial)
            spatial_fields = [s.mode, s.width, s.azimuth, s.elevation, s.orbit or 0]
        return [*slider_values, wander, *spatial_fields]

    @shown_errors
    def delete(ref, name):
        if not name:
            raise UserError("pick a saved preset first")
        gone = Presets(ctx.home).delete(ref, name)
        gr.Info(f"Deleted preset {gone.name!r}.")
        return _preset_choices(ctx, ref)

    def refresh(current):
        choices = model_choices(ctx.home)
        ids = [value for _, value in choices]
        value = current if current in ids else (ids[0] if ids else None)
        blend = gr.Dropdown(choices=[("(none)", ""), *choices])
        return [gr.Dropdown(choices=choices, value=value), *[blend] * MAX_BLEND]

    # -- wiring -----------------------------------------------------------------------------
    form = [mode, width, azimuth, elevation, orbit, file_format, rate, depth, normalize, lufs]
    form += [*blend_models, *blend_weights, *sliders]
    model.change(
        on_model,
        [model],
        [*sliders, controls_info, warning, preset, take_mode],
        api_name="choose_model",
    )
    gr.on(
        [s.change for s in sliders],
        warn,
        [model, *sliders],
        warning,
        show_progress="hidden",
        api_name=False,
    )
    randomize.click(randomize_sliders, [model], sliders, api_name="randomize")
    reset.click(lambda: [0.0] * MAX_SLIDERS, None, sliders, api_name="reset")
    dice.click(lambda: secrets.randbelow(SEED_RANGE), None, seed, api_name="dice")
    outputs = [audio, download, result_info, wave, spectrogram]
    take_inputs = [duration, seed, variation, take_mode, density, level, like, *form]
    generate.click(render, [model, *take_inputs], outputs, api_name="generate")
    generate_pack.click(
        render_pack,
        [model, pack_count, *take_inputs],
        [pack_info, pack_zip, *pack_players],
        api_name="generate_pack",
    )
    resynth.click(resynthesize, [model, source, *form], outputs, api_name="resynthesize")
    save_preset.click(
        save, [model, preset_name, overwrite, variation, *form], preset, api_name="save_preset"
    )
    load_preset.click(
        recall,
        [model, preset],
        [*sliders, variation, mode, width, azimuth, elevation, orbit],
        api_name="recall_preset",
    )
    delete_preset.click(delete, [model, preset], preset, api_name="delete_preset")
    return GenerateTab(model=model, blend_models=blend_models, refresh=refresh)


@dataclass
class _Form:
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
    def parse(cls, values) -> _Form:
        """From the handler's values: the single fields, then the blend models, their weights
        and the sliders."""
        singles = len(dataclasses.fields(cls)) - 3
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


def _levels(e, options: ExportOptions) -> str:
    """Peak and loudness of an export, and why a loudness target was not reached."""
    text = f"peak {fmt(e.peak_dbfs, 3)} dBFS"
    if e.loudness_lufs is not None:
        text += f", {e.loudness_lufs:.1f} LUFS"
    if options.lufs is not None and e.peak_limited:
        text += f" (the {options.peak_dbfs:g} dBFS peak ceiling kept it under {options.lufs:g})"
    return text


def _describe_corpus(loaded) -> tuple[str, str]:
    """(a line for the page, the Mode radio's info): what this model makes by default."""
    if not loaded.metadata.corpus:
        return (
            "This model file was made before models remembered their training sounds: it "
            "makes textures from the sliders' average.",
            "model default = texture for this model (no corpus memory)",
        )
    try:
        corpus = loaded.corpus
        facts = corpus.summary()
    except UserError as err:
        return f"⚠ {err}", "model default: unknown (see above)"
    word = MODE_WORDS.get(facts["mode"], facts["mode"])
    files = facts["files"]
    if facts["mode"] == "oneshot":
        what = (
            f"It makes **one-shots** by default: {facts['oneshot_share']:.0%} of its {files} "
            f"training files are single hits, typically {facts['event_seconds']:.2g} s long."
        )
    else:
        what = (
            f"It makes **textures** by default: its {files} training files are typically "
            f"{facts['typical_seconds']:.1f} s long, {facts['onset_rate']:.2g} events per second."
        )
    return what, f"model default = {word} for this model"


def _fresh_folder(parent: Path, base: str) -> Path:
    """A new, empty `parent/base` (`-2`, `-3` … if taken): one pack per folder."""
    candidate, n = parent / base, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{base}-{n}"
    candidate.mkdir(parents=True)
    return candidate


def write_pack_zip(path: Path, takes: list[Path], sidecar: Path) -> Path:
    """One zip of a pack: its takes and its pack JSON, flat, under their (safe) file names."""
    from distill.atomic import atomic_write

    members = [*takes, sidecar]

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            for member in members:
                archive.write(member, arcname=safe_name(member.name, fallback="take"))

    atomic_write(path, write)
    return path


def _preset_choices(ctx: UIContext, ref, selected: str | None = None):
    names = [p.name for p in Presets(ctx.home).list(ref)] if ref else []
    return gr.Dropdown(choices=names, value=selected if selected in names else None)


def _check_upload(path: Path, max_bytes: int) -> None:
    why = upload_problem(path, path.name, max_bytes)
    if why:
        raise UserError(f"{path.name}: {why}")
