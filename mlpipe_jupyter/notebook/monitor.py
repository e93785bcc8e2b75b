"""The live run monitor: an ipywidgets view of a run, fed by the runner's events.

It starts from what the store holds (so a reopened notebook shows the run as it ended), then
subscribes to the run's events. Events arrive on the runner's threads and are written into widget
traits from there (ipywidgets sends trait changes from any thread), so the kernel's main thread is
never busy. Status changes go out at once; log lines and metrics are coalesced by a small timer
thread, at most one update per step every ``FLUSH_SECONDS``, so a chatty step cannot flood the page.

Page contract (tests and styles rely on it): a ``VBox`` with class ``mlpipe-monitor``; one row per
step with classes ``mlpipe-step-row`` and ``mlpipe-step-<name>``; in each row a ``Label`` of class
``mlpipe-status`` whose value is one of ``tracking.report.STATUS_WORDS``, a log tail of class ``mlpipe-log`` and the
error of a failed step (class ``mlpipe-error``, red); one Cancel button of class ``mlpipe-cancel``
in the header, for the whole run.
"""
from __future__ import annotations

import html
import threading
import time
import weakref
from collections import deque

import ipywidgets as widgets

from mlpipe_jupyter.notebook.metric_charts import MetricsPanel, run_file
from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.sdk.run import PipelineRun
from mlpipe_jupyter.status import FINAL_STATUSES, Status
from mlpipe_jupyter.tracking.follower import RunFollower
from mlpipe_jupyter.tracking.report import duration, run_text, status_word

FLUSH_SECONDS = 0.05
TICK_SECONDS = 1.0
TAIL_LINES = 200  # the log pane's lines; it scrolls, anchored at the newest
_COLOR = {"running": "#1565c0", "completed": "#2e7d32", "reused": "#558b2f", "failed": "#c62828",
          "canceled": "#757575", "queued": "#6d4c41", "not started": "#9e9e9e"}

_monitors: dict[str, list] = {}  # run id -> weak references to its monitors
_monitors_lock = threading.Lock()


def monitors_for(run_id: str) -> list["RunMonitor"]:
    """The live monitors of a run, oldest first (for tests and tools)."""
    with _monitors_lock:
        return [m for m in (ref() for ref in _monitors.get(run_id, [])) if m is not None]


class StepRow:
    """One step: its widgets and the state they show."""

    def __init__(self, name: str):
        self.name = name
        self.word = "not started"
        self.started = self.ended = None
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)
        self.error_text = ""
        self.title = widgets.HTML(f"<b>{html.escape(name)}</b>", layout=widgets.Layout(width="180px"))
        self.status = widgets.Label(self.word, layout=widgets.Layout(width="100px"))
        self.status.add_class("mlpipe-status")
        self.duration = widgets.Label("", layout=widgets.Layout(width="70px"))
        self.duration.add_class("mlpipe-duration")
        self.note = widgets.HTML("")
        self.metrics_panel = MetricsPanel()  # charts, tables and images of what the step logs
        self.metrics = self.metrics_panel.widget
        self.metrics.add_class("mlpipe-metrics")
        self.log = widgets.HTML("")
        self.log.add_class("mlpipe-log")
        self.error = widgets.HTML("")
        self.error.add_class("mlpipe-error")
        self.widget = widgets.VBox([widgets.HBox([self.title, self.status, self.duration, self.note]),
                                    self.metrics, self.log, self.error])
        self.widget.add_class("mlpipe-step-row")
        self.widget.add_class(f"mlpipe-step-{name}")

    # all setters run under the monitor's lock
    def set_status(self, word: str, started=None, ended=None, note=None):
        self.word = word
        self.started = started or self.started
        self.ended = ended or self.ended
        self.status.value = word
        self.status.style.text_color = _COLOR.get(word)
        self.duration.value = duration(self.started, self.ended)
        if note:  # why the planner reused or reran it, in words: the reason this tool exists
            self.note.value = f"<small class='mlpipe-reason'>{html.escape(note)}</small>"

    def tick(self):
        if self.word == "running":
            self.duration.value = duration(self.started, None)

    def render_log(self):
        text = html.escape("\n".join(self.lines))
        # column-reverse anchors the scroll at the bottom: the newest line stays in view as lines come,
        # and a re-render does not jump back to the top
        self.log.value = (f"<div class='mlpipe-log-scroll' style='display:flex;flex-direction:column-reverse;"
                          f"max-height:14em;overflow:auto'><pre style='margin:0;font-size:11px;flex:0 0 auto'>"
                          f"{text}</pre></div>" if text else "")

    def add_metric(self, name, kind, value, run_id=None, store=None):
        """One logged value; ``run_id`` and ``store`` say where a logged image's file is."""
        if kind == "image" and store is not None:
            self.metrics_panel.files = lambda rel: run_file(store, run_id, rel)
        self.metrics_panel.add(name, kind, value)

    def render_metrics(self):
        """New points onto the charts (the monitor's flush: at most every FLUSH_SECONDS)."""
        self.metrics_panel.render()

    def set_error(self, error: str, tail=None):
        self.error_text = error or ""
        if not error:
            self.error.value = ""
            return
        lines = list(tail if tail is not None else self.lines)[-8:]
        extra = ("\n" + "\n".join(lines)) if lines else ""
        self.error.value = (f"<pre style='color:#c62828;margin:0;white-space:pre-wrap'>"
                            f"{html.escape(error + extra)}</pre>")


