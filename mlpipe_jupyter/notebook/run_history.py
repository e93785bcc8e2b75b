"""The run history in a notebook: a sortable, filterable table of runs (``%pipeline runs``,
``RunHistory(experiment)``), a side-by-side comparison of the runs selected in it with a chart of
one metric, and a browser of a run's files (run_files.py).

The table is an ipydatagrid ``DataGrid`` (its column headers sort and filter); a text box and a
status menu above it narrow the rows. Where widgets cannot show (a console, a notebook run
headless, an exported notebook) the display is the same table as plain text with a header row.

Page contract (tests rely on it): a ``VBox`` of class ``mlpipe-run-history`` holding a ``Text`` of
class ``mlpipe-history-filter``, a ``Dropdown`` of class ``mlpipe-history-status``, a count of class
``mlpipe-history-count`` ("3 of 10 runs"), Compare (``mlpipe-compare``) and Files
(``mlpipe-open-files``) buttons, the grid (``mlpipe-history-grid``) and the detail area
(``mlpipe-history-detail``). A comparison is a table of class ``mlpipe-compare-table`` whose rows
that differ between runs have class ``mlpipe-diff``, and a chart (``mlpipe-compare-chart``).
"""
from __future__ import annotations

import html
import math
import re
import time

import pandas as pd
from IPython import get_ipython

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.notebook.history_view import HistoryView
from mlpipe_jupyter.notebook.run_files import RunFiles
from mlpipe_jupyter.sdk.experiment import Experiment
from mlpipe_jupyter.sdk.published import TRIGGERED_BY
from mlpipe_jupyter.sdk.run import Run
from mlpipe_jupyter.sdk.workspace import Workspace
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.tracking.history import (RunSummary, key_metric_names, metric_series, parameter_names,
                                             run_history, summarize)
from mlpipe_jupyter.tracking.report import compact, format_duration

KEY_METRICS = 6  # metric columns: the names most runs logged
FIXED_COLUMNS = ("status", "run id", "experiment", "start", "duration", "trigger")
_ICON = {Status.COMPLETED: "✓", Status.FAILED: "✗", Status.CANCELED: "⊘", Status.RUNNING: "●",
         Status.FINALIZING: "●", Status.CANCEL_REQUESTED: "●", Status.PREPARING: "○", Status.QUEUED: "○",
         Status.NOT_STARTED: "○"}
_COLOR = {Status.COMPLETED: "#2e7d32", Status.FAILED: "#c62828", Status.CANCELED: "#757575",
          Status.RUNNING: "#1565c0", Status.FINALIZING: "#1565c0", Status.CANCEL_REQUESTED: "#ef6c00",
          Status.PREPARING: "#6d4c41", Status.QUEUED: "#6d4c41", Status.NOT_STARTED: "#9e9e9e"}
_WIDTHS = {"status": 112, "run id": 215, "experiment": 100, "start": 140, "duration": 72, "trigger": 64}


def status_text(status: str) -> str:
    """The status with its icon, as the table shows it: ``✓ Completed``."""
    return f"{_ICON.get(status, '●')} {str(status)}"


def trigger(summary: RunSummary) -> str:
    """What started a run: ``sdk``, ``rest`` or ``schedule`` (the ``TriggeredBy`` run property)."""
    return str(summary.properties.get(TRIGGERED_BY) or "sdk").split(":", 1)[0]


def _summaries(source, limit, status):
    """(workspace, summaries) of an Experiment, a Workspace (every experiment) or runs (``get_runs()``)."""
    if isinstance(source, Experiment):
        return source.workspace, run_history(source.workspace._store, source.name, limit, status)
    if isinstance(source, Workspace):
        return source, run_history(source._store, None, limit, status)
    if isinstance(source, Run):
        source = [source]
    try:
        runs = list(source)
    except TypeError:
        raise UserError(f"RunHistory takes an Experiment, a Workspace or runs (experiment.get_runs()), not "
                        f"{type(source).__name__}.") from None
    if not all(isinstance(r, Run) for r in runs):
        raise UserError("RunHistory: every item must be a Run (as experiment.get_runs() gives them).")
    if status is not None:
        runs = [r for r in runs if r.get_status().lower() == str(status).replace(" ", "").lower()]
    runs = runs[:limit] if limit else runs
    workspace = runs[0].experiment.workspace if runs else None
    return workspace, [summarize(r._store, r._row) for r in runs]


