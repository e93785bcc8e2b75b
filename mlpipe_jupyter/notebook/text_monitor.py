"""The run monitor as text, for a terminal IPython without a widget frontend.

Log lines print as ``[step] line``; every status change prints a progress line such as
``[2/3 done] train: completed (4.1s)``.
"""
from __future__ import annotations

import sys
import threading

from mlpipe_jupyter.running.events import bus
from mlpipe_jupyter.tracking.report import run_text
from mlpipe_jupyter.notebook.monitor import status_word


class TextMonitor:
    def __init__(self, run, stream=None):
        from mlpipe_jupyter.sdk.run import PipelineRun

        self.run = run
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        with self._lock:  # catch up with what happened before subscribing; events wait meanwhile
            self._unsubscribe = bus.subscribe(self._on_event, run._top_id())
            steps = run.get_steps() if isinstance(run, PipelineRun) else [run]
            self.words = {s.name: "not started" for s in steps}
            for s in steps:
                word = status_word(s.get_status(), s._row["reused_from"] is not None)
                if word not in ("not started", "queued"):
                    for line in s.get_log_text().splitlines():
                        self._print(f"[{s.name}] {line}")
                    self._progress(s.name, word, s._row["error"])

    def _print(self, text):
        print(text, file=self.stream, flush=True)

    def _on_event(self, event):
        with self._lock:
            if event.kind == "log":
                self._print(f"[{event.step}] {event.data['line']}")
            elif event.kind == "metric" and event.data.get("kind", "scalar") == "scalar":
                self._print(f"[{event.step}] {event.data['name']} = {event.data['value']}")
            elif event.kind == "step_status":
                self._progress(event.step, status_word(event.data["status"], bool(event.data.get("reused"))),
                               event.data.get("error"))

    def _progress(self, step, word, error=None):
        self.words[step] = word
        if word == "queued":
            return
        done = sum(w in ("completed", "reused", "failed", "canceled") for w in self.words.values())
        running = [n for n, w in self.words.items() if w == "running"]
        extra = f"; running: {', '.join(running)}" if running and word != "running" else ""
        error = f" - {error}" if error and word == "failed" else ""
        self._print(f"[{done}/{len(self.words)} done] {step}: {word}{error}{extra}")

    def wait(self):
        """Block until the run ends, then print its summary."""
        try:
            self.run.wait_for_completion(raise_on_error=False)
        finally:
            self.close()
        self._print(run_text(self.run, reasons=False))

    def close(self):
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
