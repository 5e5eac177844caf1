"""The `distill` command: a thin typer layer over the package's functions.

Sub-command modules are imported here only for registration; each keeps its heavy imports (torch,
numpy) inside the command functions so `distill --help` starts fast.
"""

from __future__ import annotations

import sys

import typer

from distill import __version__
from distill.cli import dataset
from distill.errors import UserError

app = typer.Typer(
    name="distill",
    help="Train a generative model on your own recordings and explore it with musical sliders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(dataset.app, name="dataset")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"distill {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Distill: your sounds in, new sounds out."""


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        app(standalone_mode=False)
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except _usage_errors() as err:
        err.show()
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage-error class(es): recent typer versions vendor their own copy of click."""
    import click

    errors: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as VendoredClickException
    except ImportError:
        pass
    else:
        errors.append(VendoredClickException)
    return tuple(errors)
