"""Code run in child processes by ``test_concurrency.py`` (spawned: importable, no pytest state).

Each worker opens its own store, waits at a barrier so that all children write at the same moment,
and reports what happened on a queue as plain data.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any


def record_worker(
    db: str, items: list[tuple[str, dict[str, Any]]], user: str, barrier: Any, out: Any
) -> None:
    from trialflow.engine import Store, record_many

    store = Store.open(db)
    barrier.wait()
    try:
        written = record_many(store, items, user)
        out.put(("ok", sum(len(w.events) for w in written)))
    except Exception as err:  # reported to the parent, which fails the test with it
        out.put(("error", f"{type(err).__name__}: {err}"))
    finally:
        store.close()


def decide_worker(db: str, patient: str, when: dt.date, user: str, barrier: Any, out: Any) -> None:
    from trialflow.engine import Refused, Store, decide

    store = Store.open(db)
    barrier.wait()
    try:
        out.put(("ok", decide(store, patient, when, user).phase))
    except Refused as err:
        out.put(("refused", str(err)))
    except Exception as err:
        out.put(("error", f"{type(err).__name__}: {err}"))
    finally:
        store.close()


def _chunks_of(chunk: int | None) -> None:
    """An import's chunks of ``chunk`` patients (None: as shipped): small ones take the forked path
    (``engine/_forked.py``) with a few dozen patients."""
    if chunk is not None:
        import trialflow.engine._workflow as workflow

        workflow.IMPORT_CHUNK = chunk


def import_until_killed(db: str, path: str, appends: int, chunk: int | None, flushed: Any) -> None:
    """Import ``path`` but stop inside the open transaction, midway through the bulk write: every new event
    row of a chunk is written (uncommitted), the projections not yet (with small chunks: the second chunk's,
    worked out in a forked child, after the first chunk was written whole).

    The parent SIGKILLs this process once ``flushed`` is set. (``appends``: how many patients' appends
    the transaction must hold by then, checked here so the kill really falls in the middle of a big write.)
    """
    from trialflow.engine import Store, import_file
    from trialflow.engine._bulk import BulkTransaction, Flush

    _chunks_of(chunk)
    calls: list[Flush] = []
    write = BulkTransaction._write_projections

    def write_projections(self: BulkTransaction, f: Flush) -> None:
        calls.append(f)
        if chunk is not None and len(calls) == 1:
            write(self, f)  # the first chunk is written whole
            return
        assert len({r["patient_id"] for r in f.events}) >= appends
        self.session.flush()
        flushed.set()
        time.sleep(600)  # killed here

    BulkTransaction._write_projections = write_projections  # type: ignore[method-assign]  # this child only
    store = Store.open(db)
    import_file(store, path, "coordinator.anna")


def import_worker(db: str, path: str, user: str, chunk: int | None, barrier: Any, out: Any) -> None:
    """Import ``path`` (one bulk transaction, in chunks of ``chunk`` patients) the moment every worker is ready."""
    from trialflow.engine import Store, import_file

    _chunks_of(chunk)
    store = Store.open(db)
    try:
        barrier.wait()
        written = import_file(store, path, user)
        out.put(("ok", sum(len(w.events) for w in written), store.retries))
    except Exception as err:  # reported to the parent, which fails the test with it
        out.put(("error", f"{type(err).__name__}: {err}"))
    finally:
        store.close()
