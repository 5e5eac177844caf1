"""`distill generate MODEL`: new audio files from a model, with sliders, seeds and export options.

torch and the model code are imported inside the command so `distill --help` stays fast.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import (
    DepthOption,
    DeviceOption,
    FormatOption,
    HomeOption,
    JsonOption,
    LufsOption,
    RateOption,
    SliderOption,
    echo_json,
    export_options,
    finite,
    say,
    shared,
)
from distill.errors import UserError
from distill.generation.defaults import DEFAULT_DENSITY, DEFAULT_LEVEL, DEFAULT_VARIATION

MAX_COUNT = 1000


def generate_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="Model: its library name, id (prefix) or a .distill file.")
    ],
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            "-d",
            help="Seconds per take, 0.5 to 600 (a one-shot's maximum, down to 0.05). Default: "
            "a one-shot's natural length, a texture the model's typical length.",
        ),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", help="Takes to render, with seeds SEED, SEED+1, …")
    ] = 1,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the first take (default: a random one).")
    ] = None,
    slider: SliderOption = None,
    preset: Annotated[
        str | None,
        typer.Option(help="A saved preset of MODEL's sliders (--slider values override it)."),
    ] = None,
    variation: Annotated[
        float | None,
        typer.Option(
            help="How far a take may move from your recordings: 0 = close to one of your "
            f"sounds, 1 = new blends between distant ones; default {DEFAULT_VARIATION:g}."
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="oneshot (one event per take, attack first, natural decay) or texture (any "
            "length, events at the corpus's rate). Default: the model's own, from its corpus."
        ),
    ] = None,
    density: Annotated[
        float,
        typer.Option(help="Texture: events per second × this (1 = your recordings' rate)."),
    ] = DEFAULT_DENSITY,
    like: Annotated[
        Path | None,
        typer.Option(help='A recording to make variations of ("ten new kicks like this kick").'),
    ] = None,
    level: Annotated[
        str,
        typer.Option(
            help="auto (one-shots at −1 dBFS peak, textures at your recordings' loudness), "
            "peak, loudness or raw (as the model rendered it)."
        ),
    ] = DEFAULT_LEVEL,
    blend: Annotated[
        list[str] | None,
        typer.Option(
            help="MODEL:PERCENT[:SLIDERS] mixes another model in (SLIDERS: name=v,name=v or "
            "@preset); up to 3; MODEL gets the remaining share."
        ),
    ] = None,
    spatial: Annotated[str | None, typer.Option(help="mono (default), stereo or binaural.")] = None,
    width: Annotated[float | None, typer.Option(help="Stereo width, 0…1 (default 0.7).")] = None,
    azimuth: Annotated[
        float | None, typer.Option(help="Binaural: degrees, −180…180, + = right.")
    ] = None,
    elevation: Annotated[
        float | None, typer.Option(help="Binaural: degrees, −90…90, + = up.")
    ] = None,
    orbit: Annotated[
        float | None, typer.Option(help="Binaural: seconds per turn around the head.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the files (created if missing).")
    ] = Path("."),
    format: FormatOption = "wav",
    sample_rate: RateOption = 48_000,
    bit_depth: DepthOption = "24",
    lufs: LufsOption = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not keep these takes in the history.")
    ] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
    device: DeviceOption = None,
) -> None:
    """Render new audio from MODEL: one file per take, each with a sidecar .json to redo it."""
    home, device = shared(ctx, home, device)
    if not 1 <= count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {count}")
    options = export_options(format, sample_rate, bit_depth, lufs)
    blend_specs = [_parse_blend(text) for text in blend or []]

    from distill.generation.generate import BlendVoice
    from distill.generation.loaded import load
    from distill.generation.spatial import SpatialOptions

    loaded = load(model, home=home, device=device)
    sliders, preset_variation, preset_spatial = _preset_settings(loaded, preset, home)
    sliders |= loaded.slider_values(slider or [])
    spatial_options = _spatial(
        preset_spatial, spatial, width=width, azimuth=azimuth, elevation=elevation, orbit=orbit
    )
    voices, blend_models = [], []
    for ref, weight, voice_sliders in blend_specs:
        other = load(ref, home=home, device=str(loaded.device))
        blend_models.append(other)
        if voice_sliders.startswith("@"):
            values, _, _ = _preset_settings(other, voice_sliders[1:], home)
        else:
            values = other.slider_values([v for v in voice_sliders.split(",") if v])
        voices.append(BlendVoice(str(other.model_id or other.path), weight, values))
    params = loaded.params(
        duration,
        seed=secrets.randbelow(2**31) if seed is None else seed,
        sliders={k: v for k, v in sliders.items()},
        variation=variation if variation is not None else preset_variation,
        spatial=spatial_options or SpatialOptions(),
        blend=tuple(voices),
        mode=mode,
        density=density,
        level=level,
        like=like,
    )
    from distill.generation.render import iter_takes

    takes = []
    for take in iter_takes(
        loaded,
        params,
        options,
        out,
        count=count,
        home=home,
        history=not no_history,
        blend_models=blend_models,
    ):
        takes.append(take)
        if not json_output:
            e = take.export
            loudness = f", {e.loudness_lufs:.1f} LUFS" if e.loudness_lufs is not None else ""
            seconds = e.frames / e.sample_rate
            say(
                f"{e.path}  ({seconds:.2f} s, seed {take.params.seed}, "
                f"peak {e.peak_dbfs:.1f} dBFS{loudness})"
            )
    if json_output:
        echo_json(_report(loaded, takes))


def _parse_blend(text: str) -> tuple[str, float, str]:
    parts = text.split(":", 2)
    try:
        ref, weight = parts[0].strip(), float(parts[1])
    except (IndexError, ValueError):
        raise UserError(
            f"--blend {text!r}: write MODEL:PERCENT, e.g. --blend rain:30 (or rain:30:warmth=2)"
        ) from None
    if not ref:
        raise UserError(f"--blend {text!r}: the model name is missing")
    if not weight > 0:
        raise UserError(f"--blend {text!r}: the weight must be more than 0 %")
    return ref, weight, parts[2].strip() if len(parts) > 2 else ""


def _preset_settings(loaded, preset: str | None, home) -> tuple[dict[int, float], float, dict]:
    """A preset's sliders (0-based), variation and spatial settings; stale labels reported."""
    if not preset:
        return {}, DEFAULT_VARIATION, {}
    from distill.library.presets import Presets

    store = Presets(home)
    found = store.get(loaded.model_id or str(loaded.path), preset)
    controls = loaded.controls
    if controls is None:
        raise UserError(f"model {loaded.name!r} has no sliders, so preset {preset!r} cannot apply")
    values, stale = store.apply(found, controls)
    for label in stale:
        say(
            f"warning: preset {preset!r} sets {label!r}, which {loaded.name} no longer has — "
            "ignored",
            err=True,
        )
    variation = found.variation if found.variation is not None else DEFAULT_VARIATION
    return values, variation, dict(found.spatial or {})


