"""A step's metrics as charts (bqplot): what the run monitor and the designer show under a step.

Scalar series (``run.log``) are drawn as lines against the step index (the n-th value logged), with a
dot per point whose tooltip gives the value. Series of one family share a chart: the family is the
name without words such as ``train``/``val``/``test`` and numbers (``loss``, ``val_loss``, ``train/loss``
and ``loss_2`` are one chart; ``loss`` and ``lr`` are two, as they rarely share a scale), at most
``MAX_SERIES`` lines per chart. A metric logged once is a value, not a chart, until a second value comes. ``log_list`` is a
chart of the list, ``log_row``/``log_table`` a small table, ``log_image`` the image.

Updates append: ``add`` records values, ``render`` (called by the monitor's flush timer, at most every
50 ms a step) sets the changed lines' ``x``/``y``; figures are made once and kept. A series longer than
``MAX_POINTS`` is drawn thinned (every k-th value and the last): a 320 px chart cannot show more, and
the page stays light with 50 steps of 20 metrics each.
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

import bqplot as bq
import ipywidgets as widgets
import numpy as np

CHART_WIDTH, CHART_HEIGHT = 320, 180
MAX_SERIES = 6
MAX_POINTS = 120
TABLE_ROWS = 12
# mid-luminance colours that read on the light and the dark theme alike
PALETTE = ["#3b82f6", "#f97316", "#22c55e", "#e11d48", "#a855f7", "#14b8a6", "#eab308", "#ec4899"]
SPLIT_WORDS = {"train", "training", "val", "valid", "validation", "test", "eval", "dev"}
# theme-aware text: JupyterLab's own colour variables, so the dark theme reads as well as the light one
_TITLE_STYLE = ("font-size:11px;line-height:16px;color:var(--jp-ui-font-color1);max-width:%dpx;overflow:hidden;"
                "text-overflow:ellipsis" % CHART_WIDTH)
_SWATCH_STYLE = "display:inline-block;width:10px;height:3px;margin:0 4px 3px 0;vertical-align:middle"
_TOOLTIP_STYLE = {"opacity": 0.95, "color": "var(--jp-ui-font-color1)", "background-color": "var(--jp-layout-color1)"}
_CELL = "padding:1px 8px 1px 0;text-align:right;border-bottom:1px solid var(--jp-border-color2)"
_IMAGE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".svg": "svg+xml"}


def family(name: str) -> str:
    """The quantity a metric measures, the key of the chart it joins: ``val_loss`` and ``loss_2`` -> ``loss``."""
    words = [w for w in re.split(r"[/._\-: ]+", name.lower()) if w]
    kept = [w for w in words if w not in SPLIT_WORDS and not w.isdigit()]
    return " ".join(kept or words) or name


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def thinned(count: int, limit: int = MAX_POINTS) -> np.ndarray:
    """The indexes drawn of a series of ``count`` values: all of them, or every k-th and the last."""
    if count <= limit:
        return np.arange(count)
    stride = math.ceil(count / (limit - 1))
    return np.unique(np.append(np.arange(0, count, stride), count - 1))


def nice_ticks(lo: float, hi: float, count: int = 4, integer: bool = False) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 times a power of ten) covering ``lo``..``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi - lo < 1e-12 * max(abs(lo), abs(hi), 1e-300):
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda st: abs((hi - lo) / st - count))
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def short(value) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run_file(store, run_id: str, rel: str) -> Path | None:
    """Where a file a step run wrote (a logged image) is now: with the run once the step has ended, in the
    step's scratch folder while it runs. None when it is in neither (or ``rel`` leaves the run)."""
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        return None
    candidates = [store.run_dir(run_id) / rel]
    candidates += sorted((store.root / "tmp").glob(f"step-{run_id}-*/run/{rel}"))
    return next((p for p in candidates if p.is_file()), None)


