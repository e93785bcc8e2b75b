"""The widget of a run history (run_history.py): filter controls, the ipydatagrid table, and a detail
area for a comparison (a table and a bqplot chart) or a run's file browser.

Rows are chosen in the grid itself (``selection_mode="row"``: click, Ctrl+click, Shift+click); the
grid reports its selections in the coordinates of what it shows (after its own sorting and header
filters), so the run ids are read from its visible data.

Once Compare or Files was pressed, the detail area follows the selection: nothing orders a button's
click after the selection made just before it. The page sends a click at once but holds a model's
state change while its previous one is unanswered (ipywidgets throttles state, not custom messages),
and with comms over kernel subshells (JupyterLab 4.6, ipykernel 7) the grid's messages and the
button's are handled by different threads. So the detail is brought up to date when a late selection
arrives; one the action cannot use (a single row for Compare) leaves the detail as it is. A lock keeps
the two threads from drawing the detail at once.
"""
from __future__ import annotations

import threading

import bqplot
import ipywidgets as widgets
from ipydatagrid import DataGrid, TextRenderer, VegaExpr

from mlpipe_jupyter.errors import UserError

ALL = "all statuses"
GRID_HEIGHT = 420
HEADER_HEIGHT, ROW_HEIGHT = 28, 24
COLUMN_WIDTH = 96


def grid_height(rows: int) -> int:
    """Room for the header, every row (up to a screenful; the grid scrolls beyond) and a scroll bar."""
    return min(GRID_HEIGHT, HEADER_HEIGHT + ROW_HEIGHT * max(rows, 3) + 22)


def _color_expression(colors: dict[str, str]) -> VegaExpr:
    """A Vega expression choosing the status cell's text colour by its value."""
    expr = "'inherit'"
    for text, color in colors.items():
        expr = f"cell.value === {text!r} ? {color!r} : ({expr})"
    return VegaExpr(expr)