def _spatial(base: dict, mode: str | None, **given):
    """Spatial options: a preset's, overridden by the flags given. Without a mode anywhere,
    --azimuth/--elevation/--orbit mean binaural and --width means stereo."""
    from distill.generation.spatial import SpatialOptions

    flags = {k: v for k, v in given.items() if v is not None}
    settings = dict(base) | flags
    if mode is not None:
        settings["mode"] = mode
    elif "mode" not in settings and flags:
        binaural = {"azimuth", "elevation", "orbit"} & set(flags)
        settings["mode"] = "binaural" if binaural else "stereo"
    if not settings:
        return None
    options = SpatialOptions.from_dict(settings)
    options.validate()
    return options


def _report(loaded, takes) -> dict:
    from distill.generation.render import describe_sliders

    return {
        "model": {"name": loaded.name, "id": loaded.model_id, "file": str(loaded.path)},
        "takes": [
            {
                "path": str(t.export.path),
                "sidecar": str(t.export.sidecar_path) if t.export.sidecar_path else None,
                "seed": t.params.seed,
                "duration": t.export.frames / t.export.sample_rate,
                "mode": t.mode,
                "variation": t.params.variation,
                "sliders": describe_sliders(loaded, t.params.sliders),
                "spatial": t.params.spatial.to_dict(),
                "blend": [v.to_dict() for v in t.params.blend],
                "format": t.export.format,
                "sample_rate": t.export.sample_rate,
                "bit_depth": t.export.bit_depth,
                "peak_dbfs": finite(t.export.peak_dbfs),
                "loudness_lufs": t.export.loudness_lufs,
            }
            for t in takes
        ],
    }
