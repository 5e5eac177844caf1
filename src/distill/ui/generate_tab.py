"""Generate tab: a model's sliders (safe range and warning zone shown), duration, seed, variation,
mode (one-shot or texture), density, level, a recording to make variations of, presets, blend
and spatial settings, export options → a take (`LoadedModel.params` + `render_takes`) with its
player, waveform, spectrogram and download; a sample pack (`render_takes(count=N)`) as a grid of
players and one zip; every take made on this page as one zip; and resynthesis of an uploaded
file (resynth_panel).

The form is checked before anything is rendered (take_form): a problem is shown beside its
field and the last take stays. Every default shown here comes from generation.defaults (the
CLI's and the API's too)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import gradio as gr

from distill.audio.write import LOUDNESS_BLOCK_S, ExportOptions
from distill.controls.sliders import SLIDER_LIMIT
from distill.errors import UserError
from distill.generation.defaults import (
    DEFAULT_DENSITY,
    DEFAULT_LEVEL,
    DEFAULT_VARIATION,
    DENSITY_RANGE,
    LEVELS,
)
from distill.generation.generate import MAX_BLEND, MAX_SECONDS, MIN_ONESHOT_SECONDS, MIN_SECONDS
from distill.generation.level import PEAK_DBFS
from distill.generation.render import describe_sliders, iter_takes, render_takes
from distill.generation.request import BlendSpec, Request
from distill.generation.request import prepare as prepare_request
from distill.home import safe_name
from distill.ui import presets_panel, resynth_panel
from distill.ui.common import UIContext, fmt, model_choices, shown_errors
from distill.ui.plots import spectrogram_image, waveform_image
from distill.ui.take_form import (
    Problems,
    TakeForm,
    build_form,
    check_form,
    check_take,
    form_names,
)
from distill.ui.uploads import fresh_folder, keep_upload, upload_problem
from distill.ui.zips import Member, take_members, write_zip

MAX_SLIDERS = 8  # the latent analysis keeps at most 8 axes (controls.analysis)
SEED_RANGE = 2**31  # the dice draws below this: exact in a browser's numbers (< 2**53)
SLIDER_STEP = 0.1
MODEL_MODE = "model"  # the Mode radio's "the model's own" (GenerationParams.mode None)
MODE_CHOICES = [("model default", MODEL_MODE), ("one-shot", "oneshot"), ("texture", "texture")]
MODE_WORDS = {"oneshot": "one-shot", "texture": "texture"}
PACK_RANGE = (2, 32)  # takes in one pack
DEFAULT_PACK = 8
TAKES_KEPT = 1000  # the newest takes of a page that its zip can hold
LEVEL_INFO = (
    f"auto: one-shots peak at {PEAK_DBFS:g} dBFS, textures at your training sounds' loudness · "
    f"peak: {PEAK_DBFS:g} dBFS peak · loudness: the training sounds' loudness · raw: as the "
    "model made it"
)


NO_MODEL = "No model yet: train one in the **Train** tab (or import one in the **Library**)."
SLIDERS_INFO = "{n} slider{s}, −10…+10; 0 (the middle) is your training sounds' average."


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
        controls_info = gr.Markdown(NO_MODEL, elem_id="gen-controls")
    sliders = [
        gr.Slider(
            -SLIDER_LIMIT,
            SLIDER_LIMIT,
            value=0.0,
            step=SLIDER_STEP,
            label=f"slider {i + 1}",
            visible=False,
            elem_id=f"gen-slider-{i}",
            elem_classes=["centred"],  # filled from the middle (0) to the value: app.CSS
        )
        for i in range(MAX_SLIDERS)
    ]
    warning = gr.Markdown(elem_id="gen-warning")
    with gr.Row():
        randomize = gr.Button("Randomize (inside the safe ranges)", elem_id="gen-randomize")
        reset = gr.Button("Reset all to 0", elem_id="gen-reset")
    with gr.Row():
        # No minimum/maximum here: the check before rendering says what the range is.
        duration = gr.Number(
            None,
            label="Duration (s)",
            info="0 = the model's typical length (a one-shot: its natural decay); "
            f"{MIN_SECONDS:g} to {MAX_SECONDS:g} (one-shots from {MIN_ONESHOT_SECONDS:g})",
            elem_id="gen-duration",
        )
        seed = gr.Number(
            lambda: secrets.randbelow(SEED_RANGE),
            label="Seed",
            info="the same seed and settings give the same take",
            precision=0,
            elem_id="gen-seed",
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
            info="textures only: how many sounds per second, × this (1 = as in your sounds)",
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

    presets_slot = gr.Column()  # the presets panel goes here once the form exists (below)

    fields = build_form(sliders)  # blend, spatial and export: take_form
    form = fields.inputs

    with gr.Row():
        generate = gr.Button(
            "Generate", variant="primary", interactive=False, elem_id="gen-generate", scale=3
        )
        # No minimum/maximum: gradio would refuse the value before the check below names it.
        pack_count = gr.Number(
            DEFAULT_PACK,
            label="Takes in a pack",
            precision=0,
            info=f"{PACK_RANGE[0]} to {PACK_RANGE[1]}; seeds from the one above, one by one",
            elem_id="gen-pack-count",
            scale=1,
        )
        generate_pack = gr.Button("Generate a pack", interactive=False, elem_id="gen-pack", scale=1)
    # Progress and unexpected errors show here, not over the last take (which stays).
    status = gr.Markdown(elem_id="gen-status")
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

    made = gr.State([])  # the takes this page made (paths, newest last), for the zip below
    with gr.Row():
        zip_made = gr.Button(
            "Download every take made on this page (zip)", interactive=False, elem_id="gen-zip"
        )
        made_zip = gr.File(
            label="This page's takes", interactive=False, visible=False, elem_id="gen-zip-file"
        )

    with presets_slot:
        presets = presets_panel.build(
            ctx,
            presets_panel.Targets(
                model=model,
                sliders=sliders,
                variation=variation,
                spatial=fields.spatial,
                form=form,
            ),
        )
    resynth = resynth_panel.build(ctx, model, form, _levels)

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
            info = NO_MODEL
        elif n:
            info = SLIDERS_INFO.format(n=n, s="s" if n > 1 else "")
        else:
            info = "This model has no sliders (its analysis is missing)."
        mode_info = "choose a model to see which it makes"
        if ref:
            what, mode_info = _describe_corpus(ctx.model(ref))
            info += "  \n" + what
        usable = gr.Button(interactive=bool(ref))
        return [
            *updates,
            info,
            "",
            presets_panel.choices(ctx, ref),
            gr.Radio(info=mode_info),
            *[usable] * 3,
        ]

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

    take_names = [
        "model",
        "duration",
        "seed",
        "variation",
        "mode_of_take",
        "density",
        "level",
        "like",
        *form_names(MAX_SLIDERS),
    ]

    def problems_of(ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest):
        """Each field's problem, checked without rendering anything."""
        problems = Problems()
        problems.check("model", lambda: ctx.model(ref))
        check_take(
            problems,
            seconds=seconds,
            seed=seed_value,
            variation=wander,
            mode=_mode_of(chosen_mode),
            density=dens,
            level=lvl,
        )
        if like_upload:
            path = Path(like_upload)
            why = upload_problem(path, path.name, ctx.max_upload_bytes)
            if why:
                problems.by_field["like"] = f"{path.name}: {why}"
        check_form(problems, TakeForm.parse(rest), ctx.model)
        return problems

    def check_one(_made, ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like, *rest):
        found = problems_of(ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like, rest)
        return found.validations(["made", *take_names])

    def check_pack(
        _made, ref, count, seconds, seed_value, wander, chosen_mode, dens, lvl, like, *rest
    ):
        found = problems_of(ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like, rest)
        lo, hi = PACK_RANGE
        if count is None or not lo <= int(count) <= hi:
            found.by_field["pack_count"] = f"a pack holds {lo} to {hi} takes"
        return found.validations(["made", take_names[0], "pack_count", *take_names[1:]])

    def prepare(ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest):
        """(Prepared: model, GenerationParams, blend models; ExportOptions) from the form's
        values, through the request builder the CLI uses too (generation.request)."""
        form_values = TakeForm.parse(rest)
        loaded = ctx.model(ref)
        options = form_values.export()
        like_path = None
        if like_upload:
            like_path = keep_upload(like_upload, ctx.uploads_dir / "like", ctx.max_upload_bytes)
        spatial = form_values.spatial()
        request = Request(
            model=ref,
            duration=float(seconds) if seconds else None,  # a browser sends an empty field as 0
            seed=int(seed_value or 0),
            sliders={str(i + 1): v for i, v in form_values.slider_values(loaded).items()},
            variation=float(DEFAULT_VARIATION if wander is None else wander),
            mode=_mode_of(chosen_mode),
            density=float(DEFAULT_DENSITY if dens is None else dens),
            level=str(lvl or DEFAULT_LEVEL),
            like=like_path,
            blend=tuple(BlendSpec(v.model, v.weight) for v in form_values.blend()),
            spatial=spatial.to_dict(),
        )
        prepared = prepare_request(request, home=ctx.home, device=ctx.device, loaded=loaded)
        return prepared, options

    @shown_errors
    def render(
        made_here,
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
        prepared, options = prepare(
            ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest
        )
        loaded, params = prepared.loaded, prepared.params
        (take,) = render_takes(
            loaded,
            params,
            options,
            ctx.takes_dir,
            home=ctx.home,
            history=True,
            blend_models=prepared.blend_models,
        )
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
        made_here = [*made_here, str(e.path)][-TAKES_KEPT:]
        return str(e.path), str(e.path), info, picture, spec, "", made_here

    @shown_errors
    def render_pack(
        made_here,
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
    ):
        lo, hi = PACK_RANGE
        if count is None or not lo <= int(count) <= hi:
            raise UserError(f"a pack holds {lo} to {hi} takes: type a number in that range")
        n = int(count)
        prepared, options = prepare(
            ref, seconds, seed_value, wander, chosen_mode, dens, lvl, like_upload, rest
        )
        loaded, params = prepared.loaded, prepared.params
        base = safe_name(loaded.name, fallback="take")
        folder = fresh_folder(ctx.takes_dir / "packs", f"{base}-{params.seed}")
        takes = list(
            iter_takes(
                loaded,
                params,
                options,
                folder,
                count=n,
                stem=base,
                home=ctx.home,
                blend_models=prepared.blend_models,
            )
        )
        made_here = [*made_here, *(str(t.path) for t in takes)][-TAKES_KEPT:]
        sidecar = folder / f"{base}-pack.json"
        members = [Member(t.path.name, path=t.path) for t in takes]
        archive = write_zip(folder / f"{base}-pack.zip", [*members, Member(sidecar.name, sidecar)])
        modes = sorted({MODE_WORDS.get(t.mode, t.mode) for t in takes})
        info = (
            f"**{n} takes** ({', '.join(modes)}; seeds {params.seed}…{params.seed + n - 1}) "
            f"in `{folder}`; the zip holds them and `{sidecar.name}` (every take's settings)."
        )
        players = [gr.Audio(value=str(t.path), label=t.path.name, visible=True) for t in takes] + [
            gr.Audio(value=None, visible=False)
        ] * (PACK_RANGE[1] - n)
        return [info, gr.File(value=str(archive), visible=True), *players, "", made_here]

    @shown_errors
    def zip_takes(made_here):
        takes = [Path(p) for p in made_here or [] if Path(p).is_file()]
        if not takes:
            raise UserError("no takes made on this page yet (or their files were removed)")
        members = [m for take in takes for m in take_members(take)]
        stamp = f"{datetime.now():%Y-%m-%d-%H%M%S}"
        path = write_zip(ctx.ui_dir / "zips" / f"takes-{stamp}.zip", members)
        gr.Info(f"{len(takes)} take(s) and their settings in {path.name}.")
        return gr.File(value=str(path), visible=True)

    def refresh(current):
        choices = model_choices(ctx.home)
        ids = [value for _, value in choices]
        value = current if current in ids else (ids[0] if ids else None)
        blend = gr.Dropdown(choices=[("(none)", ""), *choices])
        return [gr.Dropdown(choices=choices, value=value), *[blend] * MAX_BLEND]

    # -- wiring -----------------------------------------------------------------------------
    model.change(
        on_model,
        [model],
        [
            *sliders,
            controls_info,
            warning,
            presets.dropdown,
            take_mode,
            generate,
            generate_pack,
            resynth.button,
        ],
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
    take_inputs = [duration, seed, variation, take_mode, density, level, like, *form]
    generate.click(
        render,
        [made, model, *take_inputs],
        [audio, download, result_info, wave, spectrogram, status, made],
        validator=check_one,
        show_progress_on=[status],
        api_name="generate",
    ).success(lambda: gr.Button(interactive=True), None, zip_made, api_name=False)
    generate_pack.click(
        render_pack,
        [made, model, pack_count, *take_inputs],
        [pack_info, pack_zip, *pack_players, status, made],
        validator=check_pack,
        show_progress_on=[status],
        api_name="generate_pack",
    ).success(lambda: gr.Button(interactive=True), None, zip_made, api_name=False)
    zip_made.click(zip_takes, [made], made_zip, api_name="zip_takes")
    return GenerateTab(model=model, blend_models=fields.blend_models, refresh=refresh)


def _mode_of(chosen) -> str | None:
    """The Mode radio's value as GenerationParams.mode (None: the model's own)."""
    return None if chosen in (None, "", MODEL_MODE) else str(chosen)


def _levels(e, options: ExportOptions) -> str:
    """Peak and loudness of an export, and why a loudness target was not reached."""
    text = f"peak {fmt(e.peak_dbfs, 3)} dBFS"
    if e.loudness_lufs is not None:
        text += f", {e.loudness_lufs:.1f} LUFS"
    elif options.lufs is not None and e.duration < LOUDNESS_BLOCK_S:
        # integrated loudness needs one 400 ms block: the writer levelled the take looped
        text += f", too short to measure: levelled as if looped to {options.lufs:g} LUFS"
    if options.lufs is not None and e.peak_limited:
        text += (
            f" (the {options.peak_dbfs:g} dBFS peak ceiling kept it under {options.lufs:g} LUFS)"
        )
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
