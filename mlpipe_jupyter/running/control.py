"""Controlling a run from anywhere: cancel it, wait for its end, find its live execution.

A run executing in this process is reached through its ``RunExecution``; one executing in another
process (``mlpipe run`` in a terminal, another kernel) through the store: a cancel is a request its
runner polls for, and a wait polls the run's status, asking the store's crash recovery on the way
whether the run's process died (a run whose runner is gone is marked Failed, so no wait is endless).

Small on purpose: a step script that imports ``Run`` imports this, never the runner."""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from mlpipe_jupyter.status import FINAL_STATUSES

POLL_SECONDS = 0.2
RECOVER_SECONDS = 1.0  # how often a waiter asks the store whether the run's process died

_active: dict = {}  # run id -> its RunExecution
_lock = threading.Lock()
_exit_hook = False


def register(run_id: str, execution) -> None:
    global _exit_hook
    with _lock:
        _active[run_id] = execution
        if not _exit_hook:
            # Runs in threading's shutdown, before the non-daemon threads are joined and, being registered
            # after it, before concurrent.futures refuses new work: a script that submits and ends without
            # waiting still has its runs finish instead of failing with "cannot schedule new futures".
            threading._register_atexit(wait_at_exit)
            _exit_hook = True


def wait_at_exit(stream=None) -> None:
    """The process is ending: wait for the runs it still executes, saying so in one line; Ctrl-C
    cancels them (their steps stopped, the runs recorded Canceled) and waits for that."""
    with _lock:
        running = [e for e in _active.values() if not e.done.is_set()]
    if not running:
        return
    try:  # the line inside: a Ctrl-C the moment it is out must still cancel
        print(f"mlpipe: waiting for {len(running)} active run(s) to finish before exiting "
              f"({', '.join(e.run_id for e in running)}); Ctrl-C cancels them.", file=stream or sys.stderr,
              flush=True)
        for execution in running:
            while not execution.done.wait(POLL_SECONDS):
                pass
    except KeyboardInterrupt:
        for execution in running:
            execution.cancel("Canceled: the process was interrupted while it waited for its runs to end.")
        for execution in running:
            try:
                execution.done.wait()
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting; the runner threads still end
                return


def unregister(run_id: str) -> None:
    with _lock:
        _active.pop(run_id, None)


def active_execution(run_id: str):
    """The execution of a run in this process, or None (it ended, or runs in another process)."""
    with _lock:
        return _active.get(run_id)


def cancel(store, run_id: str) -> bool:
    """Stop a top-level run, whichever process runs it; False when it had already ended."""
    execution = active_execution(run_id)
    if execution is not None and not execution.done.is_set():
        execution.cancel()
        return True
    return store.request_cancel(run_id)  # the runner in another process polls for this


def wait_until_final(store, run_id: str, timeout: float | None = None, each_poll: Callable | None = None) -> str:
    """Block until a run (of any process) ends; returns its status (or the one it has at ``timeout``).
    A run whose process died is marked Failed on the way, by the store's recovery."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_recovery = time.monotonic()
    execution = active_execution(run_id)
    while True:
        status = store.get_run(run_id)["status"]
        if status in FINAL_STATUSES or (deadline is not None and time.monotonic() > deadline):
            return status
        if execution is not None and execution.done.is_set():
            return status  # ended, though the store could not record it (a full disk)
        if each_poll is not None:
            each_poll()
        if execution is not None:
            execution.done.wait(POLL_SECONDS)
        else:
            time.sleep(POLL_SECONDS)
        if time.monotonic() - last_recovery > RECOVER_SECONDS:
            store.recover_orphans()
            last_recovery = time.monotonic()
