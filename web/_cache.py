"""The worklist of a user, kept while the store does not change: a page view should not replay a cohort.

A snapshot is keyed on who asks (name, role, sites), the clinical date, and the store's write mark
(``Store.write_mark``, raised by every commit), so any write through any face (web, CLI, import) is seen on
the next request. What changes without
an event (a site adopting patients, a rebuilt projection) is seen within ``TTL`` seconds. Concurrent
requests for the same key wait for one computation instead of each running it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TTL", "WorklistCache", "WorklistSnapshot"]

TTL = 60.0  # seconds
MAX_ENTRIES = 32
MAX_VIEWS = 64  # filtered views kept per snapshot


@dataclass
class WorklistSnapshot:
    """``next_actions`` for one user on one day, each patient's site, and the ``--json`` bytes on demand."""

    actions: list[Any]
    sites: dict[str, str | None]
    made: float
    _json: bytes | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _views: dict[Any, Any] = field(default_factory=dict)

    def view(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` (a filtered, grouped view of the actions) once per ``key`` for this snapshot."""
        with self._lock:
            if key not in self._views:
                if len(self._views) >= MAX_VIEWS:
                    self._views.clear()
                self._views[key] = make()
            return self._views[key]

    def json_bytes(self) -> bytes:
        with self._lock:
            if self._json is None:
                from trialflow.cli._output import jsonable

                self._json = json.dumps(jsonable(self.actions), ensure_ascii=False, allow_nan=False).encode()
            return self._json


class WorklistCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[Any, ...], WorklistSnapshot] = OrderedDict()
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[Any, ...], make: Callable[[], WorklistSnapshot]) -> WorklistSnapshot:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                hit = self._entries.get(key)
                if hit is not None and time.monotonic() - hit.made < TTL:
                    self._entries.move_to_end(key)
                    return hit
            snap = make()
            with self._guard:
                self._entries[key] = snap
                self._entries.move_to_end(key)
                while len(self._entries) > MAX_ENTRIES:
                    old, _ = self._entries.popitem(last=False)
                    self._locks.pop(old, None)
            return snap


def key_for(actor: Any, as_of: dt.date, horizon: int, write_mark: int) -> tuple[Any, ...]:
    return (actor.name, actor.role, tuple(sorted(actor.sites)), as_of, horizon, write_mark)