class HistoryView:
    def __init__(self, history, status_colors: dict[str, str], widths: dict[str, int]):
        self.history = history
        statuses = sorted({s.status for s in history.summaries})
        self.filter = widgets.Text(placeholder="filter: any text, C=0.5, loss<0.2 ...",
                                   continuous_update=True, layout=widgets.Layout(width="340px"))
        self.filter.add_class("mlpipe-history-filter")
        self.status = widgets.Dropdown(options=[ALL, *statuses], value=ALL, layout=widgets.Layout(width="150px"))
        self.status.add_class("mlpipe-history-status")
        self.count = widgets.HTML()
        self.count.add_class("mlpipe-history-count")
        self.compare_button = widgets.Button(description="Compare", icon="columns",
                                             tooltip="Compare the selected runs (two or more)")
        self.compare_button.add_class("mlpipe-compare")
        self.files_button = widgets.Button(description="Files", icon="folder-open",
                                           tooltip="Browse the outputs and files of the selected run")
        self.files_button.add_class("mlpipe-open-files")
        frame = history.frame()
        self.grid = DataGrid(
            frame, selection_mode="row", header_visibility="column", base_column_size=COLUMN_WIDTH,
            base_row_size=ROW_HEIGHT, base_column_header_size=HEADER_HEIGHT,
            column_widths={c: w for c, w in widths.items() if c in frame.columns},
            renderers={"status": TextRenderer(text_color=_color_expression(status_colors), font="bold 12px sans-serif"),
                       "duration": TextRenderer(format=".1f", horizontal_alignment="right")},
            layout=widgets.Layout(height=f"{grid_height(len(frame))}px", width="100%"))
        self.grid.add_class("mlpipe-history-grid")
        self.detail = widgets.VBox()
        self.detail.add_class("mlpipe-history-detail")
        self.filter.observe(self._refilter, "value")
        self.status.observe(self._refilter, "value")
        self._following = None  # the action of the button pressed last, and the runs it shows
        self._shown_ids: list[str] = []
        self._drawing = threading.Lock()
        self.compare_button.on_click(lambda _: self._press(self.show_comparison))
        self.files_button.on_click(lambda _: self._press(self.show_files))
        self.grid.observe(self._follow_selection, "selections")
        bar = widgets.HBox([self.filter, self.status, self.compare_button, self.files_button, self.count],
                           layout=widgets.Layout(align_items="center", flex_flow="row wrap", grid_gap="8px"))
        self.widget = widgets.VBox([bar, self.grid, self.detail])
        self.widget.add_class("mlpipe-run-history")
        self._count(len(frame))

    # -- filtering ---------------------------------------------------------------------------------------
    def _refilter(self, _change=None):
        status = None if self.status.value == ALL else self.status.value
        frame = self.history.frame(self.filter.value, status)
        self.grid.clear_selection()
        self.grid.data = frame
        self._count(len(frame))

    def _count(self, shown: int):
        total = len(self.history.summaries)
        self.count.value = f"<span>{shown} of {total} run{'s' if total != 1 else ''}</span>"

    # -- selection ---------------------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        """The run ids of the selected rows, in the order shown. The rows the grid reports as visible
        are kept from its last sort or header filter, so they count only while one is applied."""
        visible = self.grid.get_visible_data() if self.grid._transforms else self.grid.data
        rows = sorted({r for sel in self.grid.selections for r in range(sel["r1"], sel["r2"] + 1)})
        ids = visible["run id"].tolist()
        return [ids[r] for r in rows if 0 <= r < len(ids)]

    def _show(self, action):
        try:
            action()
        except UserError as e:
            note = widgets.HTML(f"<span class='mlpipe-history-note'>{e}</span>")
            self.detail.children = [note]

    def _press(self, action):
        with self._drawing:
            self._following = action
            self._shown_ids = self.selected_ids()  # the action reads the selection after: never an older one
            self._show(action)

    def _follow_selection(self, _change=None):
        """The selection the page sent after (or overtaken by) a button's click: the pressed action
        again, for other runs only (a file browser keeps its place while its run stays selected)."""
        with self._drawing:
            ids = self.selected_ids()
            if self._following is None or ids == self._shown_ids:
                return
            try:
                self._following()
            except UserError:
                return  # not a selection this action can show: what is shown stays
            self._shown_ids = ids

    def show_comparison(self, ids=None):
        comparison = self.history.compare(ids or self.selected_ids())
        table = widgets.HTML(comparison.html() + _TABLE_STYLE)
        table.add_class("mlpipe-compare-view")
        children = [table]
        if comparison.metric_names:
            pick = widgets.Dropdown(options=comparison.metric_names, description="metric")
            pick.add_class("mlpipe-compare-metric")
            chart = widgets.Box([metric_chart(comparison, pick.value)])
            chart.add_class("mlpipe-compare-chart")
            pick.observe(lambda change: setattr(chart, "children", [metric_chart(comparison, change["new"])]), "value")
            children += [pick, chart]
        self.detail.children = children
        return comparison

    def show_files(self, run_id=None):
        ids = [run_id] if run_id else self.selected_ids()
        if len(ids) != 1:
            raise UserError("Select one run (click its row) to browse its files.")
        files = self.history.files(ids[0])
        self.detail.children = [files.widget]
        return files


def metric_chart(comparison, name: str) -> bqplot.Figure:
    """One line per run over the step (the n-th value logged); runs that logged one value each are
    points over the runs instead."""
    series = {run_id: values for run_id, values in comparison.series(name).items() if values}
    y = bqplot.LinearScale()
    tooltip = bqplot.Tooltip(fields=["x", "y"], formats=["", ".4g"], labels=["step", name])
    longest = max((len(v) for v in series.values()), default=0)
    x_axis = {}
    if longest > 1:
        x = bqplot.LinearScale()
        x_axis = {"tick_format": "d", **({"tick_values": list(range(longest))} if longest <= 12 else {})}
        colors = bqplot.CATEGORY10
        marks = [bqplot.Lines(x=list(range(len(v))), y=v, scales={"x": x, "y": y}, labels=[run_id],
                              colors=[colors[i % len(colors)]], marker="circle", marker_size=16,
                              display_legend=True, tooltip=tooltip)
                 for i, (run_id, v) in enumerate(series.items())]
        x_label = "step"
    else:
        x = bqplot.OrdinalScale()
        marks = [bqplot.Bars(x=[r[-12:] for r in series], y=[v[-1] for v in series.values()],
                             scales={"x": x, "y": y}, colors=["#1565c0"],
                             tooltip=bqplot.Tooltip(fields=["x", "y"], labels=["run", name]))]
        x_label = "run"
    axes = [bqplot.Axis(scale=x, label=x_label, **x_axis), bqplot.Axis(scale=y, side="left", label=name)]
    figure = bqplot.Figure(marks=marks, axes=axes, title=name, legend_location="top-right",
                           fig_margin={"top": 40, "bottom": 45, "left": 60, "right": 20},
                           layout=widgets.Layout(width="640px", height="320px"))
    return figure


_TABLE_STYLE = """<style>
.mlpipe-compare-table { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
.mlpipe-compare-table th, .mlpipe-compare-table td { padding: 3px 10px; text-align: left;
  border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.mlpipe-compare-table tbody th small { color: var(--jp-ui-font-color2, #777); font-weight: normal; }
.mlpipe-compare-table tr.mlpipe-diff td { background: rgba(255, 193, 7, 0.28); font-weight: 600; }
</style>"""
