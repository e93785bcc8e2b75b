"""Following a run wherever it executes: the one way every observer watches a run.

A run executing in this process is followed through the runner's events (replayed from its start, so
a late watcher misses nothing the bus still holds). A run executing elsewhere (``mlpipe run`` in a
terminal, another kernel, a REST trigger) is followed through the store: step statuses from the
database, new lines from each step's log file, new metrics by their sequence number. Either way the
watcher gets the same ``Event`` objects (``run_status``, ``step_status``, ``log``, ``metric``) and the
follower ends when the run does. ``mlpipe logs --follow``, ``wait_for_completion(show_output=True)``,
the text monitor and the notebook monitor all use it.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from mlpipe_jupyter.running.contract import LOG_FILE
from mlpipe_jupyter.running.control import RECOVER_SECONDS, active_execution
from mlpipe_jupyter.running.events import Event, EventKind, bus
from mlpipe_jupyter.running.step_output import LineSplitter
from mlpipe_jupyter.status import FINAL_STATUSES, Status

POLL_SECONDS = 0.2


def log_path(store, row) -> Path:
    """Where a step run's log is: a reused step's is its original run's."""
    return store.run_dir(row["reused_from"] or row["id"]) / LOG_FILE


class LogTail:
    """Reads a log file from where it last stopped, a chunk at a time, as bytes: a log may be larger than
    memory. Yields whole lines (or the head of a line longer than a chunk); with ``final``, the rest."""

    CHUNK = 1 << 20

    def __init__(self):
        self.path = None
        self.offset = 0

    def read(self, path, final: bool = False) -> Iterator[bytes]:
        if path != self.path:  # a step decided to reuse an earlier run: its log lives there
            self.path, self.offset = path, 0
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(self.offset)
            partial = b""
            while chunk := f.read(self.CHUNK):
                data = partial + chunk
                end = data.rfind(b"\n") + 1
                if end == 0 and len(data) > self.CHUNK:  # no end in sight: hand the line over in parts
                    end = len(data)
                if end:
                    self.offset += end
                    yield data[:end]
                partial = data[end:]
            if final and partial:
                self.offset += len(partial)
                yield partial


class RunFollower:
    """Calls ``on_event(event)`` for everything a run does, from now (or from its start: ``replay``) to
    its end; ``only`` limits it to one step run. ``start()`` follows in a thread, ``follow()`` here."""

    def __init__(self, store, run_id: str, on_event: Callable[[Event], None], only: str | None = None,
                 poll_seconds: float = POLL_SECONDS):
        self.store = store
        top = store.get_run(run_id)
        self.top_id = top["parent_id"] or top["id"]
        self.only = only
        self.on_event = on_event
        self.poll_seconds = poll_seconds
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe = None

    # -- control ------------------------------------------------------------------------------------------
    def start(self) -> "RunFollower":
        self._thread = threading.Thread(target=self.follow, name=f"follow-{self.top_id[-8:]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def follow(self, timeout: float | None = None) -> None:
        """Deliver events until the run ends (or ``timeout``, or ``stop()``)."""
        try:
            execution = active_execution(self.top_id)
            if execution is not None:
                self._unsubscribe = bus.subscribe_unless_ended(self._live, self.top_id)
                if self._unsubscribe is not None:
                    self._wait_live(execution, timeout)
                    return
            self._poll(timeout)
        finally:
            self.done.set()

    # -- a run of this process: the runner's events ---------------------------------------------------------
    def _live(self, event: Event) -> None:
        if self.only and event.step_run_id not in (None, self.only):
            return
        self.on_event(event)

    def _wait_live(self, execution, timeout) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set() and not execution.done.wait(self.poll_seconds):
            if deadline is not None and time.monotonic() > deadline:
                break
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None

    # -- a run of another process: the store and the log files ---------------------------------------------
    def _poll(self, timeout) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[str, tuple] = {}  # step run id -> (status, reused_from) already told
        tails: dict[str, LogTail] = {}
        splitters: dict[str, LineSplitter] = {}
        metric_seq: dict[str, int] = {}
        last_recovery = time.monotonic()
        while True:
            top = self.store.get_run(self.top_id)
            ended = top["status"] in FINAL_STATUSES
            rows = self.store.child_runs(self.top_id) if top["kind"] == "pipeline" else [top]
            for row in rows:
                if self.only and row["id"] != self.only:
                    continue
                self._step(row, seen, tails, splitters, metric_seq, final=ended or row["status"] in FINAL_STATUSES)
            if ended:
                if top["kind"] == "pipeline" and not self.only:
                    self.on_event(Event(EventKind.RUN_STATUS, self.top_id, data={"status": top["status"], "error": top["error"]}))
                return
            if self._stop.wait(self.poll_seconds) or (deadline is not None and time.monotonic() > deadline):
                return
            if time.monotonic() - last_recovery > RECOVER_SECONDS:
                self.store.recover_orphans()
                last_recovery = time.monotonic()

    def _step(self, row, seen, tails, splitters, metric_seq, final) -> None:
        """A step's new status, lines and metrics. A reused step says only its status: it did not run in
        this run (its lines and metrics are its original run's), as the runner's events have it too."""
        name, rid = row["name"], row["id"]
        status = (row["status"], row["reused_from"])
        started = row["status"] not in (Status.NOT_STARTED, Status.QUEUED) and not row["reused_from"]
        if status != seen.get(rid) and (row["status"] != Status.NOT_STARTED or rid in seen):
            seen[rid] = status
            if row["status"] in FINAL_STATUSES and not row["reused_from"]:  # lines and metrics first
                self._lines(row, tails, splitters, final=True)
                self._metrics(row, metric_seq)
            self.on_event(Event(EventKind.STEP_STATUS, self.top_id, name, rid, {
                "status": row["status"], "reused": row["reused_from"] is not None, "reused_from": row["reused_from"],
                "reuse_reason": row["reuse_reason"], "error": row["error"], "started": row["started"],
                "ended": row["ended"]}))
            return
        if started:
            self._lines(row, tails, splitters, final=final)
            self._metrics(row, metric_seq)

    def _lines(self, row, tails, splitters, final) -> None:
        tail = tails.setdefault(row["id"], LogTail())
        splitter = splitters.setdefault(row["id"], LineSplitter())
        for piece in tail.read(log_path(self.store, row), final=final):
            for line in splitter.feed(piece):
                self.on_event(Event(EventKind.LOG, self.top_id, row["name"], row["id"], {"line": line}))
        if final:
            for line in splitter.flush():
                self.on_event(Event(EventKind.LOG, self.top_id, row["name"], row["id"], {"line": line}))

    def _metrics(self, row, metric_seq) -> None:
        origin = row["reused_from"] or row["id"]
        after = metric_seq.get(origin, -1)
        for rec in self.store.metrics_after(origin, after):
            metric_seq[origin] = rec["seq"]
            self.on_event(Event(EventKind.METRIC, self.top_id, row["name"], row["id"],
                                {"name": rec["name"], "kind": rec["kind"], "value": rec["value"]}))
