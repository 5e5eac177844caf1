"""`distill generate MODEL`: new audio files from a model, with sliders, seeds and export options.

torch and the model code are imported inside the command so `distill --help` stays fast.
"""

from __future__ import annotations

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
    from distill.generation.request import BlendSpec, Request, prepare

    request = Request(
        model=model,
        duration=duration,
        seed=seed,
        sliders=slider or [],
        preset=preset,
        variation=variation,
        mode=mode,
        density=density,
        level=level,
        like=like,
        blend=tuple(BlendSpec.parse(text) for text in blend or []),
        spatial={
            "mode": spatial,
            "width": width,
            "azimuth": azimuth,
            "elevation": elevation,
            "orbit": orbit,
        },
    )
    prepared = prepare(
        request, home=home, device=device, warn=lambda line: typer.echo(line, err=True)
    )
    loaded, params, blend_models = prepared.loaded, prepared.params, prepared.blend_models
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
