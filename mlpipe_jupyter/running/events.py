"""Runner events: what observers (log files, the store, widgets, the designer) subscribe to.

Kinds (``EventKind``): ``run_status``, ``step_status``, ``log`` (one line), ``metric``. Callbacks run
on the runner's threads, so they must be quick; a failing subscriber is dropped from that event,
never the run.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum

from mlpipe_jupyter.status import FINAL_STATUSES


class EventKind(str, Enum):
    """What an event tells: a str enum, so it reads and compares as its name ("log")."""
    RUN_STATUS = "run_status"  # data: status, error
    STEP_STATUS = "step_status"  # data: status and the step's changed fields (started, ended, reused...)
    LOG = "log"  # data: line
    METRIC = "metric"  # data: name, kind, value

    def __str__(self) -> str:
        return self.value


@dataclass
class Event:
    kind: EventKind
    run_id: str  # the top-level run
    step: str | None = None
    step_run_id: str | None = None
    data: dict = field(default_factory=dict)
    ts: float = field(default_factory=time.time)


class EventBus:
    """Publish/subscribe for runner events; keeps each running run's recent events so a late subscriber
    (``wait_for_completion(show_output=True)`` right after submit) can replay what it missed.

    What is kept is bounded by bytes, not by count: log lines can be of any length. When a run ends its
    history is let go; by then its lines are in its log files, which a late reader reads instead.
    """

    KEEP_RUNS = 50
    # A late subscriber needs a run's recent past only (the whole log is in the run's files): 4 MiB is
    # tens of thousands of ordinary lines, or a few hundred 10 kB ones, per run, and 16 MiB caps what a
    # kernel holds however many runs go at once. Status events are never dropped (a few per step).
    KEEP_BYTES_PER_RUN = 4 << 20
    KEEP_BYTES = 16 << 20
    KEEP_ENDED = 10_000  # ids of ended runs, so an event coming after the end starts no new history

    def __init__(self):
        self._subs: list = []
        self._lock = threading.Lock()
        self._history: OrderedDict[str, _History] = OrderedDict()
        self._bytes = 0
        self._ended: OrderedDict[str, None] = OrderedDict()

    def subscribe(self, callback, run_id: str | None = None, replay: bool = False):
        """callback(event) for every event (of one run if run_id is given); returns an unsubscribe function.

        With ``replay`` (and a run_id) the run's earlier events that are still kept are delivered first, in order.
        """
        return self._subscribe(callback, run_id, replay)

    def subscribe_unless_ended(self, callback, run_id: str):
        """Like ``subscribe(callback, run_id, replay=True)``, but returns None, subscribing nothing, when
        the run has already ended: its events are gone then, and its log files hold its lines."""
        return self._subscribe(callback, run_id, True, unless_ended=True)

    def _subscribe(self, callback, run_id, replay, unless_ended=False):
        target = _Replaying(callback) if replay and run_id else callback
        entry = (target, run_id)
        with self._lock:
            if unless_ended and run_id in self._ended:
                return None
            kept = self._history.get(run_id)
            past = kept.events() if kept is not None and target is not callback else []
            self._subs.append(entry)
        if target is not callback:
            target.finish(past)  # from a copy: the run may end, and its history go, meanwhile

        def unsubscribe():
            with self._lock:
                if entry in self._subs:
                    self._subs.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        size = _size(event)
        with self._lock:
            if event.run_id not in self._ended:
                if _ends_run(event):
                    # callbacks run below, synchronously: every listener has caught up when publish returns,
                    # and a subscriber still replaying works from its own copy of the past
                    self._release(event.run_id)
                else:
                    self._keep(event, size)
            subs = list(self._subs)
        for cb, run_id in subs:
            if run_id is None or run_id == event.run_id:
                _deliver(cb, event)

    def history_bytes(self, run_id: str | None = None) -> int:
        """Estimated bytes of events kept for one run, or for all runs."""
        with self._lock:
            if run_id is None:
                return self._bytes
            kept = self._history.get(run_id)
            return kept.bytes if kept is not None else 0

    def _keep(self, event, size):
        kept = self._history.get(event.run_id)
        if kept is None:
            kept = self._history[event.run_id] = _History()
            while len(self._history) > self.KEEP_RUNS:
                self._bytes -= self._history.popitem(last=False)[1].bytes
        kept.add(event, size)
        self._bytes += size
        if kept.bytes > self.KEEP_BYTES_PER_RUN:
            self._bytes -= kept.drop_oldest(kept.bytes - self.KEEP_BYTES_PER_RUN)
        for other in self._history.values():  # over the total: the oldest runs' oldest lines go first
            if self._bytes <= self.KEEP_BYTES:
                break
            self._bytes -= other.drop_oldest(self._bytes - self.KEEP_BYTES)

    def _release(self, run_id):
        kept = self._history.pop(run_id, None)
        if kept is not None:
            self._bytes -= kept.bytes
        self._ended[run_id] = None
        while len(self._ended) > self.KEEP_ENDED:
            self._ended.popitem(last=False)


class _History:
    """One run's kept events in order: status events that outlived older lines, then the recent ones."""

    def __init__(self):
        self.pinned: list[Event] = []  # all older than anything in ``recent``
        self.recent: deque = deque()  # (event, size)
        self.bytes = 0

    def add(self, event, size):
        self.recent.append((event, size))
        self.bytes += size

    def events(self) -> list[Event]:
        return [*self.pinned, *(event for event, _ in self.recent)]

    def drop_oldest(self, wanted: int) -> int:
        """Drop the oldest log and metric events until ``wanted`` bytes are freed (or none are left);
        returns the bytes freed. Status events on the way are kept, in order."""
        freed = 0
        while freed < wanted and self.recent:
            event, size = self.recent.popleft()
            if event.kind in _STATUS_KINDS:
                self.pinned.append(event)
            else:
                freed += size
        self.bytes -= freed
        return freed


_STATUS_KINDS = (EventKind.RUN_STATUS, EventKind.STEP_STATUS)
_EVENT_OVERHEAD = 450  # bytes an Event with its data dict costs besides the data's text (measured, CPython 3.11)


def _size(event) -> int:
    """Roughly what keeping an event costs: a fixed overhead plus its data's text (mostly a log line)."""
    return _EVENT_OVERHEAD + sum(len(key) + (len(value) if isinstance(value, str) else len(repr(value)))
                                 for key, value in event.data.items())


def _ends_run(event) -> bool:
    """A pipeline run ends with a final run_status; a single script run with its own final step_status."""
    if event.data.get("status") not in FINAL_STATUSES:
        return False
    return event.kind == EventKind.RUN_STATUS or (event.kind == EventKind.STEP_STATUS and event.step_run_id == event.run_id)


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
