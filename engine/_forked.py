"""A bulk write's chunks worked out by forked worker processes while the parent writes the ones before.

An import into a large store spends about 1 ms of Python per patient it names (read and fold the history, check
the new records, place the visits, work out the work items and the report line) against a few hundred
microseconds of writing. :func:`pipelined` forks worker processes once, after the file is read and the protocol
models are resolved; each reads the histories of the chunks it is given through a read connection of its own,
works out their appends and projections, and sends back what the parent is to write (a
:class:`~trialflow.engine._bulk.Flush` and the command's answers). Only the parent writes, in its one
transaction, in the chunks' order, so every guarantee of the bulk path stands: all or nothing, and a writer that
changed one of a chunk's patients after a worker read it makes the parent's guarded update (each patient row's
``last_seq`` as read) fail, and the whole work is run again on fresh state, as for any concurrent writer. (On
SQLite the parent's transaction holds the write lock from its start, so nobody else commits meanwhile.)

A worker is a copy of the parent at the fork (the parsed file, the protocol models, the transaction's clock and
actor); it never uses the parent's connections: its copy of the parent's engine refuses any connection. A chunk
whose worker refuses, raises or dies is done by the parent itself, on its own transaction, so the answer (the
file's problems at their lines, a permission refused, a damaged event named) is the serial path's, word for word.
Workers are used only where forking is safe and helps: a POSIX ``fork``, at least two processors, no other thread
in the process (a web server's, say); ``TRIALFLOW_FORK=0`` turns them off. However the parent's work ends
(an error, a concurrent writer's retry, Ctrl-C) the workers are killed and reaped; on Linux the kernel kills
them if the parent itself is killed. A fork that fails (no process to be had) leaves the work to the parent.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any, Generic, TypeVar

__all__ = ["HandBack", "can_fork", "pipelined", "worker_count"]

K = TypeVar("K")
R = TypeVar("R")
#: what a worker runs once: the block in which it works (``with start() as work``: ``work(key, ticket)``)
Start = Callable[[], AbstractContextManager[Callable[[K, Any], R]]]
#: chunks in flight per worker (one being worked on, one waiting), so a worker is not idle while the parent writes
DEPTH = 2


class HandBack(Exception):
    """Raised by a worker's work to hand its chunk back to the parent, which does it itself."""


def can_fork() -> bool:
    """Whether :func:`pipelined` may fork here: POSIX ``fork``, two processors or more, this the only thread,
    and not turned off (``TRIALFLOW_FORK=0``)."""
    return (hasattr(os, "fork") and (os.cpu_count() or 1) >= 2 and threading.active_count() == 1
            and os.environ.get("TRIALFLOW_FORK", "1") != "0")


def worker_count() -> int:
    """Workers beside the parent: one per processor, at most four (the parent's writing is the limit then)."""
    return max(1, min(os.cpu_count() or 1, 4))


