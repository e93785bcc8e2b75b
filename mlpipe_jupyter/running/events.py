"""Runner events: what observers (log files, the store, widgets, the designer) subscribe to.

Kinds: ``run_status``, ``step_status``, ``log`` (one line), ``metric``. Callbacks run on the runner's
threads, so they must be quick; a failing subscriber is dropped from that event, never the run.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field


@dataclass
class Event:
    kind: str
    run_id: str  # the top-level run
    step: str | None = None
    step_run_id: str | None = None
    data: dict = field(default_factory=dict)
    ts: float = field(default_factory=time.time)


class EventBus:
    def __init__(self):
        self._subs: list = []
        self._lock = threading.Lock()

    def subscribe(self, callback, run_id: str | None = None):
        """callback(event) for every event (of one run if run_id is given); returns an unsubscribe function."""
        entry = (callback, run_id)
        with self._lock:
            self._subs.append(entry)

        def unsubscribe():
            with self._lock:
                if entry in self._subs:
                    self._subs.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for cb, run_id in subs:
            if run_id is None or run_id == event.run_id:
                try:
                    cb(event)
                except Exception:  # noqa: BLE001 - an observer must never break a run
                    traceback.print_exc()


bus = EventBus()
