"""The cyclic garbage collector while a command starts: paused, then resumed with start-up's objects frozen.

Starting a command creates some 75,000 objects that live as long as the process: the modules, classes and
functions of typer, SQLAlchemy, sqlmodel, pydantic, rich and trialflow. None is ever garbage, yet with the
collector's default thresholds it examines them again and again while they are made (some fifteen young
collections and a full one) and once more at exit: 8-10 % of a short command's instructions (issue 12).

So ``main()`` pauses the collector (:func:`pause`) before it imports anything, and :func:`resume` moves
every object made so far to the permanent generation (``gc.freeze()``: never examined again, at exit
neither) and turns the collector back on, for the command's own work: when the command has opened its
store (``_common.open_store``) or, for a command that does not open one first, before it runs
(``_app.main``). Only ``main()`` pauses it: importing ``trialflow.cli`` (the tests, a program that embeds
the application) leaves the collector as it was.
"""

from __future__ import annotations

import gc

__all__ = ["pause", "resume"]

_paused = False


def pause() -> None:
    """Pause the collector for start-up (if it is on; :func:`resume` turns it back on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Start-up is over: freeze what it made and turn the collector back on (if :func:`pause` turned it off)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
