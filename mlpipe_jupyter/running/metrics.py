"""Metrics following: what running steps log with ``Run.get_context()`` reaches the store and the
run's events while they run, read from each step's metrics file as untrusted data."""
from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import REGISTRY_NAME, REGISTRY_NAME_MAX
from mlpipe_jupyter.running.contract import CHILD_FIELD, CHILDREN_DIR, METRICS_FILE, PARENT_FIELD
from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.running.step_files import collect_run_files, open_regular
from mlpipe_jupyter.status import FINAL_STATUSES, Status

CHILD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")  # what a child run id written by a step may be
CHILD_STATUSES = (Status.RUNNING, *FINAL_STATUSES)  # what a step may set on its child runs


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


def not_regular(path: Path) -> bool:
    """Whether ``path`` is there and is not a regular file (a link, a FIFO). Asked after an open failed:
    the step may have made its file just after that attempt, which must not count against it."""
    try:
        return not stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


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
        self.children: list[str] = []  # ids of the child runs the step created
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
                self.keep_children_files(store)

    def _open(self, publish) -> bool:
        if self._fd is not None:
            return True
        self._fd = open_regular(self.path)
        if self._fd is None and not_regular(self.path):
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
        metrics, tags, for_parent, statuses = [], {}, [], []
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
            target = rec.get(CHILD_FIELD) or self.run_id
            if target != self.run_id and target not in self.children:
                continue  # about a run this step did not create
            if rec["type"] == "child":
                self._create_child(store, target, rec)
            elif rec["type"] == "status":
                if target != self.run_id:  # the step's own status is the runner's to set
                    statuses.append((target, rec))
            elif rec["type"] == "properties":
                self._add_properties(store, publish, target, rec["properties"])
            elif rec["type"] == "tag":
                tags.setdefault(target, {})[rec["key"]] = rec["value"]
            elif rec["type"] == "model":
                if target == self.run_id:
                    self.models.append(rec)
            else:
                metrics.append((target, rec))
        if for_parent:
            store.set_tags(self.parent_id, {r["key"]: r["value"] for r in for_parent if r["type"] == "tag"})
            store.add_metrics(self.parent_id, [r for r in for_parent if r["type"] == "metric"])
        for target, values in tags.items():
            store.set_tags(target, values)
        for target in dict.fromkeys(t for t, _ in metrics):
            store.add_metrics(target, [m for t, m in metrics if t == target])
        for target, m in metrics:
            if target == self.run_id:
                publish(EventKind.METRIC, self.step, name=m["name"], kind=m["kind"], value=m["value"])
        for target, rec in statuses:  # after what was logged before them
            store.mark_run(target, rec["status"], rec["error"])

    def _create_child(self, store, parent: str, rec: dict):
        """A child run the step created (``child_run``, ``create_children``) under itself or one of its
        children; an id taken already is not the step's to use."""
        child = {"id": rec["id"], "name": rec["name"], "status": rec["status"], "tags": rec["tags"]}
        if store.create_child_runs(parent, [child]):
            self.children.append(rec["id"])

    def _add_properties(self, store, publish, target: str, properties: dict):
        try:
            store.add_properties(target, properties)
        except UserError as e:  # the script was told already (its add_properties checks); said in the log too
            self.notes.append(f"mlpipe: {e}")
            publish(EventKind.LOG, self.step, line=self.notes[-1])

    def keep_children_files(self, store) -> None:
        """What each child run uploaded (in the step's run folder, under CHILDREN_DIR) becomes its files."""
        for child in self.children:
            left = collect_run_files(self.path.parent / CHILDREN_DIR / child, store.run_dir(child))
            if left:
                self.notes.append(f"mlpipe: not kept with child run {child}'s files: " + "; ".join(left))


def parse_record(raw: bytes) -> dict | None:
    """A record as Run.get_context() writes it (a metric, tag, model, child run, status or properties),
    with the child run it is about, or None for anything else."""
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    child = rec.get(CHILD_FIELD)
    if child is not None and not (isinstance(child, str) and CHILD_ID.match(child)):
        return None
    parsed = _record(rec)
    if parsed is not None and child is not None:
        parsed[CHILD_FIELD] = child
    return parsed


def _record(rec: dict) -> dict | None:
    kind = rec.get("type")
    if kind == "child" and isinstance(rec.get("id"), str) and CHILD_ID.match(rec["id"]):
        tags = rec.get("tags") if isinstance(rec.get("tags"), dict) else {}
        return {"type": "child", "id": rec["id"], "name": str(rec.get("name") or rec["id"])[:255],
                "status": Status.RUNNING if rec.get("status") == Status.RUNNING else Status.NOT_STARTED,
                "tags": {str(k)[:255]: str(v) for k, v in tags.items()}}
    if kind == "status" and rec.get("status") in CHILD_STATUSES:
        error = rec.get("error")
        return {"type": "status", "status": rec["status"], "error": None if error is None else str(error)}
    if kind == "properties" and isinstance(rec.get("properties"), dict):
        return {"type": "properties", "properties": {str(k)[:255]: str(v) for k, v in rec["properties"].items()}}
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
