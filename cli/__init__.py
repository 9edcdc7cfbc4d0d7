"""The ``trialflow`` command line: argument parsing and printing; the work happens in the library."""

from typing import Any

from ._app import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # ``app`` (every command, their modules imported) is built on first use: ``main()`` builds only one
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
