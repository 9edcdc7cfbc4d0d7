"""The ``trialflow`` command line: argument parsing and printing; the work happens in the library."""

from ._app import app, main

__all__ = ["app", "main"]
