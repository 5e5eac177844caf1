"""Options and helpers shared by the commands that load a model and write audio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distill.audio.formats import BIT_DEPTHS, FORMATS, SAMPLE_RATES, choices, formats_with
from distill.terminal import json_text, printable

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")]
HomeOption = Annotated[
    Path | None,
    typer.Option(help="Distill home (default: $DISTILL_HOME or the user data folder)."),
]
DeviceOption = Annotated[str | None, typer.Option(help="auto (default), cpu, cuda, cuda:N or mps.")]
SliderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--slider",
        "-s",
        help="NAME=VALUE, −10…+10 (0 = the training data's average); NAME is a slider's label "
        "or its number. Repeat for several sliders.",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help=f"{choices(FORMATS)}.")]
RateOption = Annotated[
    int, typer.Option("--sample-rate", "-r", help=f"{choices(SAMPLE_RATES)} Hz.")
]
_FLOAT_FORMATS = "/".join(name.upper() for name in formats_with(bit_depth="32f"))
DepthOption = Annotated[
    str,
    typer.Option(
        "--bit-depth", help=f"{choices(BIT_DEPTHS)} (32-bit float; {_FLOAT_FORMATS} only)."
    ),
]
LufsOption = Annotated[
    float | None,
    typer.Option("--lufs", help="Loudness target in LUFS (e.g. -14); default: peak at −1 dBFS."),
]


def shared(ctx: typer.Context, home: Path | None, device: str | None) -> tuple[Path | None, str]:
    """A sub-command's --home/--device, else the root command's, else defaults."""
    root = ctx.obj or {}
    return home or root.get("home"), device or root.get("device") or "auto"


def export_options(format: str, sample_rate: int, bit_depth: str, lufs: float | None):
    from distill.audio.write import ExportOptions

    options = ExportOptions(
        format=format.lower().lstrip("."), sample_rate=sample_rate, bit_depth=bit_depth, lufs=lufs
    )
    options.validate()
    return options


def echo_json(data: dict) -> None:
    """One JSON object on stdout (non-ASCII kept readable, control characters escaped)."""
    typer.echo(json_text(data, indent=2, ensure_ascii=False))


def say(line: str, *, err: bool = False) -> None:
    """One line for the user; whatever it quotes from files is shown, never obeyed (terminal)."""
    typer.echo(printable(line), err=err)


def cell(text: object) -> str:
    """A Rich table cell of text from a file: control characters shown, markup escaped."""
    from rich.markup import escape

    return escape(printable(text))


def finite(value: float | None) -> float | None:
    """JSON has no infinity: the peak of digital silence (−inf dBFS) is reported as null."""
    import math

    return value if value is not None and math.isfinite(value) else None
