"""The project's own exceptions.

Library code raises these with a message a user can act on: which file, which column, which row,
and what to do about it. The CLI turns them into one line on stderr and an exit code.
"""

from __future__ import annotations


class DurabilityError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(DurabilityError):
    """Bad usage or bad input data: the user can fix it. Exit code 2."""

    exit_code = 2


class ModelFileError(InputError):
    """A model file that is missing, corrupt, tampered with, pickle-based or of a newer format."""


class TrainingError(DurabilityError):
    """Training could not go on (diverged, NaN loss). Exit code 1; best weights are kept."""


def one_line(message: str) -> str:
    """``message`` safe for one line of a terminal: line breaks, NUL, escape sequences and other
    control characters that came from the data are shown escaped (``\\x00``, ``\\n``), never sent raw."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message)
