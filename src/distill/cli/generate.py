"""`distill generate MODEL`: new audio files from a model, with sliders, seeds and export options.

torch and the model code are imported inside the command so `distill --help` stays fast.
"""

from __future__ import annotations

import json
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
    export_options,
    finite,
    shared,
)
from distill.errors import UserError

MAX_COUNT = 1000


def generate_command(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="Model: its library name, id (prefix) or a .distill file.")
    ],
    duration: Annotated[
        float, typer.Option("--duration", "-d", help="Seconds per take, 0.5 to 600.")
    ] = 10.0,
    count: Annotated[
        int, typer.Option("--count", "-n", help="Takes to render, with seeds SEED, SEED+1, …")
    ] = 1,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the first take (default: a random one).")
    ] = None,
    slider: SliderOption = None,
    variation: Annotated[
        float,
        typer.Option(help="How far and fast the sound wanders, 0 (still) to 1 (restless)."),
    ] = 0.5,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the files (created if missing).")
    ] = Path("."),
    format: FormatOption = "wav",
    sample_rate: RateOption = 48_000,
    bit_depth: DepthOption = "24",
    lufs: LufsOption = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
    device: DeviceOption = None,
) -> None:
    """Render new audio from MODEL: one file per take, each with a sidecar .json to redo it."""
    home, device = shared(ctx, home, device)
    if not 1 <= count <= MAX_COUNT:
        raise UserError(f"--count must be between 1 and {MAX_COUNT}, got {count}")
    options = export_options(format, sample_rate, bit_depth, lufs)

    from distill.generation.loaded import load

    loaded = load(model, home=home, device=device)
    params = loaded.params(
        duration,
        seed=secrets.randbelow(2**31) if seed is None else seed,
        sliders=slider or [],
        variation=variation,
    )
    takes = list(_each_take(loaded, params, options, out, count, json_output))
    if json_output:
        typer.echo(json.dumps(_report(loaded, takes), indent=2))


def _each_take(loaded, params, options, out: Path, count: int, quiet: bool):
    from dataclasses import replace

    from distill.generation.render import render_takes

    for i in range(count):
        (take,) = render_takes(loaded, replace(params, seed=params.seed + i), options, out)
        if not quiet:
            e = take.export
            loudness = f", {e.loudness_lufs:.1f} LUFS" if e.loudness_lufs is not None else ""
            typer.echo(
                f"{e.path}  ({take.params.duration:g} s, seed {take.params.seed}, "
                f"peak {e.peak_dbfs:.1f} dBFS{loudness})"
            )
        yield take


def _report(loaded, takes) -> dict:
    from distill.generation.render import describe_sliders

    return {
        "model": {"name": loaded.name, "id": loaded.model_id, "file": str(loaded.path)},
        "takes": [
            {
                "path": str(t.export.path),
                "sidecar": str(t.export.sidecar_path) if t.export.sidecar_path else None,
                "seed": t.params.seed,
                "duration": t.params.duration,
                "variation": t.params.variation,
                "sliders": describe_sliders(loaded, t.params.sliders),
                "format": t.export.format,
                "sample_rate": t.export.sample_rate,
                "bit_depth": t.export.bit_depth,
                "peak_dbfs": finite(t.export.peak_dbfs),
                "loudness_lufs": t.export.loudness_lufs,
            }
            for t in takes
        ],
    }
