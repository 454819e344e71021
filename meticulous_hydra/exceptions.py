"""Every error meticulous-hydra shows a user, in one place."""

from __future__ import annotations


class UsageError(Exception):
    """Wrong input from the user on the command line: one line, exit code 2."""
