"""Handing work to Celery without a request ever waiting for the broker.

Everything enqueued from a request path is already safe in a table (an outbox
row, a pending export, report or verification) that a beat sweep re-enqueues.
Publishing the task is only a wake-up, so it happens on a background thread of
the process after the transaction commits: with Redis down, a held order or a
grant answers in its usual milliseconds instead of waiting seconds for the
connection to time out, and the sweep picks the work up when the broker is back.

Tasks are named, not imported (`publish("reporting.tasks.report_generate_task",
report_id)`): a service enqueues its app's task without importing the tasks
module, which imports the services, so services never import tasks and there
is no cycle (tests/test_layout.py checks it).

With CELERY_TASK_ALWAYS_EAGER (tests, `make run` without a broker) the task
runs at once, in the caller's thread, as before.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from .celery import app

logger = logging.getLogger(__name__)

_MAX_WAITING = 10_000
_CONNECT_TIMEOUT = 5.0
_queue: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue(maxsize=_MAX_WAITING)
_worker: dict[int, threading.Thread] = {}
_lock = threading.Lock()


def publish(task: str, *args: Any) -> None:
    """Send the task named `task` with `args` to the broker from a background
    thread (eager: run it now)."""
    if app.conf.task_always_eager:
        task_named(task).apply_async(args=args)
        return
    _ensure_worker()
    try:
        _queue.put_nowait((task, args))
    except queue.Full:
        # The broker has been down for a long time; the sweeps will find the work.
        logger.warning("dispatch queue full; %s left to its sweep", task)


def publish_on_commit(task: str, *args: Any) -> None:
    """`publish` once the caller's transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: publish(task, *args), robust=True)


def task_named(name: str) -> Any:
    """The registered task called `name`. Celery imports the apps' tasks modules
    only in a worker; elsewhere (eager runs) they are imported on first need."""
    try:
        return app.tasks[name]
    except KeyError:
        app.autodiscover_tasks(force=True)
        return app.tasks[name]


def wait_idle(timeout: float = 5.0) -> bool:
    """For tests and shutdown: whether everything queued has been handed over."""
    done = threading.Event()

    def waiter() -> None:
        _queue.join()
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    return done.wait(timeout)


def _ensure_worker() -> None:
    pid = os.getpid()  # a forked gunicorn worker needs its own thread
    thread = _worker.get(pid)
    if thread is not None and thread.is_alive():
        return
    with _lock:
        thread = _worker.get(pid)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_drain, name="celery-dispatch", daemon=True)
            thread.start()
            _worker[pid] = thread


def _drain() -> None:
    while True:
        task, args = _queue.get()
        try:
            if app.conf.task_always_eager:
                continue  # switched to eager since (tests): never run work on this thread
            # One bounded attempt on a connection of its own (a pooled one that
            # failed can hang the next publish on its reconnect loop); no
            # retries: the row is safe, and the sweep re-enqueues it.
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=_CONNECT_TIMEOUT)
                app.send_task(task, args=list(args), retry=False, connection=connection)
        except Exception:
            logger.warning("broker unavailable: %s left to its sweep", task, exc_info=True)
        finally:
            _queue.task_done()


__all__: Sequence[str] = ["publish", "publish_on_commit", "task_named", "wait_idle"]
