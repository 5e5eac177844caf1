"""Errors a user can cause: printed by the CLI as one line with a non-zero exit (bugs raise)."""


class UserError(Exception):
    """Something the user can fix: the message says what happened and what to do next."""

    exit_code = 2