class LineChart:
    """One bqplot figure: some series on a shared step axis, each a line with hoverable dots."""

    def __init__(self, key: str):
        self.key = key
        self.x_scale, self.y_scale = bq.LinearScale(), bq.LinearScale()
        self.x_axis = bq.Axis(scale=self.x_scale, tick_format="d", grid_lines="dashed")
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", tick_format=".3~g", grid_lines="dashed")
        axes = [self.x_axis, self.y_axis]
        self.lines: dict[str, bq.Lines] = {}
        self.figure = bq.Figure(marks=[], axes=axes, animation_duration=0, display_toolbar=False,
                                fig_margin=dict(top=8, bottom=22, left=46, right=12), padding_y=0.08,
                                background_style={"fill": "transparent"},
                                layout=widgets.Layout(width=f"{CHART_WIDTH}px", height=f"{CHART_HEIGHT}px"))
        self.figure.add_class("mlpipe-metric-figure")
        self.title = widgets.HTML()
        self.title.add_class("mlpipe-metric-title")
        self.widget = widgets.VBox([self.title, self.figure], layout=widgets.Layout(margin="0 12px 8px 0"))
        self.widget.add_class("mlpipe-metric-chart")

    @property
    def full(self) -> bool:
        return len(self.lines) >= MAX_SERIES

    def show(self, name: str, values: list, xs=None):
        """Draw ``values`` (y) as series ``name``, at ``xs`` (default 1, 2, ...); thinned when long."""
        line = self.lines.get(name)
        if line is None:
            colour = PALETTE[len(self.lines) % len(PALETTE)]
            tooltip = bq.Tooltip(fields=["x", "y"], labels=["step", name], formats=["d", ".6~g"])
            line = self.lines[name] = bq.Lines(scales={"x": self.x_scale, "y": self.y_scale}, colors=[colour],
                                               stroke_width=1.5, marker="circle", marker_size=10,
                                               labels=[name], tooltip=tooltip, tooltip_style=_TOOLTIP_STYLE)
            self.figure.marks = [*self.figure.marks, line]
        pick = thinned(len(values))
        y = np.asarray(values, dtype=float)[pick]
        x = (np.asarray(xs, dtype=float)[pick] if xs is not None else pick + 1.0)
        with line.hold_sync():
            line.x, line.y = x, y
        self._ticks()

    def _ticks(self):
        """Round tick values (bqplot's own spread ``num_ticks`` evenly over the domain: 0.0347, 3.34...)."""
        xs = [line.x for line in self.lines.values() if len(line.x)]
        ys = [line.y for line in self.lines.values() if len(line.y)]
        if not xs:
            return
        x_ticks = nice_ticks(min(a.min() for a in xs), max(a.max() for a in xs), 4, integer=True)
        y_ticks = nice_ticks(min(a.min() for a in ys), max(a.max() for a in ys), 4)
        for axis, ticks in ((self.x_axis, x_ticks), (self.y_axis, y_ticks)):
            if axis.tick_values is None or list(axis.tick_values) != ticks:
                axis.tick_values = np.asarray(ticks, dtype=float)

    def set_title(self, parts: list[tuple[str, str, str]]):
        """``(name, latest value, colour)`` per series: the legend, with each series' newest value."""
        self.title.value = f"<div style='{_TITLE_STYLE}'>" + "".join(
            f"<span class='mlpipe-metric-name' style='margin-right:10px;white-space:nowrap'>"
            f"<span class='mlpipe-metric-swatch' style='{_SWATCH_STYLE};background:{c}'></span>"
            f"{html.escape(n)} <b class='mlpipe-metric-latest'>{html.escape(v)}</b></span>" for n, v, c in parts) + "</div>"


