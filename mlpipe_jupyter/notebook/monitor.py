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

The table: a header row ``mlpipe-step-header`` (Step, Status, Duration, Why) above the rows, inside
``mlpipe-step-table``; each row's first line ``mlpipe-step-line`` holds ``mlpipe-status-icon`` (an element
``mlpipe-icon mlpipe-icon-<word>``, words as ``STATUS_WORDS`` plus ``not-run``; ``mlpipe-spin`` spins while
running), ``mlpipe-step-name``, ``mlpipe-status``, ``mlpipe-duration`` and ``mlpipe-why`` (the planner's
reason, ``mlpipe-reason``). Above the table ``mlpipe-graph``: an SVG whose ``mlpipe-graph-node`` groups carry
``data-step`` and ``data-status``, joined by ``mlpipe-graph-edge`` paths. In ``mlpipe-error`` one block:
``mlpipe-error-failed`` (red: the traceback mapped to the user's cell or file), ``mlpipe-error-not-run``
(grey: an upstream step did not complete) or ``mlpipe-error-canceled`` (amber). The log pane's controls
``mlpipe-log-controls``: ``mlpipe-log-pause`` (a toggle: paused, new lines wait and the view stays) and
``mlpipe-log-full`` (the whole log file in ``mlpipe-full-log``). The header's actions ``mlpipe-actions``:
Cancel while the run is active; ``mlpipe-rerun``, ``mlpipe-clone`` and ``mlpipe-open-panel`` once a pipeline
run has ended; what they open appears in ``mlpipe-monitor-below``, their errors in ``mlpipe-action-message``.
"""
from __future__ import annotations

import html
import re
import threading
import time
import weakref
from collections import deque

import ipywidgets as widgets

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.notebook.designer import Designer
from mlpipe_jupyter.notebook.metric_charts import MetricsPanel, run_file
from mlpipe_jupyter.notebook.run_graph import graph_svg, positions
from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.sdk.published import submit_again
from mlpipe_jupyter.sdk.run import PipelineRun, run_from_row
from mlpipe_jupyter.status import FINAL_STATUSES, Status
from mlpipe_jupyter.tracking.follower import RunFollower, log_path
from mlpipe_jupyter.tracking.report import duration, run_text, status_word

FLUSH_SECONDS = 0.05
TICK_SECONDS = 1.0
TAIL_LINES = 200  # the log pane's lines; it scrolls, anchored at the newest
FULL_LOG_BYTES = 4 << 20  # "Full log" shows this much of a log file, and says where the rest is
_UPSTREAM = re.compile(r"upstream step '([^']+)'")
_UPSTREAM_ENDED = {"failed": "failed", "canceled": "was canceled", "not run": "was not run"}
_COLOR = {"running": "#1565c0", "completed": "#2e7d32", "reused": "#558b2f", "failed": "#c62828",
          "canceled": "#ef8f00", "queued": "#8d6e63", "not started": "#9e9e9e", "not run": "#9e9e9e"}
COLUMNS = ("22px", "170px", "90px", "76px")  # icon, Step, Status, Duration; Why takes the rest
HEADERS = ("", "Step", "Status", "Duration", "Why")
_ICONS = {"completed": ("&#10003;", "#2e7d32"), "reused": ("&#9851;", "#558b2f"), "failed": ("&#10007;", "#c62828"),
          "not run": ("&#8856;", "#9e9e9e"), "canceled": ("&#9632;", "#ef8f00"), "queued": ("&#8230;", "#8d6e63"),
          "not started": ("&#9675;", "#9e9e9e")}
# one stylesheet per monitor, scoped to it; colours from JupyterLab's theme variables, so dark themes work
STYLE = """<style>
.mlpipe-monitor .mlpipe-step-header { border-bottom: 1px solid var(--jp-border-color1); }
.mlpipe-monitor .mlpipe-step-header .widget-html-content { font-weight: 600; color: var(--jp-ui-font-color2);
  font-size: var(--jp-ui-font-size1); }
.mlpipe-monitor .mlpipe-step-row { border-bottom: 1px solid var(--jp-border-color3); }
.mlpipe-monitor .mlpipe-step-line .widget-label, .mlpipe-monitor .mlpipe-step-line .widget-html,
.mlpipe-monitor .mlpipe-step-line .widget-html-content, .mlpipe-monitor .mlpipe-step-header .widget-html,
.mlpipe-monitor .mlpipe-step-header .widget-html-content { height: 24px; line-height: 24px; margin-top: 0;
  margin-bottom: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.mlpipe-monitor .mlpipe-status-icon .widget-html-content { text-align: center; font-size: 14px; }
.mlpipe-monitor .mlpipe-step-line .mlpipe-why, .mlpipe-monitor .mlpipe-step-line .mlpipe-why .widget-html-content {
  height: auto; min-height: 24px; white-space: normal; line-height: 16px; }
.mlpipe-monitor .mlpipe-step-line .mlpipe-why .widget-html-content { padding: 4px 0; min-height: 16px;
  overflow-wrap: anywhere; }
.mlpipe-monitor .mlpipe-why small { color: var(--jp-ui-font-color1); }
.mlpipe-monitor .mlpipe-log-controls .widget-button, .mlpipe-monitor .mlpipe-log-controls .widget-toggle-button {
  height: 20px; line-height: 20px; font-size: var(--jp-ui-font-size0); padding: 0 6px; margin: 2px 0 0 4px; }
.mlpipe-monitor .mlpipe-log-scroll, .mlpipe-monitor .mlpipe-full-log-box { background: var(--jp-layout-color2);
  border-radius: 3px; padding: 2px 6px; margin-left: 30px; }
.mlpipe-monitor .mlpipe-log-scroll pre, .mlpipe-monitor .mlpipe-full-log-box pre {
  color: var(--jp-content-font-color1); }
.mlpipe-monitor .mlpipe-error { margin-left: 30px; }
.mlpipe-monitor .mlpipe-error > .widget-html-content, .mlpipe-monitor .mlpipe-log > .widget-html-content,
.mlpipe-monitor .mlpipe-full-log > .widget-html-content, .mlpipe-monitor .mlpipe-graph > .widget-html-content,
.mlpipe-monitor .mlpipe-action-message > .widget-html-content,
.mlpipe-monitor .mlpipe-metrics > .widget-html > .widget-html-content { height: auto; line-height: normal; }
.mlpipe-monitor .mlpipe-run-status > .widget-html-content { height: auto; min-height: 28px; line-height: 20px;
  padding: 4px 0; white-space: normal; }
.mlpipe-monitor .mlpipe-graph { overflow: auto; max-height: 260px; margin: 2px 0 4px 0; }
.mlpipe-spin { display: inline-block; width: 9px; height: 9px; border: 2px solid #1e88e5;
  border-right-color: transparent; border-radius: 50%; animation: mlpipe-spin 0.8s linear infinite;
  vertical-align: middle; }
@keyframes mlpipe-spin { to { transform: rotate(360deg); } }
</style>"""


def _column(i: int) -> widgets.Layout:
    """The layout of table column ``i``: fixed widths that never shrink, then Why taking (and wrapping in)
    the rest, so a long reason cannot push the other columns away."""
    if i < len(COLUMNS):
        return widgets.Layout(width=COLUMNS[i], flex=f"0 0 {COLUMNS[i]}")
    return widgets.Layout(flex="1 1 0", min_width="0", width="auto")


def _icon(word: str) -> str:
    """The status icon of a row: a spinner while running, a coloured sign otherwise (the word as its title)."""
    if word == "running":
        return f"<span class='mlpipe-icon mlpipe-icon-running' title='running'><span class='mlpipe-spin'></span></span>"
    sign, color = _ICONS.get(word, ("&#9675;", "#9e9e9e"))
    return (f"<span class='mlpipe-icon mlpipe-icon-{word.replace(' ', '-')}' title='{word}' "
            f"style='color:{color};font-weight:bold'>{sign}</span>")

_monitors: dict[str, list] = {}  # run id -> weak references to its monitors
_monitors_lock = threading.Lock()


def monitors_for(run_id: str) -> list["RunMonitor"]:
    """The live monitors of a run, oldest first (for tests and tools)."""
    with _monitors_lock:
        return [m for m in (ref() for ref in _monitors.get(run_id, [])) if m is not None]



def with_start(reason: str | None, row: dict | None) -> str | None:
    """The planner's reason, and how a local step's process started (warm from a helper, or cold)."""
    start = ((row or {}).get("details") or {}).get("start")
    if not start:
        return reason
    said = f"started warm in {start['seconds'] * 1000:.0f} ms" if start.get("warm") else "started cold"
    return f"{reason} · {said}" if reason else said

class StepRow:
    """One step: its widgets and the state they show."""

    def __init__(self, name: str, lock=None, layouts=None):
        self.name = name
        self.word = "not started"
        self.kind = ""  # how it ended badly: "failed", "not run" (an upstream step did not complete), "canceled"
        self.started = self.ended = None
        self.lines: deque[str] = deque(maxlen=TAIL_LINES)
        self.error_text = ""
        self.traceback = ""
        self.held = 0  # lines that came while following was paused
        self._lock = lock or threading.RLock()
        # the monitor's rows share one Layout per column (and one for buttons): fewer widget models to open
        layouts = layouts or [_column(i) for i in range(len(HEADERS))] + [widgets.Layout(width="auto")]
        self.icon = widgets.HTML(_icon("not started"), layout=layouts[0])
        self.icon.add_class("mlpipe-status-icon")
        self.title = widgets.HTML(f"<b title='{html.escape(name)}'>{html.escape(name)}</b>", layout=layouts[1])
        self.title.add_class("mlpipe-step-name")
        self.status = widgets.Label(self.word, layout=layouts[2])
        self.status.add_class("mlpipe-status")
        self.duration = widgets.Label("", layout=layouts[3])
        self.duration.add_class("mlpipe-duration")
        self.note = widgets.HTML("", layout=layouts[4])
        self.note.add_class("mlpipe-why")
        self.metrics_panel = MetricsPanel(paced=True)  # charts, tables and images of what the step logs
        self.metrics = self.metrics_panel.widget
        self.metrics.add_class("mlpipe-metrics")
        self.log = widgets.HTML("")
        self.log.add_class("mlpipe-log")
        self.follow_button = widgets.ToggleButton(False, description="Pause", icon="pause",
                                                  tooltip="Stop following new lines (the view stays where it is)",
                                                  layout=layouts[5])
        self.follow_button.add_class("mlpipe-log-pause")
        self.follow_button.observe(self._on_follow, "value")
        self.full_button = widgets.Button(description="Full log", icon="file-text",
                                          tooltip="Show the step's whole log file", layout=layouts[5])
        self.full_button.add_class("mlpipe-log-full")
        self.log_controls = widgets.HBox([self.follow_button, self.full_button],
                                         layout=widgets.Layout(display="none", flex="0 0 auto", align_items="center"))
        self.log_controls.add_class("mlpipe-log-controls")
        self.full_log = widgets.HTML("", layout=widgets.Layout(display="none"))  # shown on demand
        self.full_log.add_class("mlpipe-full-log")
        self.error = widgets.HTML("", layout=widgets.Layout(display="none"))  # shown when there is one
        self.error.add_class("mlpipe-error")
        line = widgets.HBox([self.icon, self.title, self.status, self.duration, self.note, self.log_controls],
                            layout=widgets.Layout(align_items="flex-start"))
        line.add_class("mlpipe-step-line")
        self.widget = widgets.VBox([line, self.metrics, self.error, self.log, self.full_log])
        self.widget.add_class("mlpipe-step-row")
        self.widget.add_class(f"mlpipe-step-{name}")

    # all setters run under the monitor's lock
    def set_status(self, word: str, started=None, ended=None, note=None):
        self.word = word
        self.started = started or self.started
        self.ended = ended or self.ended
        self.status.value = word
        self.status.style.text_color = _COLOR.get(self.shown_word)
        self.icon.value = _icon(self.shown_word)
        self.duration.value = duration(self.started, self.ended)
        if note:  # why the planner reused or reran it, in words: the reason this tool exists
            self.note.value = f"<small class='mlpipe-reason'>{html.escape(note)}</small>"

    def tick(self):
        if self.word == "running":
            self.duration.value = duration(self.started, None)

    @property
    def shown_word(self) -> str:
        """The word of the row's icon and graph box: "not run" sets a skipped step apart from a canceled one."""
        return "not run" if self.kind == "not run" else self.word

    def _on_follow(self, change):
        paused = change["new"]
        self.follow_button.description = "Resume" if paused else "Pause"
        self.follow_button.icon = "play" if paused else "pause"
        if not paused:
            with self._lock:
                self.held = 0
                self.render_log()

    def add_lines(self, new):
        """New log lines: shown at once while following; while paused, counted on the Resume button and
        left off the pane, so the view the user scrolled to stays put."""
        self.lines.extend(new)
        if self.follow_button.value:
            self.held += len(new)
            self.follow_button.description = f"Resume ({self.held} new)"
        else:
            self.render_log()

    def render_log(self):
        lines = list(self.lines)
        if self.traceback:  # the error block shows it, mapped to the user's code: not twice
            starts = [i for i, ln in enumerate(lines) if ln.rstrip() == "Traceback (most recent call last):"]
            if starts:
                lines = lines[:starts[0]]
        self.log_controls.layout.display = "flex" if self.lines else "none"
        text = html.escape("\n".join(lines))
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

    def set_error(self, error: str, kind: str = "failed", traceback: str = "", shown: str | None = None):
        """The one error block of the row: a failure's traceback (or its message) in red; a step not run
        because of an upstream step, or canceled, in a quiet colour (``shown``: the text to show)."""
        self.error_text, self.kind, self.traceback = error or "", kind if error else "", traceback or ""
        self.icon.value = _icon(self.shown_word)
        self.status.style.text_color = _COLOR.get(self.shown_word)  # a skip keeps Azure's word, in grey
        self.error.layout.display = None if error else "none"
        if not error:
            self.error.value = ""
            return
        if kind == "failed":
            body = self.traceback or error
            self.error.value = (f"<div class='mlpipe-error-failed' style='border-left:3px solid #c62828;"
                                f"padding:2px 8px;margin:2px 0'><pre style='color:#c62828;margin:0;"
                                f"white-space:pre-wrap;font-size:12px'>{html.escape(body)}</pre></div>")
            self.render_log()
        else:
            color = "var(--jp-ui-font-color2)" if kind == "not run" else "#ef8f00"
            self.error.value = (f"<div class='mlpipe-error-{kind.replace(' ', '-')}' style='color:{color};"
                                f"font-size:12px;margin:0 0 4px 0'>{html.escape(shown or error)}</div>")


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
        self.run_status = widgets.HTML("", layout=widgets.Layout(flex="1 1 0", min_width="0"))
        self.run_status.add_class("mlpipe-run-status")
        self.cancel_button = widgets.Button(description="Cancel", button_style="warning", icon="stop",
                                            layout=widgets.Layout(width="auto", min_width="90px", flex="0 0 auto"))
        self.cancel_button.add_class("mlpipe-cancel")
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.rerun_button = self._action("Rerun", "repeat", "mlpipe-rerun", self.rerun,
                                         "Submit the same pipeline again; its monitor shows below")
        self.clone_button = self._action("Clone to designer", "clone", "mlpipe-clone", self.clone,
                                         "An editable copy of this run's pipeline, in a designer below")
        self.panel_button = self._action("Open in panel", "external-link", "mlpipe-open-panel", self.open_panel,
                                         "This run's pipeline in a designer panel of JupyterLab")
        self.actions = widgets.HBox([self.cancel_button, self.rerun_button, self.clone_button, self.panel_button],
                                    layout=widgets.Layout(flex="0 0 auto"))
        self.actions.add_class("mlpipe-actions")
        self.action_message = widgets.HTML("")
        self.action_message.add_class("mlpipe-action-message")
        self.graph = widgets.HTML("")
        self.graph.add_class("mlpipe-graph")
        self._layouts = [_column(i) for i in range(len(HEADERS))] + [widgets.Layout(width="auto")]
        header = widgets.HBox([widgets.HTML(text, layout=self._layouts[i]) for i, text in enumerate(HEADERS)])
        header.add_class("mlpipe-step-header")
        self._row_box = widgets.VBox([])
        self.table = widgets.VBox([header, self._row_box])
        self.table.add_class("mlpipe-step-table")
        self.below = widgets.VBox([])  # what the actions open: a new run's monitor, a designer
        self.below.add_class("mlpipe-monitor-below")
        self._step_ids: dict[str, str] = {}
        self._upstream: dict[str, list] = {}
        self._graph_places = None
        self._graph_words = None  # the statuses the graph shows: redrawn only when one changes
        self._designers: list = []  # kept alive while their panel or view is open
        top = widgets.HBox([self.run_status, self.actions],
                           layout=widgets.Layout(justify_content="space-between", align_items="center"))
        self.widget = widgets.VBox([widgets.HTML(STYLE), top, self.action_message, self.graph, self.table,
                                    self.below])
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
                self._step_ids[row["name"]] = row["id"]
                self._upstream[row["name"]] = list((row["details"] or {}).get("upstream") or [])
                view = self._row(row["name"])
                reused = row["reused_from"] is not None
                view.set_status(status_word(row["status"], reused), row["started"], row["ended"],
                                with_start(row["reuse_reason"], row))
                self._show_error(view, row)
            self._set_run_status(store.get_run(self.top_id))
            self._render_graph()

    def _row(self, name) -> StepRow:
        view = self.rows.get(name)
        if view is None:
            view = self.rows[name] = StepRow(name, self._lock, self._layouts)
            view.full_button.on_click(lambda _b, n=name: self.show_full_log(n))
            self._row_box.children = tuple(r.widget for r in self.rows.values())
        return view

    def _step_row(self, name):
        """A step's stored row (its error's traceback, its log file)."""
        store = self.run._store
        if name in self._step_ids:
            return store.get_run(self._step_ids[name])
        for row in store.child_runs(self.top_id):
            if row["name"] == name:
                self._step_ids[name] = row["id"]
                return row
        return None

    def _show_error(self, view, row):
        """The row's one error block, from a stored step row: failed, not run, or canceled."""
        if not row or not row["error"] or row["status"] not in (Status.FAILED, Status.CANCELED):
            return
        error = row["error"]
        if row["status"] == Status.FAILED:
            view.set_error(error, "failed", (row["details"] or {}).get("traceback", ""))
            return
        if error.startswith("Not run:"):  # the runner skipped it: an upstream step did not complete, or a cancel
            shown = "not run: " + error[len("Not run:"):].strip().rstrip(".")
            m = _UPSTREAM.search(error)
            if m:
                up = self.rows.get(m.group(1))
                what = _UPSTREAM_ENDED.get(up.shown_word if up else "", "did not complete")
                shown = f"not run: upstream '{m.group(1)}' {what}"
            view.set_error(error, "not run", shown=shown)
        else:
            view.set_error(error, "canceled", shown=f"canceled: {error}")

    def _render_graph(self):
        """The small pipeline picture; redrawn on status changes only (a pipeline run's)."""
        if not self.is_pipeline or not self.rows:
            return
        names = list(self.rows)
        words = {n: v.shown_word for n, v in self.rows.items()}
        if words == self._graph_words:
            return
        self._graph_words = words
        if self._graph_places is None or set(self._graph_places) != set(names):
            self._graph_places = positions(names, self._upstream)
        self.graph.value = graph_svg(names, self._upstream, words, self._graph_places)

    def _set_run_status(self, row):
        self._run_row = row
        self._final = row["status"] in FINAL_STATUSES
        self._render_header()
        self.cancel_button.disabled = self._final
        # a finished run offers nothing to cancel: the button goes, rather than stay disabled; what a
        # finished pipeline run offers comes instead
        self.cancel_button.layout.display = "none" if self._final else None
        if self._final:
            self.cancel_button.description = "Cancel"  # "Canceling" ends with the run
        again = self._final and self._pipeline_row() is not None
        for button in (self.rerun_button, self.clone_button, self.panel_button):
            button.layout.display = None if again else "none"

    def _render_header(self):
        """The run's line; re-rendered every tick while it runs, so its duration counts up."""
        row = self._run_row
        word = status_word(row["status"])
        label = "pipeline run" if self.is_pipeline else "run"
        tone = _COLOR["canceled"] if row["status"] == Status.CANCELED else _COLOR["failed"]  # a cancel is no failure
        err = f" &middot; <span style='color:{tone}'>{html.escape(row['error'])}</span>" if row.get("error") else ""
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
            reason = d.get("reuse_reason")
            if d["status"] in FINAL_STATUSES and not reused:  # how its process started is known by now
                row = self._step_row(event.step)
                reason = with_start(reason or (row or {}).get("reuse_reason"), row)
            view.set_status(status_word(d["status"], reused), started, ended, reason)
            if d["status"] in (Status.FAILED, Status.CANCELED) and d.get("error"):
                self._show_error(view, self._step_row(event.step))
            self._render_graph()
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
                self._finish()

    def _finish(self):
        """The run ended: stop following, outside the lock (joining the follower, whose events take the
        lock, would deadlock), then show what it delivered last."""
        self._stop()
        with self._lock:
            self._flush()

    def _flush(self):
        lines, self._pending_lines = self._pending_lines, {}
        metrics, self._pending_metrics = self._pending_metrics, {}
        self._last_flush = time.monotonic()
        for step, new in lines.items():
            view = self._row(step)
            view.add_lines(new)
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

    def _action(self, text, icon, css, handler, tooltip):
        button = widgets.Button(description=text, icon=icon, tooltip=tooltip,
                                layout=widgets.Layout(width="auto", flex="0 0 auto", display="none"))
        button.add_class(css)

        def clicked(_b):
            try:
                self.action_message.value = ""
                handler()
            except UserError as e:
                self.action_message.value = f"<span style='color:#c62828'>{html.escape(str(e))}</span>"
            except Exception as e:  # noqa: BLE001 - a button's failure is shown where it was clicked, not lost
                self.action_message.value = (f"<span style='color:#c62828'>{html.escape(text)} failed: "
                                             f"{html.escape(type(e).__name__)}: {html.escape(str(e))}</span>")

        button.on_click(clicked)
        return button

    def _pipeline_row(self):
        """The stored row of the pipeline run this monitor shows (or whose step it shows), if any."""
        row = self._run_row
        return row if row is not None and row["kind"] == "pipeline" else None

    def _pipeline_run(self):
        if self.is_pipeline:
            return self.run
        return run_from_row(self.run.experiment.workspace, self.run._store.get_run(self.top_id))

    def rerun(self):
        """Submit the same pipeline again (same experiment and parameters); its monitor shows below this one."""
        new = submit_again(self._pipeline_run())
        monitor = RunMonitor(new)
        self.below.children = (*self.below.children, monitor.widget)
        return monitor

    def clone(self):
        """An editable copy of the run's pipeline in a designer, below the monitor."""
        designer = Designer.from_run(self._pipeline_run())
        self._designers.append(designer)
        self.below.children = (*self.below.children, designer.widget)
        return designer

    def open_panel(self):
        """The run's pipeline in a designer, in a JupyterLab main-area panel."""
        designer = Designer.from_run(self._pipeline_run())
        self._designers.append(designer)
        designer.open_panel()
        return designer

    def show_full_log(self, name):
        """The step's whole log file in a scrollable box under its row; a second click hides it."""
        view = self.rows[name]
        if view.full_log.value:
            view.full_log.value = ""
            view.full_log.layout.display = "none"
            view.full_button.description = "Full log"
            return
        row = self._step_row(name)
        path = log_path(self.run._store, row) if row is not None else None
        try:
            with open(path, "rb") as f:
                data = f.read(FULL_LOG_BYTES + 1)
        except (OSError, TypeError):
            data = None
        if data is None:
            body = "<i>No log file (yet).</i>"
        else:
            more = len(data) > FULL_LOG_BYTES
            text = data[:FULL_LOG_BYTES].decode(errors="replace")
            cut = (f"<div><i>Only the first {FULL_LOG_BYTES // (1 << 20)} MB are shown; the whole file is "
                   f"{html.escape(str(path))}</i></div>") if more else ""
            body = (f"<div style='font-size:11px;color:var(--jp-ui-font-color2)'>{html.escape(str(path))} "
                    f"&middot; {text.count(chr(10))} lines</div>{cut}"
                    f"<pre style='margin:0;font-size:11px'>{html.escape(text)}</pre>")
        view.full_log.value = (f"<div class='mlpipe-full-log-box' style='max-height:24em;overflow:auto'>{body}</div>")
        view.full_log.layout.display = None
        view.full_button.description = "Hide full log"

    def sync(self):
        """Settle on the stored state (after a wait): flush what is pending and read final statuses."""
        with self._lock:
            self._flush()
            for step in self._step_views():
                row = step._row
                view = self._row(row["name"])
                word = status_word(row["status"], row["reused_from"] is not None)
                view.set_status(word, row["started"], row["ended"])
                if not view.error_text:
                    self._show_error(view, row)
            self._set_run_status(self.run._store.get_run(self.top_id))
            self._render_graph()
            final = self._final
        if final:
            self._finish()

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
