"""`distill ui`: serve the web page (distill.ui) on this machine and print its URL.

It listens on 127.0.0.1 only, unless --host names another interface: then anyone who can reach
this machine can use the page (there is no password), and a warning says so. gradio is imported
inside the command so `distill --help` stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from distill.cli.common import DeviceOption, HomeOption, shared
from distill.errors import UserError

LOCALHOST = "127.0.0.1"
_LOCAL_NAMES = {LOCALHOST, "localhost", "::1"}


def ui_command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on. The default keeps the page on this machine; another "
            "(e.g. 0.0.0.0) makes it reachable from the network, without a password."
        ),
    ] = LOCALHOST,
    port: Annotated[
        int | None,
        typer.Option(help="Port (default: the first free one from 7860).", min=1, max=65535),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open the page in a browser.")
    ] = False,
    max_upload_mb: Annotated[
        float, typer.Option(help="Largest file the page accepts, in MB.", min=1)
    ] = 200.0,
    home: HomeOption = None,
    device: DeviceOption = None,
) -> None:
    """Open Distill in your web browser: check sounds, train, generate, compare — no terminal."""
    home, device = shared(ctx, home, device)
    if not host.strip():
        raise UserError("--host is empty: leave it out to stay on 127.0.0.1, or name an interface")
    if host not in _LOCAL_NAMES:
        typer.echo(
            f"warning: listening on {host}: the page is reachable from other machines on your "
            "network, and anyone who reaches it can use this Distill home (there is no password)",
            err=True,
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from distill.ui.app import launch

    try:
        launch(
            Path(home) if home else None,
            host=host,
            port=port,
            open_browser=not no_browser,
            device=device,
            max_upload_mb=max_upload_mb,
            say=typer.echo,
        )
    except OSError as err:  # the port is taken, or the host is not an interface of this machine
        raise UserError(
            f"cannot listen on {host}:{port or 'a free port from 7860'} ({err}): "
            "choose another --port or --host"
        ) from err
