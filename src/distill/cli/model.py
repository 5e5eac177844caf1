"""`distill model ...`: list, inspect, rename, describe, delete, import and export library
models; show, rename and recompute their sliders; write their reports.

A thin layer over `distill.library.store.Library`; the library (and torch with it) is imported
inside the commands so `distill --help` stays fast. A model is named by its library name, an id
prefix (4+ characters) or, where it makes sense, the path of a `.distill` file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import HomeOption, JsonOption, cell, echo_json, say
from distill.errors import UserError

app = typer.Typer(help="The model library: list, inspect, rename, export.", no_args_is_help=True)

Ref = Annotated[str, typer.Argument(help="Library name, id (prefix) or .distill file.")]


@app.callback()
def model() -> None:
    """The model library: list, inspect, rename, export."""


def _library(ctx: typer.Context, home: Path | None):
    from distill.library.store import Library

    return Library(home or (ctx.obj or {}).get("home"))  # the sub-command's --home wins


@app.command("list")
def list_models(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option(help="Only models whose name, tag or description has this.")
    ] = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """List the models in the library, by name."""
    entries = _library(ctx, home).list(search)
    if json_output:
        echo_json({"models": [e.to_dict() for e in entries]})
        return
    if not entries:
        say("no model matches" if search else "the library is empty: train one with distill train")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(pad_edge=False)
    for title in ("Name", "Id", "Tags", "Dataset", "Epochs", "Sliders", "Added"):
        table.add_column(title, overflow="fold")
    for e in entries:
        table.add_row(
            cell(e.name),
            e.id[:8],
            cell(", ".join(e.tags)),
            cell(e.dataset or ""),
            "" if e.epochs is None else str(e.epochs),
            str(len(e.controls)),
            (e.created or "")[:10],
        )
    Console(highlight=False).print(table)


@app.command()
def info(
    ctx: typer.Context, ref: Ref, json_output: JsonOption = False, home: HomeOption = None
) -> None:
    """Everything the library knows about a model: names, training summary, sliders, file
    (read whole and checked first: a damaged or altered file is one line and exit code 2)."""
    entry = _library(ctx, home).verify(ref)
    if json_output:
        echo_json(entry.to_dict())
        return
    data = entry.to_dict()
    losses = ", ".join(f"{k} {_number(v)}" for k, v in data["final_losses"].items())
    rows = [
        ("name", entry.name),
        ("id", entry.id or "(a file outside the library)"),
        ("description", " ".join(entry.description.split()) or "-"),
        ("tags", ", ".join(entry.tags) or "-"),
        ("added", entry.created or "-"),
        ("trained", entry.trained or "-"),
        ("dataset", _dataset(entry)),
        ("epochs", entry.epochs_text()),
        ("final losses", losses or "-"),
        ("latent", f"{entry.latent_dim} dimensions"),
        ("sliders", ", ".join(entry.controls) or "none (no latent analysis)"),
        ("file", f"{entry.path} ({_size(entry.size)})"),
    ]
    for label, value in rows:
        say(f"{label + ':':<14}{value}")


@app.command()
def rename(
    ctx: typer.Context,
    ref: Ref,
    new_name: Annotated[str, typer.Argument(help="The new name (any text, one line).")],
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Rename a model (in the library and inside its file)."""
    library = _library(ctx, home)
    old = library.resolve(ref)
    entry = library.rename(old, new_name)
    _report(entry, json_output, f"renamed {old.name} to {entry.name} (id {entry.id})")


@app.command()
def describe(
    ctx: typer.Context,
    ref: Ref,
    description: Annotated[str | None, typer.Option(help="The new description.")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="A tag; repeat for several. Replaces all tags."),
    ] = None,
    no_tags: Annotated[bool, typer.Option("--no-tags", help="Remove every tag.")] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Set a model's description and/or tags (searchable with `model list --search`)."""
    if tag and no_tags:
        raise UserError("give --tag or --no-tags, not both")
    tags = [] if no_tags else tag
    if description is None and tags is None:
        raise UserError("nothing to change: give --description TEXT, --tag TAG or --no-tags")
    entry = _library(ctx, home).describe(ref, description=description, tags=tags)
    summary = f"tags: {', '.join(entry.tags) or '-'}; description: {entry.description or '-'}"
    _report(entry, json_output, f"{entry.name} (id {entry.id}) — {summary}")


