"""The run queue: runs recorded Queued with the request that starts them, claimed by a server when a slot
is free. The count of running ones and the claim are one write transaction, so several servers on one
workspace never start the same run nor more than their limit between them."""
from __future__ import annotations

import json
import os
import time

from mlpipe_jupyter.status import ACTIVE_STATUSES, Status
from mlpipe_jupyter.store.processes import hostname, process_alive, process_start_time


class RunQueue:
    """The queue part of the store (mixed into ``Store``)."""

    def queue_run(self, row: dict, request: dict) -> None:
        """Record a top-level run as Queued, with what its starter needs (``request``, JSON)."""
        row = {**row, "status": Status.QUEUED.value, "created": row.get("created") or time.time(),
               "details": json.dumps(row.get("details") or {}, default=str)}
        with self.tx() as db:
            db.execute(f"INSERT INTO runs({', '.join(row)}) VALUES({', '.join('?' for _ in row)})", tuple(row.values()))
            db.execute("INSERT INTO run_requests VALUES(?, ?)", (row["id"], json.dumps(request)))

    def has_queued_runs(self) -> bool:
        """A read-only look, so an idle server takes no write lock."""
        return self.db.execute("SELECT 1 FROM runs r JOIN run_requests q ON q.run_id=r.id WHERE r.status=? LIMIT 1",
                               (Status.QUEUED.value,)).fetchone() is not None

    def claim_queued_runs(self, limit: int) -> list[tuple[str, dict]]:
        """Claim the oldest queued runs that fit under ``limit`` started ones (of every server), marking
        them Preparing in this process's name; returns (run id, request) for each."""
        started = ",".join(f"'{s}'" for s in ACTIVE_STATUSES if s != Status.QUEUED.value)
        me, me_start, host = os.getpid(), process_start_time(os.getpid()), hostname()
        with self.tx() as db:
            running = db.execute(f"SELECT runner_pid, runner_start, host FROM runs r JOIN run_requests q "
                                 f"ON q.run_id=r.id WHERE r.status IN ({started})").fetchall()
            # a run whose process died no longer takes a slot (the store's recovery marks it Failed)
            busy = sum(1 for r in running if r["host"] != host or process_alive(r["runner_pid"], r["runner_start"]))
            free = max(0, limit - busy)
            if not free:
                return []
            rows = db.execute("SELECT r.id, q.request FROM runs r JOIN run_requests q ON q.run_id=r.id "
                              "WHERE r.status=? ORDER BY r.created, r.rowid LIMIT ?",
                              (Status.QUEUED.value, free)).fetchall()
            for r in rows:
                db.execute("UPDATE runs SET status=?, runner_pid=?, runner_start=?, host=? WHERE id=?",
                           (Status.PREPARING.value, me, me_start, host, r["id"]))
        return [(r["id"], json.loads(r["request"])) for r in rows]

    def queued_request(self, run_id: str) -> dict | None:
        row = self.db.execute("SELECT request FROM run_requests WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else json.loads(row["request"])

    def start_queued_run(self, rows: list[dict]) -> bool:
        """The planned rows of a claimed run: its first row updates the queued one (details merged), the
        others are inserted, in one transaction; False (and nothing written) when it was canceled since."""
        top, rest = dict(rows[0]), rows[1:]
        details = top.pop("details", None)
        with self.tx() as db:
            row = db.execute("SELECT status FROM runs WHERE id=?", (top["id"],)).fetchone()
            if row is None or row["status"] != Status.PREPARING.value:
                return False
            fields = {k: v for k, v in top.items() if k not in ("id", "status", "created", "experiment")}
            self.update_run(top["id"], details=details, **fields)
            self.insert_runs(rest)
        return True
