"""A bulk write's chunks worked out in a forked child while the parent reads and writes the others.

An import into a large store spends about 1 ms of Python per patient it names (fold the history, check the new
records, place the visits, work out the work items and the report line) and a few hundred microseconds in the
database (read the history, write the rows). On a machine with a second core, :func:`pipelined` runs that
Python for chunk k in a child forked after the parent has read chunk k's histories, while the parent writes
chunk k-1's rows and reads chunk k+1's: the database is only ever used by the parent, inside its one
transaction, so every guarantee of the bulk path (all or nothing, the guards against concurrent writers) stands.

The child is a copy of the parent at the fork (the protocol models, the chunk's histories, the transaction's
clock and actor); it is given the event ids its appends may take, sends back what the parent is to write
(a :class:`~trialflow.engine._bulk.Flush` and the command's answers) through a pipe, and ends with
``os._exit`` (no exit handler of the parent's runs in it, no connection of the parent's is closed). A child
that would touch the database (any new connection, any use of the transaction's session) stops, and so
does one that refuses, raises or dies: the parent then does that chunk's work itself, on the same data, so the
answer (the file's problems at their lines, a permission refused, a concurrent writer's retry) is the one the
serial path gives, word for word. Forking is used only where it is safe: a POSIX ``fork``, at least two
processors, and no other thread in the process (a web server's, say); ``TRIALFLOW_FORK=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["Forbidden", "HandBack", "can_fork", "pipelined"]

K = TypeVar("K")
R = TypeVar("R")


class Forbidden(BaseException):
    """The forked child tried to use the database (a BaseException: no ``except Exception`` on the way hides it)."""


class HandBack(Exception):
    """Raised by a child's work to hand its chunk back to the parent, which does it itself."""


class _NoDatabase:
    """Stands for the transaction's session in the child: any use of it raises :class:`Forbidden`."""

    def __getattr__(self, name: str) -> Any:
        raise Forbidden(f"the database is not at hand in a forked child (session.{name})")


def can_fork() -> bool:
    """Whether :func:`pipelined` may fork here: POSIX ``fork``, two processors or more, this the only thread,
    and not turned off (``TRIALFLOW_FORK=0``)."""
    return (hasattr(os, "fork") and (os.cpu_count() or 1) >= 2 and threading.active_count() == 1
            and os.environ.get("TRIALFLOW_FORK", "1") != "0")


@dataclass
class _Child(Generic[R]):
    pid: int
    fd: int

    def result(self) -> R | None:
        """What the child worked out; ``None`` if it did not (it stopped, refused, raised or died)."""
        chunks = []
        try:
            while block := os.read(self.fd, 1 << 20):
                chunks.append(block)
        finally:
            os.close(self.fd)
            _reap(self.pid)
        try:
            ok, value = pickle.loads(b"".join(chunks))
        except Exception:  # (a child that died midway sends a truncated answer, or none)
            return None
        return value if ok else None

    def stop(self) -> None:
        """Kill the child and reap it (the parent's work failed: its answer is not wanted)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.close(self.fd)
        _reap(self.pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _fork(work: Callable[[], R], forbid: Callable[[], None], others: Iterable[int] = ()) -> _Child[R]:
    """``work()`` in a forked child; ``others``: the parent's ends of other children's pipes (closed in this one,
    so that a child whose parent died finds its pipe closed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work, answer, and end without running anything of the parent's on the way out
        status = 0
        try:
            for fd in (read, *others):
                os.close(fd)
            forbid()
            try:
                answer = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # (any stop: the parent does the chunk itself)
                answer = pickle.dumps((False, None))
            view = memoryview(answer)
            while view:
                view = view[os.write(write, view):]
        except BaseException:  # (the parent went away: nobody reads the answer)
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    return _Child(pid, read)


def _forbid_pools() -> None:
    """In the child: any new connection (``engine.connect()``, a new session, a pool's checkout) raises before the
    pool hands one out. (Refused after the checkout, in a pool event, the pool would close the connection it took:
    on PostgreSQL a socket the parent shares, whose server end would then end the parent's session.)"""
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    def refuse(*_: Any, **__: Any) -> Any:
        raise Forbidden("the database is not at hand in a forked child (a new connection)")

    # (class attributes of the child's own copy of SQLAlchemy: the parent's are not touched)
    Pool.connect = refuse  # type: ignore[method-assign]
    Engine.connect = refuse  # type: ignore[method-assign]
    Engine.raw_connection = refuse  # type: ignore[method-assign]


def pipelined(keys: Iterable[K], prepare: Callable[[K], bool], compute: Callable[[K], R],
              apply: Callable[[K, R], None], serial: Callable[[K], None], tx: Any) -> None:
    """For each key (a chunk) in order: ``prepare(k)`` in the parent (read what the chunk's work needs; ``False``:
    this chunk is done serially), ``compute(k)`` in a child forked then, and ``apply(k, result)`` in the parent,
    in the keys' order, once the child of the chunk after it is forked; ``serial(k)`` in the parent instead for a
    chunk whose child did not answer. ``tx``: the bulk transaction, whose session the child is given a stand-in
    for. So while the parent waits for chunk k's answer and writes it, chunk k+1's child works beside it (two
    cores: the parent reading and writing, a child or two computing). However the parent's work ends (an error,
    a concurrent writer's retry, Ctrl-C), every child still running is killed and reaped."""
    live: list[_Child[R]] = []  # forked, not yet answered or killed
    pending: tuple[K, _Child[R] | None] | None = None

    def forbid() -> None:
        tx.session = _NoDatabase()
        _forbid_pools()

    def finish(key: K, child: _Child[R] | None) -> None:
        result = None
        if child is not None:
            live.remove(child)
            result = child.result()
        if result is None:
            serial(key)
        else:
            apply(key, result)

    try:
        for key in keys:
            child = None
            if prepare(key):
                child = _fork(lambda key=key: compute(key), forbid, [c.fd for c in live])  # type: ignore[misc]
                live.append(child)
            if pending is not None:
                finish(*pending)
            if child is None:
                pending = None
                serial(key)
            else:
                pending = (key, child)
        if pending is not None:
            finish(*pending)
    finally:
        for child in live:
            child.stop()
