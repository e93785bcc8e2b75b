"""Schedules of published pipelines and endpoints. Each schedule row keeps when it is next due; a
server fires a slot only after moving ``next_due`` on with a compare-and-set, so several servers on
one workspace fire each slot once without electing a leader."""
from __future__ import annotations

import json
import time
import uuid

_JSON = ("recurrence", "pipeline_parameters")
_FIELDS = {"name", "description", "status", "pipeline_id", "pipeline_endpoint_id", "experiment_name", "recurrence",
           "pipeline_parameters", "datastore_name", "polling_interval", "data_path_parameter_name",
           "continue_on_step_failure", "path_on_datastore", "anchor", "next_due", "fingerprint", "pending", "last_run_id",
           "last_error"}


def _row(row) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    for key in _JSON:
        d[key] = json.loads(d[key]) if d[key] is not None else None
    if d["continue_on_step_failure"] is not None:
        d["continue_on_step_failure"] = bool(d["continue_on_step_failure"])
    return d


def _stored(column, value):
    if column in _JSON:
        return None if value is None else json.dumps(value)
    if column == "continue_on_step_failure" and value is not None:
        return int(bool(value))
    return value


class Schedules:
    """The schedule part of the store (mixed into ``Store``)."""

    def add_schedule(self, **fields) -> dict:
        assert set(fields) <= _FIELDS, fields
        sid = str(uuid.uuid4())
        now = time.time()
        columns = ["id", "created", "updated", *fields]
        values = [sid, now, now, *(_stored(c, v) for c, v in fields.items())]
        with self.tx() as db:
            db.execute(f"INSERT INTO schedules({', '.join(columns)}) VALUES({', '.join('?' * len(columns))})",
                       values)
        return self.schedule(sid)

    def schedule(self, schedule_id: str) -> dict | None:
        return _row(self.db.execute("SELECT * FROM schedules WHERE id=?", (schedule_id,)).fetchone())

    def schedules(self, active_only: bool = True, pipeline_id=None, pipeline_endpoint_id=None) -> list[dict]:
        """Newest first, as the other registries list."""
        where, args = [], []
        if active_only:
            where.append("status='Active'")
        if pipeline_id is not None:
            where.append("pipeline_id=?")
            args.append(pipeline_id)
        if pipeline_endpoint_id is not None:
            where.append("pipeline_endpoint_id=?")
            args.append(pipeline_endpoint_id)
        sql = "SELECT * FROM schedules" + (f" WHERE {' AND '.join(where)}" if where else "")
        return [_row(r) for r in self.db.execute(sql + " ORDER BY created DESC, rowid DESC", args)]

    def update_schedule(self, schedule_id: str, **fields) -> None:
        assert set(fields) <= _FIELDS, fields
        if not fields:
            return
        sets = ", ".join(f"{c}=?" for c in fields)
        with self.tx() as db:
            db.execute(f"UPDATE schedules SET {sets}, updated=? WHERE id=?",
                       [*(_stored(c, v) for c, v in fields.items()), time.time(), schedule_id])

    def claim_schedule(self, schedule_id: str, seen_next_due: float, **fields) -> bool:
        """Set ``fields`` (``next_due`` among them) only if the schedule is still active and still due at
        ``seen_next_due``; True for the one caller that did it, which alone fires the slot."""
        assert "next_due" in fields and set(fields) <= _FIELDS, fields
        sets = ", ".join(f"{c}=?" for c in fields)
        with self.tx() as db:
            cur = db.execute(f"UPDATE schedules SET {sets} WHERE id=? AND next_due=? AND status='Active'",
                             [*(_stored(c, v) for c, v in fields.items()), schedule_id, seen_next_due])
            return cur.rowcount == 1
