"""Whose data an export may hold: the engine's read permission, as every read command applies it."""

from __future__ import annotations

from typing import Any

from trialflow.engine import Event, Store

__all__ = ["readable_events"]


def readable_events(store: Store, actor: Any) -> dict[str, list[Event]]:
    """The events of every patient ``actor`` may read (all of them in a store without users)."""
    from trialflow.engine._access import reader, site_filter

    visible = site_filter(store, reader(store, actor))
    return {p: evs for p, evs in store.events_of().items() if visible is None or visible(p)}
