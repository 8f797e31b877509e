"""The project's own exceptions.

Library code raises these with a message a user can act on: which file, which column, which row,
and what to do about it. The CLI turns them into one line on stderr and an exit code.

An argument of the Python API is named in a message between backticks (`` `folds` must be at
least 2``): ``str(error)`` reads "folds must be at least 2" in Python, and :meth:`cli_message`
reads "--folds must be at least 2" on the command line, where every argument is the flag of the
same name (underscores as dashes). ``arguments`` lists the names, first the one at fault.
"""

from __future__ import annotations

import re

_ARGUMENT = re.compile(r"`([a-z][a-z0-9_]*)`")


class DurabilityError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str = "", *args):
        super().__init__(_ARGUMENT.sub(r"\1", str(message)), *args)
        self.template = str(message)
        self.arguments = tuple(_ARGUMENT.findall(self.template))

    def cli_message(self) -> str:
        """The message with each argument written as its command-line flag."""
        return cli_text(self.template)

    def reworded(self, template: str) -> DurabilityError:
        """The same error (its type and fields) saying ``template`` (with `argument` names)."""
        new = type(self).__new__(type(self))  # (not copy.copy: it calls __init__ with args alone)
        new.__dict__.update(self.__dict__)
        DurabilityError.__init__(new, template, *self.args[1:])
        return new


class InputError(DurabilityError):
    """Bad usage or bad input data: the user can fix it. Exit code 2."""

    exit_code = 2


def cli_text(text: str) -> str:
    """A message, warning or note of the library as the command line says it: each `argument`
    as its flag (`max_step` -> --max-step). Python shows them as written, between backticks."""
    return _ARGUMENT.sub(lambda m: "--" + m.group(1).replace("_", "-"), text)


class MissingColumn(InputError):
    """A column the table lacks. ``column``: its name (None where none was named and none was
    found, as a time column looked for by its usual names); ``role``: what it is for ("target",
    "time", "specimen id", "condition", "static", or the option that named it); ``model``: whether
    a trained model needs it (True), or the table's own options asked for it (False)."""

    def __init__(
        self, message: str = "", *args, column: str | None = None, role: str = "", model: bool = False
    ):
        super().__init__(message, *args)
        self.column, self.role, self.model = column, role, model


class ModelFileError(InputError):
    """A model file that is missing, corrupt, tampered with, pickle-based or of a newer format."""


class TrainingError(DurabilityError):
    """Training could not go on (diverged, NaN loss). Exit code 1; best weights are kept."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what ``timeout``, cron and batch schedulers send), raised where Python would
    raise KeyboardInterrupt for Ctrl-C, so that the same clean-up runs (no temporary file left,
    every output as it was); the command exits 143."""


class HungUp(Terminated):
    """SIGHUP (the terminal or ssh session closed), taken as SIGTERM is; the command exits 129."""


def raise_terminated(number, frame) -> None:
    """The SIGTERM handler the commands install (console.run_command)."""
    raise Terminated


def raise_hung_up(number, frame) -> None:
    """The SIGHUP handler the commands install (console.run_command)."""
    raise HungUp


def one_line(message: str) -> str:
    """``message`` safe for one line of a terminal: line breaks, NUL, escape sequences and other
    control characters that came from the data are shown escaped (``\\x00``, ``\\n``), never sent raw."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message)


def check_numbers(whole: dict | None = None, real: dict | None = None) -> None:
    """Refuse, as a :class:`InputError` naming the argument, values of the Python API that are not
    numbers (``whole``: integers, numpy's too; ``real``: any real number; None is
    left to the caller, text and True/False are refused), before a comparison would raise
    Python's own TypeError ("'<=' not supported between 'int' and 'str'")."""
    import numbers

    for kind, values in (("a whole number", whole or {}), ("a number", real or {})):
        for name, value in values.items():
            if value is None:
                continue
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if ok and kind == "a whole number":  # 50.0 would reach torch.randn and numpy's rng
                ok = isinstance(value, numbers.Integral)
            if not ok:
                raise InputError(f"`{name}` must be {kind}, got {value!r}")
