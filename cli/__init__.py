"""The ``trialflow`` command line: argument parsing and printing; the work happens in the library."""

from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point (``trialflow``): the collector paused while the command starts (``_startup``),
    then the command the arguments name, alone (``_app.main``)."""
    from . import _startup

    _startup.pause()
    from ._app import main as run

    run()


def __getattr__(name: str) -> Any:
    # ``app`` (every command, their modules imported) is built on first use: ``main()`` builds only one
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
