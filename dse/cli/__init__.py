"""The ``dse`` command line: parse, call the Python API, render. Bad input -> message and exit code 2."""

from dse.cli._app import app, main

__all__ = ["app", "main"]
