"""The runs this process is executing, by id: how waiting, cancelling and watching reach a live run.

Small on purpose: a step script that imports ``Run`` imports this, never the runner."""
from __future__ import annotations

import threading

_active: dict = {}  # run id -> its RunExecution
_lock = threading.Lock()


def register(run_id: str, execution) -> None:
    with _lock:
        _active[run_id] = execution


def unregister(run_id: str) -> None:
    with _lock:
        _active.pop(run_id, None)


def active_execution(run_id: str):
    """The execution of a run in this process, or None (it ended, or runs in another process)."""
    with _lock:
        return _active.get(run_id)
