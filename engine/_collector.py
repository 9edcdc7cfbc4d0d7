"""Python's cyclic garbage collector paused while a bulk write holds many objects (then running as before).

A bulk write (the demo's cohort, an import) holds a chunk of 1000 patients' events, records, states and rows
until the chunk is written, and they are freed by reference counting then: a collection after a 3,000-patient
build finds some 90 objects of cyclic garbage. The collector, meanwhile, walks every live object at each full
collection, and a chunk's objects trigger one every few hundred patients: about a tenth of the demo's CPU, and
half of an import's reading and folding of 4,612 patients' histories (0.91 s against 1.57 s for reading
their 114,623 events, 0.55 s against 1.59 s for folding them; ``benchmarks/bench_store.py`` has the whole
import's figures).

The pause is the process's: in a program that runs other threads beside the write (none of trialflow's own
commands does; the web server does not import files), their cyclic garbage waits for the write to end too,
and is collected then."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["no_cyclic_collection"]


@contextlib.contextmanager
def no_cyclic_collection() -> Iterator[None]:
    """The collector off inside, back on after (if it was on: nested uses and a caller's own pause stay)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