@app.command()
def delete(
    ctx: typer.Context,
    ref: Ref,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Delete a model and its file from the library."""
    library = _library(ctx, home)
    entry = library.resolve(ref)
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"deleting {entry.name!r} cannot be undone: pass --yes to confirm")
        if not typer.confirm(f"delete model {entry.name} (id {entry.id}) and its file?"):
            say("nothing deleted")
            raise typer.Exit(1)
    deleted = library.delete(entry)
    if json_output:
        echo_json({"deleted": deleted.to_dict()})
    else:
        say(f"deleted {deleted.name} (id {deleted.id})")


@app.command()
def sliders(
    ctx: typer.Context, ref: Ref, json_output: JsonOption = False, home: HomeOption = None
) -> None:
    """A model's sliders: name, share of the variance, safe range, what each feature does."""
    from distill.controls.sliders import Controls
    from distill.model.file import read_metadata

    entry = _library(ctx, home).resolve(ref)
    data = read_metadata(entry.path).controls
    if not data:
        raise UserError(
            f"model {entry.name!r} has no sliders: run `distill model analyze {entry.name} "
            "DATA_DIR` with the folder it was trained on"
        )
    controls = Controls.from_dict(data)
    if json_output:
        echo_json(
            {
                "model": entry.name,
                "sliders": [
                    {
                        "number": i + 1,
                        "label": axis.label,
                        "variance": axis.variance,
                        "safe_range": list(controls.safe_range(i)),
                        "correlations": axis.correlations,
                    }
                    for i, axis in enumerate(controls.axes)
                ],
            }
        )
        return
    for line in controls.describe():
        say(line)


@app.command("rename-slider")
def rename_slider(
    ctx: typer.Context,
    ref: Ref,
    slider: Annotated[str, typer.Argument(help="The slider: its name or number.")],
    new_label: Annotated[str, typer.Argument(help="Its new name.")],
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Give a slider your own name (stored in the model file; the model's presets follow)."""
    from distill.controls.sliders import Controls
    from distill.library.presets import Presets
    from distill.model.file import read_metadata

    library = _library(ctx, home)
    entry = library.resolve(ref)
    data = read_metadata(entry.path).controls
    if not data:
        raise UserError(f"model {entry.name!r} has no sliders to rename")
    controls = Controls.from_dict(data)
    old = controls.axes[controls.index_of(slider)].label
    renamed = controls.rename(slider, new_label)
    entry = library.set_controls(entry, renamed.to_dict())
    new = renamed.axes[controls.index_of(slider)].label
    moved = Presets(library.home).relabel(entry, old, new)
    presets = f" ({moved} preset{'s' if moved != 1 else ''} updated)" if moved else ""
    _report(entry, json_output, f"{entry.name}: slider {old!r} is now {new!r}{presets}")


@app.command()
def analyze(
    ctx: typer.Context,
    ref: Ref,
    data_dir: Annotated[Path, typer.Argument(help="The folder of recordings it was trained on.")],
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Find a model's sliders again, and what it knows of each recording (the corpus memory
    generation samples from), from its training recordings; replaces the old ones."""
    from distill.controls.analysis import recompute_controls
    from distill.controls.corpus import recompute_corpus

    library = _library(ctx, home)
    entry = library.resolve(ref)
    if not data_dir.is_dir():
        raise UserError(f"folder not found: {data_dir}: pass the folder the model learned from")
    controls = recompute_controls(entry.path, data_dir, cache_dir=library.home / "cache")
    entry = library.set_controls(entry, controls.to_dict())
    corpus = recompute_corpus(entry.path, data_dir)
    entry = library.set_corpus(entry, corpus.to_dict(), corpus.tensors())
    if json_output:
        echo_json({"model": entry.name, "sliders": controls.labels, "corpus": corpus.summary()})
        return
    summary = corpus.summary()
    say(
        f"{entry.name}: {summary['files']} recordings remembered, generates "
        f"{summary['mode']} takes; {len(controls)} sliders"
    )
    for line in controls.describe():
        say(f"  {line}")


@app.command()
def report(
    ctx: typer.Context,
    ref: Ref,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for report.html (default: the run's report/ folder; for a model "
            "without its run, <home>/reports/<id>/)."
        ),
    ] = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """(Re)write a model's report: one HTML page with its loss curves, recordings next to the
    model's resynthesis of them, the held-out MR-STFT and its sliders."""
    from distill.report import report_folder, run_of, write_report

    library = _library(ctx, home)
    entry = library.resolve(ref)
    figures = write_report(
        entry.path,
        run=run_of(entry),
        out=out or report_folder(entry, library.home),
        name=entry.name,
        model_id=entry.id,
        device=(ctx.obj or {}).get("device") or "auto",
    )
    if json_output:
        echo_json(figures)
        return
    held_out = figures["heldout_mrstft"]
    if held_out is not None:
        count = sum(f["split"] == "validation" for f in figures["files"])
        say(f"{entry.name}: held-out MR-STFT {held_out:.2f} ({count} validation files)")
    if not figures["curves"]:
        say(f"{entry.name}: {figures['no_curves']}")
    say(f"report: {figures['report']}")


@app.command("import")
def import_model(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A .distill model file (it is copied).")],
    name: Annotated[
        str | None, typer.Option(help="Name in the library (default: the file's own).")
    ] = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Add a .distill file to the library (checked in full first)."""
    entry = _library(ctx, home).import_file(file, name=name)
    _report(entry, json_output, f"imported {file} as {entry.name} (id {entry.id})")


@app.command()
def export(
    ctx: typer.Context,
    ref: Ref,
    dest: Annotated[Path, typer.Argument(help="A file, or a folder to write NAME.distill in.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Copy a model out of the library as a .distill file."""
    library = _library(ctx, home)
    entry = library.resolve(ref)
    path = library.export(entry, dest, overwrite=force)
    if json_output:
        echo_json({"exported": str(path), "model": entry.to_dict()})
    else:
        say(f"exported {entry.name} to {path}")


def _report(entry, json_output: bool, line: str) -> None:
    if json_output:
        echo_json(entry.to_dict())
    else:
        say(line)


def _dataset(entry) -> str:
    if entry.dataset is None:
        return "-"
    parts = [f"{entry.files} files" if entry.files is not None else None]
    if entry.duration_s is not None:
        parts.append(f"{entry.duration_s:.1f} s of audio")
    details = ", ".join(p for p in parts if p)
    return f"{entry.dataset} ({details})" if details else entry.dataset


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _size(size: int | None) -> str:
    if size is None:
        return "missing"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