class RunMonitor:
    """``RunMonitor(run).widget`` is the view; it lives until the run ends, then keeps the final state."""

    def __init__(self, run):
        self.run = run
        self.top_id = run._top_id()
        self.is_pipeline = isinstance(run, PipelineRun)
        self.only_step_run = None if (self.is_pipeline or run.id == self.top_id) else run.id
        self.rows: dict[str, StepRow] = {}
        self.flush_hooks: list = []  # callback(step, lines) after lines reach the log widget
        self._lock = threading.RLock()
        self._pending_lines: dict[str, list] = {}
        self._pending_metrics: dict[str, list] = {}
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._final = False
        self._run_row = None
        self._last_flush = 0.0
        self.run_status = widgets.HTML("")
        self.run_status.add_class("mlpipe-run-status")
        self.cancel_button = widgets.Button(description="Cancel", button_style="warning", icon="stop",
                                            layout=widgets.Layout(width="auto", min_width="90px", flex="0 0 auto"))
        self.cancel_button.add_class("mlpipe-cancel")
        self.cancel_button.on_click(lambda _b: self.cancel())
        self._row_box = widgets.VBox([])
        self.widget = widgets.VBox([widgets.HBox([self.run_status, self.cancel_button]), self._row_box])
        self.widget.add_class("mlpipe-monitor")
        self._load_stored()  # statuses; the follower brings log lines and metrics, from the run's start
        self.follower = RunFollower(run._store, self.top_id, self._on_event, only=self.only_step_run)
        with _monitors_lock:
            alive = [ref for ref in _monitors.get(run.id, []) if ref() is not None]
            _monitors[run.id] = alive + [weakref.ref(self)]
        if self._final:  # an ended run: all it logged, read now
            self.follower.follow()
            with self._lock:
                self._flush()
            self._stopped.set()
        else:
            self.follower.start()
            threading.Thread(target=self._flusher, name=f"monitor-{run.id[-8:]}", daemon=True).start()

    # -- the stored state -------------------------------------------------------------------------------------
    def _step_views(self):
        return self.run.steps_in_plan_order() if self.is_pipeline else [self.run]

    def _load_stored(self):
        store = self.run._store
        with self._lock:
            for step in self._step_views():
                row = step._row
                view = self._row(row["name"])
                reused = row["reused_from"] is not None
                view.set_status(status_word(row["status"], reused), row["started"], row["ended"], row["reuse_reason"])
                if row["error"] and row["status"] in (Status.FAILED, Status.CANCELED):
                    view.set_error(row["error"], (row["details"] or {}).get("error_tail"))
            self._set_run_status(store.get_run(self.top_id))

    def _row(self, name) -> StepRow:
        view = self.rows.get(name)
        if view is None:
            view = self.rows[name] = StepRow(name)
            self._row_box.children = tuple(r.widget for r in self.rows.values())
        return view

    def _set_run_status(self, row):
        self._run_row = row
        self._final = row["status"] in FINAL_STATUSES
        self._render_header()
        self.cancel_button.disabled = self._final
        # a finished run offers nothing to cancel: the button goes, rather than stay disabled
        self.cancel_button.layout.display = "none" if self._final else None

    def _render_header(self):
        """The run's line; re-rendered every tick while it runs, so its duration counts up."""
        row = self._run_row
        word = status_word(row["status"])
        label = "pipeline run" if self.is_pipeline else "run"
        err = f" &middot; <span style='color:#c62828'>{html.escape(row['error'])}</span>" if row.get("error") else ""
        self.run_status.value = (f"<b>{label}</b> <code>{html.escape(row['id'])}</code> &middot; "
                                 f"{html.escape(row['experiment'])} &middot; "
                                 f"<span style='color:{_COLOR.get(word)}'>{word}</span> "
                                 f"{duration(row['started'], row['ended'])}{err}")

    # -- events (runner threads) ------------------------------------------------------------------------------
    def _on_event(self, event):
        with self._lock:
            self._apply(event)

    def _apply(self, event):
        d = event.data
        if event.kind == EventKind.LOG:
            self._pending_lines.setdefault(event.step, []).append(d["line"])
            self._wake.set()
        elif event.kind == EventKind.METRIC:
            self._pending_metrics.setdefault(event.step, []).append(
                (d["name"], d.get("kind", "scalar"), d["value"], event.step_run_id, self.run._store))
            self._wake.set()
        elif event.kind == EventKind.STEP_STATUS:
            self._flush()  # lines printed before a status change show before it
            view = self._row(event.step)
            reused = bool(d.get("reused"))
            now = event.ts
            started = d.get("started") or (now if d["status"] == Status.RUNNING or reused else None)
            ended = d.get("ended") or (now if reused else None)
            view.set_status(status_word(d["status"], reused), started, ended, d.get("reuse_reason"))
            if d["status"] in (Status.FAILED, Status.CANCELED) and d.get("error"):
                view.set_error(d["error"])
            if not self.is_pipeline and d["status"] in FINAL_STATUSES:
                self._set_run_status(self.run._store.get_run(self.top_id))
        elif event.kind == EventKind.RUN_STATUS:
            self._flush()
            self._set_run_status(self.run._store.get_run(self.top_id))
        if self._final:
            self._wake.set()

    # -- coalescing (one small thread per live monitor) -------------------------------------------------------
    def _flusher(self):
        while not self._stopped.is_set():
            woke = self._wake.wait(TICK_SECONDS)
            if woke:
                delay = self._last_flush + FLUSH_SECONDS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self._wake.clear()
            with self._lock:
                self._flush()
                for view in self.rows.values():
                    view.tick()
                if self._run_row is not None and not self._final and self._run_row["started"]:
                    self._render_header()
                final = self._final
            if final:
                self._stop()  # outside the lock: it joins the follower, whose events take the lock
                with self._lock:
                    self._flush()  # what the follower delivered last

    def _flush(self):
        lines, self._pending_lines = self._pending_lines, {}
        metrics, self._pending_metrics = self._pending_metrics, {}
        self._last_flush = time.monotonic()
        for step, new in lines.items():
            view = self._row(step)
            view.lines.extend(new)
            view.render_log()
            for hook in self.flush_hooks:
                hook(step, new)
        for step, recs in metrics.items():
            view = self._row(step)
            for rec in recs:
                view.add_metric(*rec)
            view.render_metrics()

    def _stop(self):
        self._stopped.set()
        self._wake.set()
        self.follower.stop()

    # -- actions --------------------------------------------------------------------------------------------------
    def cancel(self):
        self.cancel_button.disabled = True
        self.cancel_button.description = "Canceling"
        self.run.cancel()

    def sync(self):
        """Settle on the stored state (after a wait): flush what is pending and read final statuses."""
        with self._lock:
            self._flush()
            for step in self._step_views():
                row = step._row
                view = self._row(row["name"])
                word = status_word(row["status"], row["reused_from"] is not None)
                view.set_status(word, row["started"], row["ended"])
                if row["error"] and row["status"] in (Status.FAILED, Status.CANCELED) and not view.error_text:
                    view.set_error(row["error"], (row["details"] or {}).get("error_tail"))
            self._set_run_status(self.run._store.get_run(self.top_id))
            final = self._final
        if final:
            self._stop()  # outside the lock: it joins the follower, whose events take the lock
            with self._lock:
                self._flush()  # what the follower delivered last

    def statuses(self) -> dict[str, str]:
        """Step name -> the status word the page shows."""
        with self._lock:
            return {name: view.status.value for name, view in self.rows.items()}

    def mimebundle(self) -> dict:
        """The widget, plus a text summary (statuses, why each step reran) for where widgets cannot
        show: a notebook run headless, an exported notebook, a front end without the widget manager."""
        bundle = self.widget._repr_mimebundle_()
        bundle["text/plain"] = run_text(self.run._store, self.top_id)
        return bundle

    def _ipython_display_(self):
        from IPython.display import display

        display(self.mimebundle(), raw=True)
