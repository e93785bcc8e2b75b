"""Runner events: what observers (log files, the store, widgets, the designer) subscribe to.

Kinds: ``run_status``, ``step_status``, ``log`` (one line), ``metric``. Callbacks run on the runner's
threads, so they must be quick; a failing subscriber is dropped from that event, never the run.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import OrderedDict, deque
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
    """Publish/subscribe for runner events; keeps each recent run's events so a late subscriber
    (``wait_for_completion(show_output=True)`` right after submit) can replay what it missed."""

    KEEP_RUNS = 50
    KEEP_EVENTS_PER_RUN = 20000

    def __init__(self):
        self._subs: list = []
        self._lock = threading.Lock()
        self._history: OrderedDict[str, deque] = OrderedDict()

    def subscribe(self, callback, run_id: str | None = None, replay: bool = False):
        """callback(event) for every event (of one run if run_id is given); returns an unsubscribe function.

        With ``replay`` (and a run_id) the run's earlier events are delivered first, in order.
        """
        target = _Replaying(callback) if replay and run_id else callback
        entry = (target, run_id)
        with self._lock:
            past = list(self._history.get(run_id, ())) if target is not callback else []
            self._subs.append(entry)
        if target is not callback:
            target.finish(past)

        def unsubscribe():
            with self._lock:
                if entry in self._subs:
                    self._subs.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            kept = self._history.get(event.run_id)
            if kept is None:
                kept = self._history[event.run_id] = deque(maxlen=self.KEEP_EVENTS_PER_RUN)
                while len(self._history) > self.KEEP_RUNS:
                    self._history.popitem(last=False)
            kept.append(event)
            subs = list(self._subs)
        for cb, run_id in subs:
            if run_id is None or run_id == event.run_id:
                _deliver(cb, event)


def _deliver(callback, event):
    try:
        callback(event)
    except Exception:  # noqa: BLE001 - an observer must never break a run
        traceback.print_exc()


class _Replaying:
    """Holds live events back until the replayed ones are delivered, so the subscriber sees one order."""

    def __init__(self, callback):
        self.callback = callback
        self._lock = threading.Lock()
        self._ready = False
        self._held: list = []

    def __call__(self, event):
        with self._lock:
            if not self._ready:
                self._held.append(event)
                return
        self.callback(event)

    def finish(self, past):
        for event in past:
            _deliver(self.callback, event)
        while True:
            with self._lock:
                if not self._held:
                    self._ready = True
                    return
                held, self._held = self._held, []
            for event in held:
                _deliver(self.callback, event)


bus = EventBus()
