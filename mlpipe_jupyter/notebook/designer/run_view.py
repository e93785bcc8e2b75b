"""The run a designer shows: each step's status on its node, recoloured from the runner's events as
they happen (from its threads, so a busy kernel never delays them), and the log tail and metrics of a
step the user taps."""
from __future__ import annotations

import html
import threading

import ipywidgets as widgets

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.notebook.metric_charts import panel_for_run
from mlpipe_jupyter.running.events import EventKind, bus
from mlpipe_jupyter.sdk.pipeline import pipeline_from_dict
from mlpipe_jupyter.sdk.run import run_from_row
from mlpipe_jupyter.status import ACTIVE_STATUSES
from mlpipe_jupyter.tracking.report import status_word

TAIL_LINES = 15
PUSH_SECONDS = 0.05  # status changes that come together go to the page as one update


class RunView:
    """The shown run: ``canvas.status`` and the ``details`` box."""

    def __init__(self, workspace, canvas):
        self.workspace = workspace
        self.canvas = canvas
        self.run_id = None
        self.statuses: dict[str, dict] = {}
        self._lock = threading.RLock()
        self.details = widgets.HTML()
        self.details.add_class("mlpipe-designer-details")
        self.metrics = widgets.Box([], layout=widgets.Layout(flex_flow="column"))  # the step's metric charts
        self.metrics.add_class("mlpipe-designer-metrics")
        self._push_timer: threading.Timer | None = None
        self._step_names: tuple[dict | None, set] = (None, set())  # (the graph they were read from, names)
        self._unsubscribe = bus.subscribe(self._on_event)

    def watch(self, run):
        """Show ``run``'s status on the nodes (runs submitted elsewhere show up by themselves)."""
        with self._lock:
            self.run_id = run._top_id()
            self.statuses = {}
            for step in run.get_steps() if hasattr(run, "get_steps") else [run]:
                self._set_status(step._row)
            self._push()

    def follow_active(self, experiment):
        """The latest pipeline run of ``experiment``, when it is still going: shown at once from what the store
        holds, then followed by its events (a designer opened during a run would otherwise wait for the next
        status change, which for a long step is the end of the run)."""
        rows = self.workspace._store.list_runs(experiment, kinds=("pipeline",), limit=1)
        if rows and rows[0]["status"] in ACTIVE_STATUSES:
            self.watch(run_from_row(self.workspace, rows[0]))

    def keep_only(self, names):
        """Forget the shown status of every step but ``names`` (after an edit: the steps whose result still stands)."""
        with self._lock:
            self.statuses = {n: s for n, s in self.statuses.items() if n in names}
            self._push()

    def _set_status(self, row):
        word = _node_word(row["status"], row.get("reused_from") is not None)
        self.statuses[row["name"]] = {"status": word, "started": row.get("started"), "ended": row.get("ended")}

    def _push(self):
        with self._lock:
            self._push_timer = None
            self.canvas.status = dict(self.statuses)

    def _push_soon(self):
        """One update for the changes of the next PUSH_SECONDS: a 1,000-step run sent the whole map on
        every event, a million entries for the page to take in."""
        if self._push_timer is None:
            self._push_timer = threading.Timer(PUSH_SECONDS, self._push)
            self._push_timer.daemon = True
            self._push_timer.start()

    def _names(self) -> set:
        graph = self.canvas.graph
        if self._step_names[0] is not graph:
            self._step_names = (graph, {n["name"] for n in graph.get("nodes", []) if n["kind"] == "step"})
        return self._step_names[1]

    def _on_event(self, event):
        """Runner threads: status changes of steps on this canvas recolour their nodes at once."""
        if event.kind != EventKind.STEP_STATUS or event.step is None:
            return
        if event.step not in self._names():
            return
        with self._lock:
            if event.run_id != self.run_id:
                self.run_id, self.statuses = event.run_id, {}
            d = event.data
            word = _node_word(d["status"], bool(d.get("reused")))
            old = self.statuses.get(event.step, {})
            started = d.get("started") or old.get("started") or (event.ts if word == "running" else None)
            ended = d.get("ended") or (event.ts if word in ("completed", "failed", "canceled", "reused") else None)
            self.statuses[event.step] = {"status": word, "started": started, "ended": ended}
            self._push_soon()

    def current_run(self):
        if self.run_id is None:
            raise UserError("No run yet: submit the pipeline first.")
        return run_from_row(self.workspace, self.workspace._store.get_run(self.run_id))

    def show_step(self, name):
        """The log tail and metrics of ``name`` in the shown run."""
        run = self.current_run()
        steps = [s for s in run.get_steps() if s.name == name] if hasattr(run, "get_steps") else [run]
        if not steps:
            self.details.value = f"<i>Step {html.escape(name)} is not part of run {html.escape(run.id)}.</i>"
            self.metrics.children = ()
            return
        step = steps[0]
        tail = "\n".join(step.get_log_text().splitlines()[-TAIL_LINES:])
        self.metrics.children = (panel_for_run(step).widget,)
        self.details.value = (
            f"<div><b>{html.escape(name)}</b> &middot; {html.escape(step.get_status())}"
            f"{' (reused)' if step.reused else ''} &middot; run <code>{html.escape(run.id)}</code></div>"
            f"<pre class='mlpipe-designer-log' style='max-height:220px;overflow:auto;font-size:11px;"
            f"white-space:pre-wrap'>{html.escape(tail) or '(no output)'}</pre>")

    def close(self):
        """Stop following the runner's events."""
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None


def _node_word(status: str, reused: bool) -> str:
    """The monitor's word for a status; on the canvas a step not started yet shows as queued."""
    word = status_word(status, reused)
    return "queued" if word == "not started" else word


def clone_run(run):
    """A new, editable ``Pipeline`` with the steps and links of a submitted pipeline run."""
    details = run._row["details"] or {}
    if "pipeline" not in details:
        raise UserError(f"Run {run.id} is not a pipeline run; only pipeline runs can be cloned.")
    workspace = run.experiment.workspace
    return pipeline_from_dict(workspace, details["pipeline"], workspace.path)  # stored relative to the workspace
