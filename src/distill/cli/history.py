"""`distill history ...`: list, show, delete, compare A/B and replay kept takes.

A thin layer over `distill.library.history.History`, imported inside the commands so
`distill --help` stays fast. `distill generate` records each take unless given --no-history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import HomeOption, JsonOption, cell, echo_json, say

app = typer.Typer(help="Every take generated: list, compare A/B, replay.", no_args_is_help=True)

EntryId = Annotated[str, typer.Argument(help="A take's history id (4+ characters of it).")]


@app.callback()
def history() -> None:
    """Every take generated: its audio, waveform and parameters; compare two, replay one."""


def _history(ctx: typer.Context, home: Path | None):
    from distill.library.history import History

    return History(home or (ctx.obj or {}).get("home"))  # the sub-command's --home wins


@app.command("list")
def list_history(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only takes of this model.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """List the takes kept in the history, newest first."""
    entries = _history(ctx, home).list(model, limit=max(limit, 0))
    if json_output:
        echo_json({"history": [e.to_dict() for e in entries]})
        return
    if not entries:
        say("the history is empty: takes are kept as distill generate writes them")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(pad_edge=False)
    for title in ("Id", "Created", "Model", "Seed", "Length", "Sliders", "Written as"):
        table.add_column(title, overflow="fold")
    for e in entries:
        table.add_row(
            e.id[:8],
            e.created[:16].replace("T", " "),
            cell(e.model_name),
            "" if e.seed is None else str(e.seed),
            "" if e.duration is None else f"{e.duration:g} s",
            cell(_sliders(e.sidecar)),
            cell(Path(e.source).name if e.source else e.audio.name),
        )
    Console(highlight=False).print(table)


@app.command()
def show(
    ctx: typer.Context, entry_id: EntryId, json_output: JsonOption = False, home: HomeOption = None
) -> None:
    """Everything kept about one take: files and parameters."""
    entry = _history(ctx, home).get(entry_id)
    if json_output:
        echo_json(entry.to_dict())
        return
    params = entry.sidecar.get("params") or {}
    options = (entry.sidecar.get("export") or {}).get("options") or {}
    rows = [
        ("id", entry.id),
        ("created", entry.created),
        ("model", f"{entry.model_name}" + (f" (id {entry.model_id})" if entry.model_id else "")),
        ("seed", entry.seed),
        ("duration", "-" if entry.duration is None else f"{entry.duration:g} s"),
        ("sliders", _sliders(entry.sidecar) or "-"),
        ("variation", params.get("variation", "-")),
        ("spatial", (params.get("spatial") or {}).get("mode", "mono")),
        (
            "format",
            " ".join(str(options.get(k, "")) for k in ("format", "sample_rate", "bit_depth")),
        ),
        ("audio", entry.audio),
        ("waveform", entry.thumbnail),
        ("written to", entry.source or "-"),
    ]
    for label, value in rows:
        say(f"{label + ':':<12}{value}")


@app.command()
def delete(
    ctx: typer.Context, entry_id: EntryId, json_output: JsonOption = False, home: HomeOption = None
) -> None:
    """Remove a take from the history, with its kept audio and waveform (the file it was first
    written to stays)."""
    entry = _history(ctx, home).delete(entry_id)
    if json_output:
        echo_json({"deleted": entry.to_dict()})
    else:
        say(f"deleted take {entry.id} ({entry.model_name}, seed {entry.seed})")


@app.command()
def compare(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="Take A: its history id (prefix).")],
    b: Annotated[str, typer.Argument(help="Take B: its history id (prefix).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The A/B file (default: <home>/history/ab-A-B.wav)."),
    ] = None,
    gap: Annotated[float, typer.Option(help="Seconds of silence between A and B.")] = 0.5,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Show how two takes' parameters differ and write one file to hear them: A, a gap, B."""
    store = _history(ctx, home)
    first, second = store.get(a), store.get(b)
    differences = store.compare(first, second)
    dest = out or store.folder / f"ab-{first.id[:8]}-{second.id[:8]}.wav"
    ab = store.ab_file(first, second, dest, gap_seconds=gap)
    if json_output:
        echo_json(
            {
                "a": {"id": first.id, "audio": str(first.audio)},
                "b": {"id": second.id, "audio": str(second.audio)},
                "differences": [{"key": k, "a": va, "b": vb} for k, va, vb in differences],
                "ab_file": str(ab),
            }
        )
        return
    if differences:
        from rich.console import Console
        from rich.table import Table

        table = Table(pad_edge=False)
        for title in ("Parameter", f"A {first.id[:8]}", f"B {second.id[:8]}"):
            table.add_column(title, overflow="fold")
        for key, va, vb in differences:
            table.add_row(cell(key), cell(_text(va)), cell(_text(vb)))
        Console(highlight=False).print(table)
    else:
        say("the two takes have the same parameters")
    say(f"A:   {first.audio}\nB:   {second.audio}\nA/B: {ab}  (A, {gap:g} s gap, B)")


@app.command()
def replay(
    ctx: typer.Context,
    entry_id: EntryId,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the file (created if missing).")
    ] = Path("."),
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Render a take again from its kept parameters, and check it matches the kept audio."""
    store = _history(ctx, home)
    entry = store.get(entry_id)
    from distill.generation.render import replay_history

    path = replay_history(store, entry, out)
    identical = _same_samples(path, entry.audio)
    if json_output:
        echo_json({"id": entry.id, "path": str(path), "identical": identical})
        return
    verdict = "identical to the kept take" if identical else "differs from the kept take"
    say(f"{path}  ({verdict}: {entry.audio})")


def _same_samples(a: Path, b: Path) -> bool:
    import numpy as np
    import soundfile as sf

    x, rate_x = sf.read(a, dtype="float32", always_2d=True)
    y, rate_y = sf.read(b, dtype="float32", always_2d=True)
    return rate_x == rate_y and np.array_equal(x, y)


def _sliders(sidecar: dict) -> str:
    values = sidecar.get("sliders_by_label") or {}
    return ", ".join(f"{k}={v:g}" for k, v in values.items())


def _text(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