class RunHistory:
    """Runs as a table: newest first, one column per pipeline parameter and per key metric (the last
    value of each of the ``key_metrics`` scalar metrics most runs logged)."""

    def __init__(self, source, limit: int | None = None, status: str | None = None, key_metrics: int = KEY_METRICS):
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise UserError(f"RunHistory: limit must be a positive whole number, not {limit!r}.")
        self.workspace, self.summaries = _summaries(source, limit, status)
        self.parameters = parameter_names(self.summaries)
        self.metrics = key_metric_names(self.summaries, key_metrics)
        self._by_id = {s.id: s for s in self.summaries}
        self._view = None
        self._records = None

    # -- the data ------------------------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Fixed columns, then parameters, then metrics; a metric named like a parameter says so."""
        metrics = [m if m not in self.parameters and m not in FIXED_COLUMNS else f"{m} (metric)" for m in self.metrics]
        return [*FIXED_COLUMNS, *self.parameters, *metrics]

    def records(self) -> list[dict]:
        """One dict per run, keyed by ``columns`` (duration in seconds, None when it has not started):
        made once, so filtering as one types does not read them again."""
        if self._records is None:
            self._records = self._make_records()
        return self._records

    def _make_records(self) -> list[dict]:
        out = []
        for s in self.summaries:
            rec = {"status": status_text(s.status), "run id": s.id, "experiment": s.experiment,
                   "start": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.started or s.created)),
                   "duration": None if s.duration is None else round(s.duration, 1), "trigger": trigger(s)}
            rec.update({p: _cell(s.parameters.get(p)) for p in self.parameters})
            rec.update({c: _cell(s.metrics.get(m)) for c, m in zip(self.columns[len(FIXED_COLUMNS) + len(self.parameters):],
                                                                  self.metrics)})
            out.append(rec)
        return out

    def frame(self, text: str = "", status: str | None = None):
        """The table as a pandas DataFrame, narrowed by ``matches``."""
        rows = [r for r in self.records() if matches(r, text, status)]
        return pd.DataFrame(rows, columns=self.columns)

    def text(self) -> str:
        """The table as plain text with a header row (for consoles and notebooks run headless)."""
        if not self.summaries:
            return "No runs."
        rows = [list(self.columns)] + [
            [format_duration(r["duration"]) if c == "duration" else _plain(r[c]) for c in self.columns]
            for r in self.records()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.columns))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)

    def __str__(self):
        return self.text()

    def __repr__(self):
        return f"RunHistory({len(self.summaries)} runs)"

    # -- comparison and files -------------------------------------------------------------------------------
    def compare(self, run_ids) -> "RunComparison":
        ids = list(dict.fromkeys(run_ids))
        unknown = [i for i in ids if i not in self._by_id]
        if unknown:
            raise UserError(f"RunHistory.compare: no run {unknown[0]!r} in this table.")
        if len(ids) < 2:
            raise UserError("Compare needs two or more runs: select them in the table (Ctrl+click or "
                            "Shift+click adds rows).")
        return RunComparison(self.workspace._store, [self._by_id[i] for i in ids])

    def files(self, run_id: str):
        if run_id not in self._by_id:
            raise UserError(f"RunHistory.files: no run {run_id!r} in this table.")
        return RunFiles(Run.get(self.workspace, run_id))

    # -- display ------------------------------------------------------------------------------------------
    @property
    def view(self):
        """The widget (made on first use)."""
        if self._view is None:
            self._view = HistoryView(self, {status_text(s.value): c for s, c in _COLOR.items()}, _WIDTHS)
        return self._view

    def mimebundle(self) -> dict:
        bundle = self.view.widget._repr_mimebundle_()
        bundle["text/plain"] = self.text()
        return bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        if not _in_kernel():
            return {"text/plain": self.text()}
        return self.mimebundle()


