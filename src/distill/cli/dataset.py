"""`distill dataset ...`: look at a folder of recordings before training on it."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from distill.terminal import json_text, printable

app = typer.Typer(help="Inspect a folder of recordings before training.", no_args_is_help=True)


@app.callback()
def dataset() -> None:
    """Inspect a folder of recordings before training."""


# Same as check.DEFAULT_MIN_SECONDS; not imported so that `distill --help` loads no numpy.
_DEFAULT_MIN_SECONDS = 0.1  # s


@app.command()
def check(
    directory: Annotated[Path, typer.Argument(help="Folder of recordings (searched recursively).")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object to stdout.")
    ] = False,
    thumbnails: Annotated[
        Path | None,
        typer.Option(help="Write a waveform PNG per readable file into this folder."),
    ] = None,
    min_seconds: Annotated[
        float, typer.Option(help="Files shorter than this (seconds) are skipped.")
    ] = _DEFAULT_MIN_SECONDS,
) -> None:
    """Give every file a verdict (ok, unreadable, silent, ...) and summarise the usable set.

    Exits 0 when enough files are usable to train, 1 when too few are, 2 on a bad folder.
    """
    from distill.audio.check import check_dataset
    from distill.errors import UserError

    if not min_seconds >= 0.0:  # also rejects NaN
        raise UserError(f"--min-seconds must be 0 or more, not {min_seconds}")
    interactive = sys.stderr.isatty()  # progress only for a person watching, never in logs
    report = check_dataset(
        directory, min_seconds, thumbnails, on_file=_show_progress if interactive else None
    )
    if interactive:
        sys.stderr.write("\r\033[K")  # erase the progress line
    if json_output:
        typer.echo(json_text(report.to_dict(), indent=2))
    else:
        _print_report(report)
    report.require_enough()


def _show_progress(index: int, total: int, path: str) -> None:
    """Rewrite one "checking i/n: file" line on the terminal."""
    sys.stderr.write(f"\r\033[Kchecking {index + 1}/{total}: {printable(path[-60:])}")
    sys.stderr.flush()


def _print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from distill.audio.check import Verdict

    console = Console(highlight=False)
    table = Table(show_lines=False, pad_edge=False)
    for title, justify in [
        ("File", "left"),
        ("Rate", "right"),
        ("Ch", "right"),
        ("Length", "right"),
        ("Peak", "right"),
        ("Verdict", "left"),
    ]:
        table.add_column(title, justify=justify, overflow="fold")
    style = {Verdict.OK: "green", Verdict.CLIPPED: "yellow"}
    for f in report.files:
        table.add_row(
            _escape(f.path),
            f"{f.sample_rate}" if f.sample_rate else "",
            f"{f.channels}" if f.channels else "",
            f"{f.duration:.2f} s" if f.duration is not None else "",
            _format_peak(f.peak_dbfs),
            f"[{style.get(f.verdict, 'red')}]{_escape(f.reason)}[/]",
        )
    console.print(table)

    summary = report.summary()
    console.print(
        f"{summary['usable_files']} of {summary['files_checked']} files usable, "
        f"{_format_duration(summary['usable_duration'])} of audio"
        + (f" ({summary['ignored_files']} notes/images ignored)" if report.ignored else "")
    )
    if summary["sample_rates"]:
        rates = ", ".join(f"{k} Hz ×{v}" for k, v in summary["sample_rates"].items())
        channels = ", ".join(f"{k} ×{v}" for k, v in summary["channels"].items())
        console.print(f"sample rates: {rates}; channels: {channels}")
    if report.thumbnails_dir:
        console.print(f"thumbnails: {_escape(str(report.thumbnails_dir))}")
    for warning in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {_escape(warning)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(printable(text))  # file names come from anyone


def _format_peak(peak_dbfs: float | None) -> str:
    if peak_dbfs is None:
        return ""
    return "-inf dB" if math.isinf(peak_dbfs) else f"{peak_dbfs:.1f} dB"


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs:.0f} s" if minutes else f"{secs:.1f} s"
