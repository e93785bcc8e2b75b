"""The run monitor as text, for a terminal IPython without a widget frontend.

It follows the run (tracking/follower.py, whichever process runs it) and prints each event as the CLI
does: ``[step] line`` for log lines, and for every status change ``==> train: Completed [2/3 done]``.
"""
from __future__ import annotations

import sys
import threading

from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.sdk.run import PipelineRun
from mlpipe_jupyter.status import FINAL_STATUSES
from mlpipe_jupyter.tracking.follower import RunFollower
from mlpipe_jupyter.tracking.report import event_text, run_text


class TextMonitor:
    def __init__(self, run, stream=None):
        self.run = run
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        steps = run.get_steps() if isinstance(run, PipelineRun) else [run]
        self.status = {s.name: s.get_status() for s in steps}
        self.follower = RunFollower(run._store, run._top_id(), self._on_event,
                                    only=None if isinstance(run, PipelineRun) else run.id).start()

    def _on_event(self, event):
        with self._lock:
            progress = ""
            if event.kind == EventKind.STEP_STATUS:
                self.status[event.step] = event.data["status"]
                done = sum(s in FINAL_STATUSES for s in self.status.values())
                progress = f"[{done}/{len(self.status)} done]"
            text = event_text(event, progress=progress)
            if text is not None:
                print(text, file=self.stream, flush=True)

    def wait(self):
        """Block until the run ends, then print its summary."""
        try:
            self.run.wait_for_completion(raise_on_error=False)
            self.follower.done.wait()
        finally:
            self.close()
        print(run_text(self.run._store, self.run._top_id(), reasons=False), file=self.stream, flush=True)

    def close(self):
        self.follower.stop()
