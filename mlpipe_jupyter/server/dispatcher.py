"""Starts queued runs from a server: a daemon thread that claims queued runs while fewer than
``max_concurrent`` are started (counted in the store, over every server on the workspace) and launches
each as ``mlpipe _trigger RUN_ID`` in a session of its own, so stopping the server never ends a run.
Runs still queued when the server stops wait for the next server."""
from __future__ import annotations

import subprocess
import sys

from mlpipe_jupyter.server.background import BackgroundLoop
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.store import process_start_time

STARTER_LOG = "starter.log"


class Dispatcher(BackgroundLoop):
    name = "mlpipe dispatcher"

    def __init__(self, workspace_path: str, max_concurrent: int, tick_seconds: float = 0.25,
                 busy_tick_seconds: float = 0.05):
        super().__init__(workspace_path, tick_seconds)
        self.max_concurrent = max(1, int(max_concurrent))
        self.busy_tick_seconds = busy_tick_seconds  # while runs wait: a slot freed is taken at once
        self._waiting = False
        self._children: list[subprocess.Popen] = []

    def next_wait(self) -> float:
        return self.busy_tick_seconds if self._waiting else self.tick_seconds

    def tick(self) -> list[str]:
        """Start what fits now; returns the ids of the runs started."""
        ws = self.workspace()
        ended = [p for p in self._children if p.poll() is not None]  # reaped: an ended child is no zombie
        self._children = [p for p in self._children if p.returncode is None]
        if ws is not None and any(p.returncode for p in ended):
            ws._store.recover_orphans()  # a starter that crashed leaves no run Preparing for ever
        self._waiting = ws is not None and ws._store.has_queued_runs()
        if not self._waiting:
            return []
        store = ws._store
        started = []
        for run_id, _ in store.claim_queued_runs(self.max_concurrent):
            try:
                folder = store.run_dir(run_id)
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / STARTER_LOG, "wb") as errors:  # what a crash of the starter said
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "mlpipe_jupyter.cli", "--workspace", str(ws.path), "_trigger", run_id],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
            except OSError as e:
                store.mark_run(run_id, Status.FAILED, f"The process for run {run_id} could not be started: {e}")
                continue
            self._children.append(proc)
            store.update_run(run_id, runner_pid=proc.pid, runner_start=process_start_time(proc.pid))
            started.append(run_id)
        return started