class _Worker(Generic[K, R]):
    """A forked process that runs ``work(key, ticket)`` for each task it is sent, in order, answering each."""

    def __init__(self, start: Start[K, R], others: Sequence[_Worker[Any, Any]]):
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # (no process to be had: the pipes go too)
            for fd in (task_read, task_write, result_read, result_write):
                os.close(fd)
            raise
        if pid == 0:  # the worker: work, answer, and end without running anything of the parent's on the way out
            status = 0
            try:
                _die_with_parent()
                for fd in (task_write, result_read, *(fd for w in others for fd in w.fds())):
                    os.close(fd)
                _serve(start, os.fdopen(task_read, "rb"), os.fdopen(result_write, "wb"))
            except BaseException:  # (the parent went away, or the worker could not start: nobody is answered)
                status = 1
            finally:
                os._exit(status)
        os.close(task_read)
        os.close(result_write)
        self.pid = pid
        self.tasks: IO[bytes] | None = os.fdopen(task_write, "wb")
        self.results: IO[bytes] | None = os.fdopen(result_read, "rb")
        self.waiting = 0  # tasks sent and not answered yet

    def fds(self) -> list[int]:
        return [f.fileno() for f in (self.tasks, self.results) if f is not None]

    def send(self, key: K, ticket: Any) -> bool:
        """Send a task; ``False`` if the worker is gone (the caller does that chunk itself)."""
        if self.tasks is None:
            return False
        try:
            pickle.dump((key, ticket), self.tasks, protocol=pickle.HIGHEST_PROTOCOL)
            self.tasks.flush()
        except OSError:  # (a worker that died: its pipe is closed)
            self._gone()
            return False
        self.waiting += 1
        return True

    def answer(self) -> R | None:
        """The answer to the oldest task sent; ``None`` if the worker did not work it out (it refused or raised;
        or it died, and is then sent nothing more: its later chunks are the parent's)."""
        self.waiting -= 1
        if self.results is None:
            return None
        try:
            ok, value = pickle.load(self.results)
        except Exception:  # (a worker that died midway sends a truncated answer, or none)
            self._gone()
            return None
        return value if ok else None

    def _gone(self) -> None:
        for f in (self.tasks, self.results):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self.tasks = self.results = None

    def close(self, kill: bool = False) -> None:
        """Tell the worker there is nothing more (it ends), or kill it; reap it either way."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._gone()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker if the parent dies (SIGKILL too), instead of leaving it to finish a
    chunk nobody will read; elsewhere nothing (its next answer then meets a closed pipe)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # (the parent died before the call)
            os._exit(1)


def _serve(start: Start[Any, Any], tasks: IO[bytes], results: IO[bytes]) -> None:
    """The worker's loop. Its tasks are read by a thread of their own as they come, so the parent's sending never
    waits for this worker to finish one (nor this worker's answering for the parent's sending: no deadlock
    whatever the sizes)."""
    import queue

    waiting: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                waiting.put(pickle.load(tasks))
            except BaseException:  # (the parent closed the pipe: no more tasks)
                waiting.put(None)
                return

    threading.Thread(target=read, daemon=True).start()
    with start() as work:
        while (task := waiting.get()) is not None:
            key, ticket = task
            try:
                answer = pickle.dumps((True, work(key, ticket)), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # (any stop: the parent does the chunk itself)
                answer = pickle.dumps((False, None))
            results.write(answer)
            results.flush()


def pipelined(keys: Sequence[K], start: Start[K, R], ticket: Callable[[K], Any],
              apply: Callable[[K, R], None], serial: Callable[[K], None], *, workers: int) -> None:
    """For each key (a chunk), in order, either ``apply(k, result)`` of what a worker worked out, or ``serial(k)``.

    ``start()`` runs once in each forked worker, as the block its ``work(key, ticket)`` runs in; ``ticket(k)``,
    in the parent when chunk k is sent, gives what the worker needs from the parent (the event ids it may take),
    or ``None``: that chunk (and every later one) is done by ``serial`` in the parent, after the ones sent before it are
    finished. A chunk is sent to the workers in turn, ``DEPTH`` in flight per worker; the parent applies the answers
    in the keys' order, so while it writes chunk k the workers work on the next ones."""
    pool: list[_Worker[K, R]] = []
    try:
        for _ in range(workers):
            try:
                pool.append(_Worker(start, pool))
            except OSError:  # (no process to be had: EAGAIN, ENOMEM) the workers made so far, or none
                break
        if not pool:
            for key in keys:
                serial(key)
            return
        inflight: deque[tuple[K, _Worker[K, R] | None]] = deque()

        def finish() -> None:
            key, worker = inflight.popleft()
            result = worker.answer() if worker is not None else None
            if result is None:
                serial(key)
            else:
                apply(key, result)

        serial_from_here = False
        for i, key in enumerate(keys):
            t = None if serial_from_here else ticket(key)
            if t is None:
                serial_from_here = True
                while inflight:
                    finish()
                serial(key)
                continue
            worker = pool[i % len(pool)]
            inflight.append((key, worker if worker.send(key, t) else None))
            while len(inflight) > DEPTH * len(pool):
                finish()
        while inflight:
            finish()
    except BaseException:
        for w in pool:
            w.close(kill=True)
        raise
    else:
        for w in pool:
            w.close()
    finally:
        for w in pool:  # (a Ctrl-C while the others were being reaped: the rest are killed and reaped here)
            if w.tasks is not None or w.results is not None:
                w.close(kill=True)