def matches(record: dict, text: str = "", status: str | None = None) -> bool:
    """A row passes when its status is ``status`` (any case; None: any) and every word of ``text``
    holds: ``COLUMN=VALUE``, ``COLUMN<NUMBER`` or ``COLUMN>NUMBER`` for a column of that name (any
    case; ``C=0.5``, ``loss<0.2``), any other word occurring in one of its cells (any case)."""
    if status and status.lower() not in record["status"].lower():
        return False
    columns = {name.lower(): name for name in record}
    cells = " ".join(_plain(v) for v in record.values()).lower()
    for word in text.lower().split():
        test = _CONDITION.match(word)
        if test and test[1] in columns:
            if not _holds(record[columns[test[1]]], test[2], test[3]):
                return False
        elif word not in cells:
            return False
    return True


_CONDITION = re.compile(r"^([^=<>]+)([=<>])(.+)$")


def _holds(value, op: str, wanted: str) -> bool:
    try:
        number = float(wanted)
    except ValueError:
        number = None
    if op == "=":
        return _plain(value).lower() == wanted or (number is not None and _number(value) and value == number)
    if number is None or not _number(value):
        return False
    return value < number if op == "<" else value > number


class RunComparison:
    """Selected runs side by side: each parameter and metric in a row, one column per run."""

    def __init__(self, store, summaries):
        self.store, self.summaries = store, summaries
        params = parameter_names(summaries)
        metrics = key_metric_names(summaries, 10 ** 6)
        self.rows = [("status", "status", [s.status for s in summaries]),
                     ("duration", "duration", [format_duration(s.duration) for s in summaries])]
        self.rows += [("parameter", p, [s.parameters.get(p) for s in summaries]) for p in params]
        self.rows += [("metric", m, [s.metrics.get(m) for s in summaries]) for m in metrics]
        self.metric_names = [m for m in metrics if any(_number(s.metrics.get(m)) for s in summaries)]

    @staticmethod
    def differs(values) -> bool:
        return len({repr(v) for v in values}) > 1

    def differing(self) -> list[str]:
        """Names of the parameters and metrics whose values are not all the same."""
        return [name for kind, name, values in self.rows if kind in ("parameter", "metric") and self.differs(values)]

    def html(self) -> str:
        head = "".join(f"<th><code>{html.escape(s.id)}</code></th>" for s in self.summaries)
        body = []
        for kind, name, values in self.rows:
            diff = self.differs(values) and kind != "duration"
            cells = "".join(f"<td>{html.escape(_plain(v))}</td>" for v in values)
            body.append(f"<tr class='mlpipe-compare-{kind}{' mlpipe-diff' if diff else ''}'>"
                        f"<th>{html.escape(name)}<small> {kind if kind not in ('status', 'duration') else ''}"
                        f"</small></th>{cells}</tr>")
        return (f"<table class='mlpipe-compare-table'><thead><tr><th></th>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def series(self, name: str) -> dict[str, list[float]]:
        """Run id -> the numeric values logged under ``name``, in order (x: the step of each value)."""
        return {s.id: [float(v) for v in metric_series(self.store, s.id, name) if _number(v)] for s in self.summaries}

    def text(self) -> str:
        width = max([len(n) for _, n, _ in self.rows] + [4])
        lines = [" " * (width + 2) + "  ".join(s.id for s in self.summaries)]
        for kind, name, values in self.rows:
            mark = "*" if self.differs(values) and kind in ("parameter", "metric") else " "
            lines.append(f"{mark} {name:<{width}}  " + "  ".join(_plain(v).ljust(len(s.id))
                                                                  for v, s in zip(values, self.summaries)))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), "text/html": self.html()}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cell(value):
    """A table cell: numbers stay numbers (they sort as numbers), anything else is short text."""
    if value is None or _number(value) or isinstance(value, str):
        return value
    return compact(value)


def _plain(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return compact(value, 60)


def _in_kernel() -> bool:
    return getattr(get_ipython(), "kernel", None) is not None
