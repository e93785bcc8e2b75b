"""Fires the workspace's schedules from a server: a daemon thread that looks every tick for schedules due.

Each firing is claimed first by moving the schedule's ``next_due`` on in one compare-and-set UPDATE, so
of several servers on one workspace exactly one fires a slot. The new ``next_due`` is the first slot
after now: a schedule due while no server ran fires once at the next start, never a burst. A
datastore schedule polls its folder and fires once the listing has changed and then held still for
one poll, so a multi-file upload gives one run. A firing that fails (a disabled or deleted pipeline)
is recorded on the schedule (``last_error``) and the loop goes on: nothing here stops the server.
"""
from __future__ import annotations

import time

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.sdk.published import trigger
from mlpipe_jupyter.sdk.recurrence import ScheduleRecurrence
from mlpipe_jupyter.sdk.schedule import datastore_fingerprint
from mlpipe_jupyter.server.background import BackgroundLoop


class Scheduler(BackgroundLoop):
    """Ticks over one workspace's schedules. ``minute_seconds`` and ``poll_seconds`` shorten a Minute
    schedule's minute and a datastore schedule's polling interval, for tests only."""

    name = "mlpipe scheduler"

    def __init__(self, workspace_path: str, tick_seconds: float = 1.0, minute_seconds: float = 60.0,
                 poll_seconds: float = 0.0, clock=time.time):
        super().__init__(workspace_path, tick_seconds)
        self.minute_seconds = minute_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock

    # -- one tick -----------------------------------------------------------------------------------------
    def tick(self) -> list[str]:
        """Fire what is due now; returns the ids of the runs started."""
        ws = self.workspace()
        if ws is None:
            return []
        started = []
        for row in ws._store.schedules(active_only=True):
            if row["next_due"] is None or row["next_due"] > self.clock():
                continue
            try:
                fire = self._claim(ws, row)
            except Exception as e:  # noqa: BLE001 - an unreadable datastore: recorded; the others go on
                message = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                ws._store.update_schedule(row["id"], last_error=f"Schedule '{row['name']}' could not be checked: "
                                                                f"{message}")
                self._say(f"mlpipe scheduler: schedule '{row['name']}' ({row['id']}): {message}")
                continue
            if fire:
                run_id = self._fire(ws, row)
                if run_id:
                    started.append(run_id)
        return started

    def _claim(self, ws, row) -> bool:
        """Move the schedule on; True when this process won the slot and a run is due."""
        now = self.clock()
        if row["recurrence"] is not None:
            recurrence = ScheduleRecurrence.from_dict(row["recurrence"])
            following = recurrence.next_time(now, row["anchor"], self.minute_seconds)
            return ws._store.claim_schedule(row["id"], row["next_due"], next_due=following)
        seconds = self.poll_seconds or 60.0 * (row["polling_interval"] or 5)
        following = now + seconds
        try:
            listing = datastore_fingerprint(ws, row["datastore_name"], row["path_on_datastore"])
        except Exception:
            ws._store.claim_schedule(row["id"], row["next_due"], next_due=following)  # polled again next time
            raise
        if listing == row["fingerprint"]:
            ws._store.claim_schedule(row["id"], row["next_due"], next_due=following, pending=None)
            return False
        if listing != row["pending"]:  # still changing: wait for it to hold still for one poll
            ws._store.claim_schedule(row["id"], row["next_due"], next_due=following, pending=listing)
            return False
        return ws._store.claim_schedule(row["id"], row["next_due"], next_due=following, fingerprint=listing,
                                        pending=None)

    def _fire(self, ws, row) -> str | None:
        body = {"ExperimentName": row["experiment_name"],
                "ParameterAssignments": dict(row["pipeline_parameters"] or {})}
        if row["data_path_parameter_name"]:
            body["DataPathAssignments"] = {row["data_path_parameter_name"]: {
                "DataStoreName": row["datastore_name"], "RelativePath": row["path_on_datastore"] or ""}}
        kind, target = (("pipeline", row["pipeline_id"]) if row["pipeline_id"] is not None
                        else ("endpoint", row["pipeline_endpoint_id"]))
        try:
            run_id = trigger(ws, kind, target, body, triggered_by=f"schedule:{row['id']}",
                             continue_on_step_failure=row["continue_on_step_failure"])
        except Exception as e:  # noqa: BLE001 - recorded on the schedule; the next slot tries again
            message = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            ws._store.update_schedule(row["id"], last_error=f"Schedule '{row['name']}' could not start a run: "
                                                            f"{message}")
            self._say(f"mlpipe scheduler: schedule '{row['name']}' ({row['id']}): {message}")
            return None
        ws._store.update_schedule(row["id"], last_run_id=run_id, last_error=None)
        return run_id
