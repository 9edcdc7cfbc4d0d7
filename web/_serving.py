"""What a store needs before it is served to browsers."""

from __future__ import annotations

from typing import Any

__all__ = ["check_servable"]


def check_servable(store: Any) -> str | None:
    """Why ``store`` cannot be served (None if it can): the web signs people in, so it needs users."""
    from trialflow.engine import Refused, identify

    try:  # a free-text name is accepted only by a store without users
        identify(store, "trialflow-web")
    except Refused:
        return None
    return ("this store has no users, and the web workspace signs people in: create the first admin "
            "(trialflow init --admin NAME), then the team (trialflow user add NAME --role ROLE --site CODE)")
