"""`distill preset ...`: save, list, show, rename and delete named slider settings of a model.

A thin layer over `distill.library.presets.Presets` (saving through
`distill.generation.presets.save_preset`, which checks the settings), imported inside the commands
so `distill --help` stays fast. `distill generate MODEL --preset NAME` uses a saved preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import HomeOption, JsonOption, SliderOption, cell, echo_json, say
from distill.errors import UserError

app = typer.Typer(help="Named slider settings of a model.", no_args_is_help=True)

Model = Annotated[str, typer.Argument(help="Library model: its name or id (prefix).")]
Name = Annotated[str, typer.Argument(help="The preset's name (any text, one line).")]


@app.callback()
def preset() -> None:
    """Named slider settings of a model: save them once, generate with --preset NAME."""


def _presets(ctx: typer.Context, home: Path | None):
    from distill.library.presets import Presets

    return Presets(home or (ctx.obj or {}).get("home"))  # the sub-command's --home wins


@app.command()
def save(
    ctx: typer.Context,
    model: Model,
    name: Name,
    slider: SliderOption = None,
    variation: Annotated[
        float | None, typer.Option(help="How far the sound wanders, 0 (still) to 1 (restless).")
    ] = None,
    spatial: Annotated[str | None, typer.Option(help="mono, stereo or binaural.")] = None,
    width: Annotated[float | None, typer.Option(help="Stereo width, 0…1.")] = None,
    azimuth: Annotated[float | None, typer.Option(help="Binaural: degrees, −180…180.")] = None,
    elevation: Annotated[float | None, typer.Option(help="Binaural: degrees, −90…90.")] = None,
    orbit: Annotated[
        float | None, typer.Option(help="Binaural: seconds per turn around the head.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a preset of that name.")] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Save slider settings (and optionally variation and spatial settings) as a preset."""
    sliders = dict(_split(text) for text in slider or [])
    space = _spatial(spatial, width=width, azimuth=azimuth, elevation=elevation, orbit=orbit)
    if not sliders and variation is None and not space:
        raise UserError("nothing to save: give --slider LABEL=VALUE, --variation or --spatial")
    from distill.generation.presets import save_preset

    saved = save_preset(
        _presets(ctx, home).home,
        model,
        name,
        sliders=sliders,
        variation=variation,
        spatial=space,
        overwrite=force,
    )
    if json_output:
        echo_json(saved.to_dict())
    else:
        say(f"saved preset {saved.name} of {saved.model_name}: {_summary(saved)}")


@app.command("list")
def list_presets(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model's presets.")] = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """List presets, by model and name."""
    presets = _presets(ctx, home).list(model)
    if json_output:
        echo_json({"presets": [p.to_dict() for p in presets]})
        return
    if not presets:
        say("no presets yet: save one with distill preset save MODEL NAME --slider L=V")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(pad_edge=False)
    for title in ("Model", "Preset", "Settings", "Updated"):
        table.add_column(title, overflow="fold")
    for p in presets:
        table.add_row(cell(p.model_name), cell(p.name), cell(_summary(p)), p.updated[:10])
    Console(highlight=False).print(table)


@app.command()
def show(
    ctx: typer.Context,
    model: Model,
    name: Name,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Show one preset's settings."""
    found = _presets(ctx, home).get(model, name)
    if json_output:
        echo_json(found.to_dict())
        return
    rows = [
        ("preset", found.name),
        ("model", f"{found.model_name} (id {found.model_id})"),
        ("sliders", ", ".join(f"{k}={v:g}" for k, v in found.sliders.items()) or "-"),
        ("variation", "-" if found.variation is None else f"{found.variation:g}"),
        ("spatial", _spatial_text(found.spatial) or "-"),
        ("created", found.created),
        ("updated", found.updated),
    ]
    for label, value in rows:
        say(f"{label + ':':<11}{value}")


@app.command()
def rename(
    ctx: typer.Context,
    model: Model,
    name: Name,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Rename a preset."""
    renamed = _presets(ctx, home).rename(model, name, new_name)
    if json_output:
        echo_json(renamed.to_dict())
    else:
        say(f"renamed preset {name} of {renamed.model_name} to {renamed.name}")


@app.command()
def delete(
    ctx: typer.Context,
    model: Model,
    name: Name,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Delete a preset."""
    deleted = _presets(ctx, home).delete(model, name)
    if json_output:
        echo_json({"deleted": deleted.to_dict()})
    else:
        say(f"deleted preset {deleted.name} of {deleted.model_name}")


def _split(text: str) -> tuple[str, str]:
    """ "LABEL=VALUE" → (label, value text); the library checks both."""
    label, sep, value = text.partition("=")
    if not sep or not label.strip():
        raise UserError(f"--slider {text!r} is not LABEL=VALUE: write e.g. --slider brightness=4")
    return label.strip(), value.strip()


def _spatial(mode: str | None, **given: float | None) -> dict | None:
    """The spatial settings given; without --spatial, --width means stereo and
    --azimuth/--elevation/--orbit binaural (as `distill generate` reads them)."""
    settings: dict = {k: v for k, v in given.items() if v is not None}
    if mode is not None:
        settings["mode"] = mode.lower()
    elif settings:
        binaural = {"azimuth", "elevation", "orbit"} & set(settings)
        settings["mode"] = "binaural" if binaural else "stereo"
    return settings or None


def _spatial_text(spatial: dict | None) -> str:
    if not spatial:
        return ""
    rest = ", ".join(f"{k} {v:g}" for k, v in spatial.items() if k != "mode")
    return f"{spatial.get('mode', '')}" + (f" ({rest})" if rest else "")


def _summary(p) -> str:
    parts = [f"{k}={v:g}" for k, v in p.sliders.items()]
    if p.variation is not None:
        parts.append(f"variation {p.variation:g}")
    if p.spatial:
        parts.append(_spatial_text(p.spatial))
    return ", ".join(parts) or "-"
