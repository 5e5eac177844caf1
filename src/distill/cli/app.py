"""The `distill` command: a thin typer layer over the package's functions.

Sub-command modules are imported here only for registration; each keeps its heavy imports (torch,
numpy) inside the command functions so `distill --help` starts fast.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Annotated

import typer

from distill import __version__
from distill.cli import dataset, demo, generate, model, resynth, train, ui
from distill.cli import history as history_cli
from distill.cli import preset as preset_cli
from distill.errors import UserError
from distill.terminal import printable

app = typer.Typer(
    name="distill",
    help="Train a generative model on your own recordings and explore it with musical sliders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(dataset.app, name="dataset")
app.add_typer(model.app, name="model")
app.add_typer(preset_cli.app, name="preset")
app.add_typer(history_cli.app, name="history")
app.command(name="train")(train.train_command)
app.command(name="generate")(generate.generate_command)
app.command(name="resynth")(resynth.resynth_command)
app.command(name="demo")(demo.demo_command)
app.command(name="ui")(ui.ui_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"distill {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    home: Annotated[
        Path | None,
        typer.Option(
            help="Distill home (runs, cache, library); default $DISTILL_HOME or the user data "
            "folder. Sub-commands also take --home."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu, cuda, cuda:N or mps; sub-commands also take --device."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More progress lines (e.g. every step).")
    ] = False,
) -> None:
    """Distill: your sounds in, new sounds out."""
    # Sub-commands read these through ctx.obj (click hands a parent's obj to its children); an
    # option given to the sub-command itself wins.
    ctx.obj = {"home": home, "device": device, "verbose": verbose}


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        # Outside standalone mode click *returns* the code of a `typer.Exit` instead of exiting.
        code = app(standalone_mode=False)
    except UserError as err:
        typer.echo(f"error: {printable(err)}", err=True)
        sys.exit(err.exit_code)
    except _usage_errors() as err:
        err.show()
        sys.exit(err.exit_code)
    except OSError as err:
        if err.errno not in _DISK_ERRORS:
            raise  # a bug: the traceback is what is needed to fix it
        where = f" {err.filename}" if err.filename else ""
        typer.echo(
            printable(
                f"error: cannot write{where} ({err.strerror}): free some space or choose "
                "another folder (--home, --out)"
            ),
            err=True,
        )
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)


# What a full or read-only disk raises from any write no command wrapped in its own message.
_DISK_ERRORS = frozenset(
    {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES, errno.EPERM}
)


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
