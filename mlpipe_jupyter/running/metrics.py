"""Metrics following: what running steps log with ``Run.get_context()`` reaches the store and the
run's events while they run, read from each step's metrics file as untrusted data."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from mlpipe_jupyter.model.names import REGISTRY_NAME, REGISTRY_NAME_MAX
from mlpipe_jupyter.running.contract import METRICS_FILE, PARENT_FIELD
from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.running.step_files import open_regular


class MetricsFollower:
    """Tails the JSONL files that running steps' Run.get_context() write, recording metrics and tags as
    they come: one thread per run, started with its first step, rather than one per step."""

    POLL_SECONDS = 0.05

    def __init__(self, store, publish, name: str):
        self.store, self.publish, self.name = store, publish, name  # publish(kind, step, **data)
        self._tails: dict[str, MetricsTail] = {}  # step run id -> its file
        self._models: dict[str, list[dict]] = {}  # step run id -> models it asked to register, once unfollowed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, step: str, run_id: str, path: Path, parent_id: str | None = None):
        """Follow a step's file; records marked for the parent go to ``parent_id`` (its pipeline run)."""
        with self._lock:
            self._tails[run_id] = MetricsTail(step, run_id, path, parent_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name=f"metrics-{self.name}")
                self._thread.start()

    def unfollow(self, run_id: str) -> list[str]:
        """Stop following a step's file after reading what is left, so its metrics are all recorded;
        returns what to say in the step's log about that file."""
        with self._lock:
            tail = self._tails.pop(run_id, None)
        if tail is None:
            return []
        tail.drain(self.store, self.publish, final=True)
        if tail.models:
            with self._lock:
                self._models[run_id] = tail.models
        return tail.notes

    def take_models(self, run_id: str) -> list[dict]:
        """The models a step asked to register (``register_model`` records), for the runner to register
        once the step has succeeded."""
        with self._lock:
            return self._models.pop(run_id, [])

    def close(self):
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self):
        while not self._stop.wait(self.POLL_SECONDS):
            with self._lock:
                tails = list(self._tails.values())
            for tail in tails:
                tail.drain(self.store, self.publish)


class MetricsTail:
    """Reads one step's metrics file as untrusted data: a regular file only (opened without following a
    link, never blocking on a FIFO), at most ``READ_BYTES`` a poll, records of at most ``MAX_RECORD`` bytes
    and ``MAX_BYTES`` in all; anything else is ignored and said once in the step's log."""

    READ_BYTES = 1 << 20
    MAX_RECORD = 1 << 20
    MAX_BYTES = 256 << 20
    KINDS = ("scalar", "list", "row", "table", "image")

    def __init__(self, step: str, run_id: str, path: Path, parent_id: str | None = None):
        self.step, self.run_id, self.path, self.parent_id = step, run_id, path, parent_id
        self._fd: int | None = None
        self._read = 0
        self._partial = b""
        self._skipping = False  # inside a record longer than MAX_RECORD
        self._refused = False
        self.notes: list[str] = []
        self.models: list[dict] = []  # register_model records, registered only if the step succeeds
        self._lock = threading.Lock()  # the run's follower thread and the step's last read

    def drain(self, store, publish, final: bool = False):
        with self._lock:
            if self._refused or not self._open(publish):
                return
            while self._read < self.MAX_BYTES:
                data = os.read(self._fd, min(self.READ_BYTES, self.MAX_BYTES - self._read))
                if not data:
                    break
                self._read += len(data)
                self._records(store, publish, data)
                if not final:
                    break
            if final and self._read >= self.MAX_BYTES:
                self.notes.append(f"mlpipe: the step's {METRICS_FILE} passed {self.MAX_BYTES >> 20} MiB; the rest "
                                  "of its metrics were ignored.")
            if final:
                os.close(self._fd)
                self._fd = None
                self._refused = True

    def _open(self, publish) -> bool:
        if self._fd is not None:
            return True
        self._fd = open_regular(self.path)
        if self._fd is None and os.path.lexists(self.path):
            self._refused = True
            self.notes.append(f"mlpipe: the step's {METRICS_FILE} is not a regular file; its metrics were ignored.")
            publish(EventKind.LOG, self.step, line=self.notes[-1])
        return self._fd is not None

    def _records(self, store, publish, data: bytes):
        lines = data.split(b"\n")
        lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        if len(self._partial) > self.MAX_RECORD:
            self._partial, self._skipping = b"", True
        metrics, tags, for_parent = [], {}, []
        for raw in lines:
            if self._skipping:  # the rest of an overlong record
                self._skipping = False
                continue
            rec = parse_record(raw)
            if rec is None:
                continue
            if rec.get(PARENT_FIELD):  # Run.get_context().parent: a script run has none, so it is dropped
                if self.parent_id is not None:
                    for_parent.append(rec)
                continue
            if rec["type"] == "tag":
                tags[rec["key"]] = rec["value"]
            elif rec["type"] == "model":
                self.models.append(rec)
            else:
                metrics.append(rec)
        if for_parent:
            store.set_tags(self.parent_id, {r["key"]: r["value"] for r in for_parent if r["type"] == "tag"})
            store.add_metrics(self.parent_id, [r for r in for_parent if r["type"] == "metric"])
        if tags:
            store.set_tags(self.run_id, tags)
        if metrics:
            store.add_metrics(self.run_id, metrics)
            for m in metrics:
                publish(EventKind.METRIC, self.step, name=m["name"], kind=m["kind"], value=m["value"])


def parse_record(raw: bytes) -> dict | None:
    """A metric or tag record as Run.get_context() writes it, or None for anything else."""
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    if rec.get("type") == "tag" and isinstance(rec.get("key"), str) and len(rec["key"]) <= 255:
        return {"type": "tag", "key": rec["key"], "value": str(rec.get("value", "")),
                PARENT_FIELD: rec.get(PARENT_FIELD) is True}
    if rec.get("type") == "metric" and isinstance(rec.get("name"), str) and len(rec["name"]) <= 255 \
            and rec.get("kind", "scalar") in MetricsTail.KINDS and "value" in rec:
        ts = rec.get("ts")
        return {"type": "metric", "name": rec["name"], "kind": rec.get("kind", "scalar"), "value": rec["value"],
                "ts": ts if isinstance(ts, (int, float)) else time.time(), PARENT_FIELD: rec.get(PARENT_FIELD) is True}
    if rec.get("type") == "model":
        return _model_record(rec)
    return None


def _model_record(rec: dict) -> dict | None:
    """A register_model record, if its name is a model name and its path stays inside the run."""
    name, path = rec.get("name"), rec.get("path")
    if not (isinstance(name, str) and REGISTRY_NAME.match(name) and len(name) <= REGISTRY_NAME_MAX):
        return None
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        return None
    texts = [rec.get(k) if isinstance(rec.get(k), dict) else {} for k in ("tags", "properties")]
    tags, properties = ({str(k): str(v) for k, v in t.items()} for t in texts)
    description = rec.get("description")
    return {"type": "model", "name": name, "path": path, "tags": tags, "properties": properties,
            "description": None if description is None else str(description),
            "details": rec["details"] if isinstance(rec.get("details"), dict) else {}}
