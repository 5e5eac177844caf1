"""Errors a user can cause. The CLI prints them as one line and exits non-zero; internal bugs raise."""


class UserError(Exception):
    """Something the user can fix: the message says what happened and what to do next."""

    exit_code = 2
