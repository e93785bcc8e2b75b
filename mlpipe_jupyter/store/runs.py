"""Runs in the database: run and step rows, outputs, metrics, tags, the file-hash cache, and crash
recovery of runs whose process died."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.status import ACTIVE_STATUSES, FINAL_STATUSES, Status
from mlpipe_jupyter.store.processes import hostname, process_alive


def _row(row) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    try:
        d["details"] = json.loads(d.get("details") or "{}")
    except ValueError:  # a damaged row must not hide the rest of the history
        d["details"] = {"damaged": True}
    return d



class Runs:
    """The run part of the store (mixed into ``Store``)."""

    # -- runs ------------------------------------------------------------------------------------
    def insert_runs(self, rows: list[dict]) -> None:
        """Many runs in one transaction: a 200-step reuse must not pay 200 fsyncs. Everything is serialized
        before the write lock is taken, so a huge pipeline document never holds the workspace locked."""
        prepared = []
        for fields in rows:
            fields = dict(fields)
            fields.setdefault("created", time.time())
            if "details" in fields:
                fields["details"] = json.dumps(fields["details"], default=str)
            prepared.append((f"INSERT INTO runs({', '.join(fields)}) VALUES({', '.join('?' for _ in fields)})",
                             tuple(fields.values())))
        with self.tx() as db:
            for sql, values in prepared:
                db.execute(sql, values)

    def update_run(self, run_id: str, details: dict | None = None, **fields) -> None:
        """Set columns and merge ``details`` keys (shallow). The merge happens inside SQLite, so the write
        lock is held for one statement, whatever the size of what is stored."""
        sets, values = [f"{k}=?" for k in fields], list(fields.values())
        if details and not self._has_json_set():  # an SQLite without JSON functions: merge here
            with self.tx() as db:
                row = db.execute("SELECT details FROM runs WHERE id=?", (run_id,)).fetchone()
                merged = json.loads(row["details"] or "{}") if row else {}
                merged.update(details)
                db.execute(f"UPDATE runs SET {', '.join([*sets, 'details=?'])} WHERE id=?",
                           (*values, json.dumps(merged, default=str), run_id))
            return
        if details:
            paths = []
            for key, value in details.items():
                if not re.fullmatch(r"[A-Za-z0-9_]+", key):
                    raise ValueError(f"details key {key!r} is not a plain name")
                paths.append(f"'$.{key}', json(?)")
                values.append(json.dumps(value, default=str))
            sets.append(f"details=json_set(COALESCE(details, '{{}}'), {', '.join(paths)})")
        if not sets:
            return
        with self.tx() as db:
            db.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id=?", (*values, run_id))

    def request_cancel(self, run_id: str) -> bool:
        """Ask a run's runner, maybe in another process, to cancel it. Checked and set in one transaction,
        so a run that has just ended is never put back to CancelRequested; False when it had ended."""
        with self.tx() as db:
            row = db.execute("SELECT status, runner_pid FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None or row["status"] in FINAL_STATUSES:
                return False
            if row["status"] == Status.QUEUED and row["runner_pid"] is None:  # queued, never started: it never will
                self.update_run(run_id, status=Status.CANCELED, ended=time.time(), error="Canceled before it started.")
                return True
            self.update_run(run_id, status=Status.CANCEL_REQUESTED, details={"cancel_requested": True})
        return True

    def get_run(self, run_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return _row(row)

    def child_runs(self, parent_id: str, latest_first: bool = False) -> list[dict]:
        """A run's children in the order they were planned, or (``latest_first``, Azure's order) the one
        that started (or ended without starting) last first; those not yet started come last."""
        order = ("COALESCE(started, ended) IS NULL, COALESCE(started, ended) DESC, created DESC, rowid DESC"
                 if latest_first else "created, rowid")
        rows = self.db.execute(f"SELECT * FROM runs WHERE parent_id=? ORDER BY {order}", (parent_id,))
        return [_row(r) for r in rows]

    # -- child runs (Run.child_run, create_children) and the statuses their owner sets ----------------------
    def create_child_runs(self, parent_id: str, children: list[dict]) -> list[str]:
        """Child runs of ``parent_id`` (each: id, name, status, tags), in its experiment; an id taken
        already is skipped. Returns the ids created, in order."""
        created = []
        now = time.time()
        with self.tx() as db:
            parent = db.execute("SELECT experiment FROM runs WHERE id=?", (parent_id,)).fetchone()
            if parent is None:
                return []
            for i, c in enumerate(children):
                started = now if c["status"] == Status.RUNNING else None
                cur = db.execute(
                    "INSERT OR IGNORE INTO runs(id, experiment, kind, parent_id, name, status, created, started, "
                    "details) VALUES(?,?,?,?,?,?,?,?,?)",
                    (c["id"], parent["experiment"], "child", parent_id, c.get("name") or c["id"], str(c["status"]),
                     now + i * 1e-6, started, json.dumps(c.get("details") or {}, default=str)))
                if cur.rowcount:
                    created.append(c["id"])
                    self.set_tags(c["id"], c.get("tags") or {})
        return created

    def mark_run(self, run_id: str, status: str, error: str | None = None, replace_final: bool = False) -> bool:
        """Set a run's status as its owner says (start, complete, fail, cancel): a run that has ended keeps
        its end unless ``replace_final``. Returns whether it changed."""
        now = time.time()
        final = ",".join(f"'{s}'" for s in FINAL_STATUSES)
        guard = "" if replace_final else f" AND status NOT IN ({final})"
        with self.tx() as db:
            if status in FINAL_STATUSES:
                cur = db.execute(f"UPDATE runs SET status=?, ended=?, error=? WHERE id=?{guard}",
                                 (str(status), now, error, run_id))
            else:
                cur = db.execute(f"UPDATE runs SET status=?, started=COALESCE(started, ?) WHERE id=?{guard}",
                                 (str(status), now, run_id))
        return bool(cur.rowcount)

    def end_open_children(self, parent_id: str, status: str) -> None:
        """Child runs (and theirs) still open when their parent ends take its end, saying so unless it
        completed: nothing is left Running for ever."""
        active = ",".join(f"'{s}'" for s in ACTIVE_STATUSES)
        error = None if status == Status.COMPLETED else f"Ended with its parent run {parent_id} ({status})."
        with self.tx() as db:
            db.execute(
                "WITH RECURSIVE below(id) AS (SELECT id FROM runs WHERE parent_id=? AND kind='child' "
                "UNION SELECT r.id FROM runs r JOIN below b ON r.parent_id=b.id WHERE r.kind='child') "
                f"UPDATE runs SET status=?, ended=?, error=? WHERE id IN below AND status IN ({active})",
                (parent_id, str(status), time.time(), error))

    def add_properties(self, run_id: str, properties: dict) -> dict:
        """Add properties to a run: as in Azure they are immutable, so a key set already to another value
        is refused (and nothing is added). Returns all the run's properties."""
        with self.tx() as db:
            row = db.execute("SELECT details FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise UserError(f"No run with id '{run_id}' to add properties to.")
            have = dict(_row(row)["details"].get("properties") or {})
            clash = [k for k, v in properties.items() if k in have and have[k] != v]
            if clash:
                raise UserError(f"Run {run_id}: properties are immutable and '{clash[0]}' is set already to "
                                f"{have[clash[0]]!r} (asked: {properties[clash[0]]!r}); use a tag for a value that "
                                "changes.")
            have.update(properties)
            self.update_run(run_id, details={"properties": have})
        return have

    def find_reusable(self, reuse_key: str) -> dict | None:
        row = self.db.execute(
            "SELECT * FROM runs WHERE reuse_key=? AND status='Completed' ORDER BY ended DESC LIMIT 1",
            (reuse_key,),
        ).fetchone()
        return _row(row)

    def latest_step_run(self, step_name: str, experiment: str | None) -> dict | None:
        """The run to compare against when explaining a cache miss: same step, same experiment first."""
        for exp_clause, args in ((" AND experiment=?", (experiment,)), ("", ())):
            row = self.db.execute(
                "SELECT * FROM runs WHERE kind='step' AND name=? AND reuse_key IS NOT NULL "
                f"AND status IN ('Completed','Failed','Canceled'){exp_clause} ORDER BY created DESC LIMIT 1",
                (step_name, *args),
            ).fetchone()
            if row is not None:
                return _row(row)
        return None

    def list_runs(self, experiment: str | None = None, kinds=("pipeline", "script"), limit: int | None = None):
        q = f"SELECT * FROM runs WHERE kind IN ({','.join('?' for _ in kinds)})"
        args: list = list(kinds)
        if experiment:
            q += " AND experiment=?"
            args.append(experiment)
        q += " ORDER BY created DESC, rowid DESC"
        if limit:
            q += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.db.execute(q, args)]

    def run_ids_starting_with(self, prefix: str, limit: int = 6) -> list[str]:
        """Ids that begin with ``prefix``, latest first: a unique prefix is enough to name a run."""
        rows = self.db.execute("SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY created DESC, rowid DESC "
                               "LIMIT ?", (len(prefix), prefix, int(limit)))
        return [r["id"] for r in rows]

    # -- outputs -----------------------------------------------------------------------------------
    def set_outputs(self, run_id: str, outputs: dict[str, str]) -> None:
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO outputs VALUES(?,?,?)", [(run_id, k, v) for k, v in outputs.items()])

    def record_reused(self, run_id: str, outputs: dict[str, str], **fields) -> None:
        """A reused step in one write: the outputs it takes over and its final fields."""
        with self.tx():
            self.set_outputs(run_id, outputs)
            self.update_run(run_id, **fields)

    def get_outputs(self, run_id: str) -> dict[str, str]:
        return {r["name"]: r["digest"] for r in self.db.execute("SELECT name, digest FROM outputs WHERE run_id=?", (run_id,))}

    # -- metrics and tags ---------------------------------------------------------------------------
    def add_metrics(self, run_id: str, records: list[dict]) -> None:
        if not records:
            return
        with self.tx() as db:
            start = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]
            db.executemany(
                "INSERT INTO metrics VALUES(?,?,?,?,?,?)",
                [(run_id, start + i, r["name"], r.get("kind", "scalar"), json.dumps(r["value"], default=str),
                  r.get("ts", time.time())) for i, r in enumerate(records)],
            )

    def metrics_after(self, run_id: str, seq: int) -> list[dict]:
        """A run's metric records logged after the one numbered ``seq`` (-1: all), with their numbers."""
        rows = self.db.execute("SELECT seq, name, kind, value, ts FROM metrics WHERE run_id=? AND seq>? ORDER BY seq",
                               (run_id, seq))
        return [{"seq": r["seq"], "name": r["name"], "kind": r["kind"], "value": json.loads(r["value"]), "ts": r["ts"]}
                for r in rows]

    def get_metric_records(self, run_id: str) -> list[dict]:
        rows = self.db.execute("SELECT name, kind, value, ts FROM metrics WHERE run_id=? ORDER BY seq", (run_id,))
        return [{"name": r["name"], "kind": r["kind"], "value": json.loads(r["value"]), "ts": r["ts"]} for r in rows]

    def set_tags(self, run_id: str, tags: dict) -> None:
        if tags:
            with self.tx() as db:
                db.executemany("INSERT OR REPLACE INTO tags VALUES(?,?,?)", [(run_id, k, str(v)) for k, v in tags.items()])

    def get_tags(self, run_id: str) -> dict:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM tags WHERE run_id=?", (run_id,))}

    # -- file hash cache ------------------------------------------------------------------------------
    def cached_digests(self, paths: list[str]) -> dict[str, tuple]:
        out = {}
        db = self.db
        for i in range(0, len(paths), 500):
            chunk = paths[i:i + 500]
            q = f"SELECT * FROM file_hashes WHERE path IN ({','.join('?' for _ in chunk)})"
            for r in db.execute(q, chunk):
                out[r["path"]] = (r["size"], r["mtime_ns"], r["ctime_ns"], r["ino"], r["digest"])
        return out

    def remember_digests(self, rows: list[tuple]) -> None:
        if rows:
            with self.tx() as db:
                db.executemany("INSERT OR REPLACE INTO file_hashes VALUES(?,?,?,?,?,?)", rows)

    # -- experiments -----------------------------------------------------------------------------------
    def ensure_experiment(self, name: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO experiments(name, created) VALUES(?, ?)", (name, time.time()))

    # -- crash recovery ---------------------------------------------------------------------------------
    def recover_orphans(self) -> list[dict]:
        """Mark runs whose runner process died as Failed and kill what they left running; returns their rows.

        Called whenever a workspace is opened, so a kernel restart or ``kill -9`` never leaves a run
        that claims to be Running forever. Completed step runs of such a run stay reusable. What ran
        elsewhere than in a local process (a container) is the caller's to remove, from the rows.
        """
        active = ",".join(f"'{s}'" for s in ACTIVE_STATUSES)
        rows = [_row(r) for r in self.db.execute(f"SELECT * FROM runs WHERE status IN ({active})")]
        dead_runners = {}
        for r in rows:
            if r["parent_id"] is None and r["runner_pid"] and r["host"] == hostname():
                if not process_alive(r["runner_pid"], r["runner_start"]):
                    dead_runners[r["id"]] = r
        if not dead_runners:
            return []
        reason = "The process that ran this run (pid {pid}) ended before the run finished (kernel restart or kill)."
        now = time.time()
        recovered = []
        for r in rows:
            top = self._root_id(r)
            if top not in dead_runners:
                continue
            if r["pgid"] and process_alive(r["pgid"], r["pgid_start"]):
                with contextlib.suppress(OSError):
                    os.killpg(r["pgid"], signal.SIGKILL)
            msg = reason.format(pid=dead_runners[top]["runner_pid"])
            status = Status.FAILED if r["status"] in (Status.RUNNING, Status.PREPARING, Status.FINALIZING) or r["id"] == top else Status.CANCELED
            self.update_run(r["id"], status=status, ended=now, error=msg if status == Status.FAILED else "Not run: " + msg)
            recovered.append(r)
            self._remove_staging(r["id"])
        return recovered

    def _root_id(self, row: dict) -> str:
        """The top-level run a run belongs to (a step's child run is two levels down)."""
        seen = set()
        while row["parent_id"] is not None and row["id"] not in seen:
            seen.add(row["id"])
            parent = self.get_run(row["parent_id"])
            if parent is None:
                return row["parent_id"]
            row = parent
        return row["id"]

