"""The one error type users see: bad input, reported with where it came from and what was expected."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file, a field, a value, and what was expected.

    The CLI prints ``str(error)`` and exits with code 2; it never shows a traceback for this type.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        self.message = message
        """What is wrong and what was expected, without the file and field (``str(error)`` adds them)."""
        self.source = source
        self.field = field
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class AssumptionWarning(UserWarning):
    """Input read with an assumption the user should know of (e.g. an unknown model family read as Llama-style).

    The CLI prints it as ``warning: ...`` on standard error; the Python API issues it through ``warnings``."""