class MetricsPanel:
    """The metrics of one step run. ``add`` from the monitor's event threads, ``render`` to show them;
    ``files(rel)`` finds a logged image's file (or returns None)."""

    def __init__(self, files=None):
        self.files = files
        self.scalars: dict[str, list] = {}  # name -> every value logged, in order
        self.lists: dict[str, list] = {}
        self.rows: dict[str, dict] = {}  # log_row: column -> values; log_table: the table
        self.images: dict[str, str] = {}  # name -> the newest image's path in the run
        self.charts: dict[str, LineChart] = {}  # chart key -> chart
        self.chart_of: dict[str, LineChart] = {}  # scalar name -> its chart
        self.tables: dict[str, widgets.HTML] = {}
        self.image_views: dict[str, widgets.VBox] = {}
        self._dirty: dict[tuple[str, str], None] = {}  # (kind, name) changed since the last render, in order
        self.values = widgets.HTML()
        self.values.add_class("mlpipe-metric-values")
        self.box = widgets.Box([], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.widget = widgets.VBox([self.values, self.box])
        self.widget.add_class("mlpipe-metric-panel")

    # -- recording ------------------------------------------------------------------------------------------
    def add(self, name: str, kind: str, value):
        if kind == "list" and isinstance(value, list):
            self.lists[name] = value
        elif kind == "row" and isinstance(value, dict):
            cols = self.rows.setdefault(name, {})
            for col, x in value.items():
                cols.setdefault(col, []).append(x)
        elif kind == "table" and isinstance(value, dict):
            self.rows[name] = {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        elif kind == "image":
            self.images[name] = str(value)
        else:
            kind = "scalar"
            self.scalars.setdefault(name, []).append(value)
        self._dirty[(kind, name)] = None

    def add_records(self, records):
        """Stored metric records (``store.get_metric_records``), in order."""
        for rec in records:
            self.add(rec["name"], rec.get("kind", "scalar"), rec["value"])

    # -- showing --------------------------------------------------------------------------------------------
    def render(self):
        """Show what changed since the last render: new points on their lines, new tables and images."""
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        titles = set()
        for kind, name in dirty:
            if kind == "scalar":
                values = self.scalars[name]
                if len(values) >= 2 and all(is_number(v) for v in values):
                    chart = self._chart_for(name)
                    chart.show(name, values)
                    titles.add(chart)
            elif kind == "list":
                numbers = [v for v in self.lists[name] if is_number(v)]
                chart = self._own_chart(name)
                chart.show(name, numbers)
                chart.set_title([(name, f"{len(self.lists[name])} values", PALETTE[0])])
            elif kind in ("row", "table"):
                self._table(name)
            elif kind == "image":
                self._image(name)
        for chart in titles:
            chart.set_title([(n, short(self.scalars[n][-1]), line.colors[0]) for n, line in chart.lines.items()])
        single = [(n, v) for n, v in self.scalars.items() if n not in self.chart_of]
        self.values.value = f"<div style='{_TITLE_STYLE};max-width:none'>" + "".join(
            f"<span class='mlpipe-metric-value' style='margin-right:14px'>{html.escape(n)} "
            f"<b>{html.escape(short(v[-1]))}</b></span>" for n, v in single) + "</div>" if single else ""

    def _place(self, view):
        self.box.children = (*self.box.children, view)

    def _chart_for(self, name: str) -> LineChart:
        chart = self.chart_of.get(name)
        if chart is None:
            key, n = family(name), 1
            while key in self.charts and self.charts[key].full:
                n += 1
                key = f"{family(name)} ({n})"
            chart = self.charts.get(key)
            if chart is None:
                chart = self.charts[key] = LineChart(key)
                self._place(chart.widget)
            self.chart_of[name] = chart
        return chart

    def _own_chart(self, name: str) -> LineChart:
        key = f"list:{name}"
        if key not in self.charts:
            self.charts[key] = LineChart(key)
            self.charts[key].widget.add_class("mlpipe-metric-list")
            self._place(self.charts[key].widget)
        return self.charts[key]

    def _table(self, name: str):
        view = self.tables.get(name)
        if view is None:
            view = self.tables[name] = widgets.HTML(layout=widgets.Layout(margin="0 12px 8px 0"))
            view.add_class("mlpipe-metric-table")
            self._place(view)
        cols = self.rows[name]
        count = max((len(v) for v in cols.values()), default=0)
        first = max(0, count - TABLE_ROWS)
        head = "".join(f"<th style='{_CELL}'>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(short(v[i])) if i < len(v) else ''}</td>"
                                        for v in cols.values()) + "</tr>" for i in range(first, count))
        caption = html.escape(name) + (f" (last {TABLE_ROWS} of {count} rows)" if first else "")
        view.value = (f"<table style='{_TITLE_STYLE};max-width:none;border-collapse:collapse'>"
                      f"<caption style='text-align:left'>{caption}</caption><thead><tr>{head}</tr></thead>"
                      f"<tbody>{body}</tbody></table>")

    def _image(self, name: str):
        rel = self.images[name]
        path = self.files(rel) if self.files else None
        view = self.image_views.get(name)
        if view is None:
            title = widgets.HTML(f"<div style='{_TITLE_STYLE}'><span class='mlpipe-metric-name'>{html.escape(name)}</span></div>")
            title.add_class("mlpipe-metric-title")
            view = self.image_views[name] = widgets.VBox([title, widgets.HTML()],
                                                         layout=widgets.Layout(margin="0 12px 8px 0"))
            view.add_class("mlpipe-metric-image")
            self._place(view)
        if path is None:
            shown = widgets.HTML(f"<i>image {html.escape(rel)} not found</i>")
        else:
            shown = widgets.Image(value=path.read_bytes(), format=_IMAGE_FORMATS.get(path.suffix.lower(), "png"),
                                  layout=widgets.Layout(max_width=f"{CHART_WIDTH}px", max_height="240px",
                                                        object_fit="contain"))
        view.children = (view.children[0], shown)


def panel_for_run(run) -> MetricsPanel:
    """The metrics a finished (or running) step run logged, from the store."""
    store, origin = run._store, run._origin_id
    panel = MetricsPanel(files=lambda rel: run_file(store, origin, rel))
    panel.add_records(store.get_metric_records(origin))
    panel.render()
    return panel
