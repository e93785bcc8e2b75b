"""A step's metrics as charts (bqplot): what the run monitor and the designer show under a step.

Scalar series (``run.log``) are drawn as lines against the step index (the n-th value logged), with a
dot per point whose tooltip gives the value. Series of one family share a chart: the family is the
name without words such as ``train``/``val``/``test`` and numbers (``loss``, ``val_loss``, ``train/loss``
and ``loss_2`` are one chart; ``loss`` and ``lr`` are two, as they rarely share a scale), at most
``MAX_SERIES`` lines per chart. A metric logged once is a value, not a chart, until a second value comes. ``log_list`` is a
chart of the list, ``log_row``/``log_table`` a small table, ``log_image`` the image.

Updates append: ``add`` records values, ``render`` (called by the monitor's flush timer, at most every
50 ms) sets the changed lines' ``x``/``y``; figures are made once and kept, and their axes widen in
round steps rather than at every point. In the monitor the redraws go through one shared ``Pacer``
that bounds them per second over all steps (see there why). A series longer than ``MAX_POINTS`` is
drawn thinned (every k-th value and the last): a 320 px chart cannot show more.
"""
from __future__ import annotations

import html
import logging
import math
import re
import threading
import time
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


def nice_range(lo: float, hi: float, count: int = 4, integer: bool = False) -> tuple[float, float, float]:
    """Round bounds around ``lo``..``hi`` and a round step (1, 2 or 5 times a power of ten) that cuts
    them into about ``count`` parts: the axis domain and its ticks."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):  # a flat series: a band around its value
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda st: abs((hi - lo) / st - count))
    if integer:
        step = max(1.0, float(round(step)))
    return (round(math.floor(lo / step + 1e-9) * step, 12), round(math.ceil(hi / step - 1e-9) * step, 12),
            step)


def ticks(lo: float, hi: float, step: float) -> list[float]:
    return [round(lo + k * step, 12) for k in range(int(round((hi - lo) / step)) + 1)]


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
    """One bqplot figure: some series on a shared step axis, each a line with hoverable dots.

    Its axes keep round bounds that grow in steps (x by half again, y by a tenth of its span) rather than
    follow every new point: a new point then moves only its line, not both axes and every line."""

    def __init__(self, key: str, live: bool = True):
        self.key = key
        self.live = live  # a growing series: room ahead on x; a list: x fits it
        self.x_scale, self.y_scale = bq.LinearScale(), bq.LinearScale()
        self.x_axis = bq.Axis(scale=self.x_scale, tick_format="d", grid_lines="dashed")
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", tick_format=".3~g", grid_lines="dashed")
        self.lines: dict[str, bq.Lines] = {}
        self.figure = bq.Figure(marks=[], axes=[self.x_axis, self.y_axis], animation_duration=0,
                                display_toolbar=False, fig_margin=dict(top=8, bottom=22, left=46, right=12),
                                padding_x=0.0, padding_y=0.0, background_style={"fill": "transparent"},
                                layout=widgets.Layout(width=f"{CHART_WIDTH}px", height=f"{CHART_HEIGHT}px"))
        self.figure.add_class("mlpipe-metric-figure")
        self.title = widgets.HTML()
        self.title.add_class("mlpipe-metric-title")
        self.widget = widgets.VBox([self.title, self.figure], layout=widgets.Layout(margin="0 12px 8px 0"))
        self.widget.add_class("mlpipe-metric-chart")

    def show(self, series: dict[str, list], legend: dict[str, str]):
        """Draw each series (name -> values at steps 1, 2, ...; thinned when long) and the legend (name ->
        a note after it). The newest values are the panel's line of text, kept apart: they change at every
        flush, the legend only when a series comes."""
        x_max, y_lo, y_hi = 1.0, math.inf, -math.inf
        for name, values in series.items():
            line = self.lines.get(name) or self._line(name)
            pick = thinned(len(values))
            y = np.asarray(values, dtype=float)[pick]
            with line.hold_sync():
                line.x, line.y = pick + 1.0, y
            if len(y):
                x_max, y_lo, y_hi = max(x_max, len(values)), min(y_lo, y.min()), max(y_hi, y.max())
        self._bounds(x_max, y_lo, y_hi)
        self.title.value = f"<div style='{_TITLE_STYLE}'>" + "".join(
            f"<span class='mlpipe-metric-name' style='margin-right:10px;white-space:nowrap'>"
            f"<span class='mlpipe-metric-swatch' style='{_SWATCH_STYLE};background:{self.lines[n].colors[0]}'></span>"
            f"{html.escape(n)}{' <b>' + html.escape(v) + '</b>' if v else ''}</span>"
            for n, v in legend.items()) + "</div>"

    def _line(self, name: str) -> bq.Lines:
        colour = PALETTE[len(self.lines) % len(PALETTE)]
        tooltip = bq.Tooltip(fields=["x", "y"], labels=["step", name], formats=["d", ".6~g"])
        line = self.lines[name] = bq.Lines(scales={"x": self.x_scale, "y": self.y_scale}, colors=[colour],
                                           stroke_width=1.5, marker="circle", marker_size=10, labels=[name],
                                           tooltip=tooltip, tooltip_style=_TOOLTIP_STYLE)
        self.figure.marks = [*self.figure.marks, line]
        return line

    def _bounds(self, x_max: float, y_lo: float, y_hi: float):
        """Widen an axis only when a point falls outside it, to round bounds with round ticks."""
        xs = self.x_scale
        if xs.max is None or x_max > xs.max or (not self.live and x_max != xs.max):
            lo, hi, step = nice_range(0, max(4.0, x_max * 1.5) if self.live else x_max, 4, integer=True)
            with xs.hold_sync():
                xs.min, xs.max = lo, hi
            self.x_axis.tick_values = np.asarray(ticks(lo, hi, step))
        ys = self.y_scale
        if y_lo > y_hi:
            return
        if ys.min is None or y_lo < ys.min or y_hi > ys.max:
            margin = (y_hi - y_lo) * 0.1  # not across zero: a loss axis starts at 0, not -0.5
            lo = y_lo - margin if y_lo - margin >= 0 or y_lo < 0 else 0.0
            hi = y_hi + margin if y_hi + margin <= 0 or y_hi > 0 else 0.0
            lo, hi, step = nice_range(lo, hi, 4)
            if ys.min is not None:  # never narrower than before: a live chart does not jump back
                lo, hi = min(lo, ys.min), max(hi, ys.max)
                lo, hi, step = nice_range(lo, hi, 4)
            with ys.hold_sync():
                ys.min, ys.max = lo, hi
            self.y_axis.tick_values = np.asarray(ticks(lo, hi, step))


class Pacer:
    """Sends what panels ask to show, values before charts, within a budget of page work per second
    over all panels, from one thread: ``rate`` chart redraws a second, a line of values as text costing
    a tenth of a redraw. A bqplot chart's redraw costs a busy page 15 to 25 ms (benchmarks/monitor_load.py):
    50 steps with 7 charts each, redrawn at every 10 Hz flush, would ask for 3,500 redraws a second and
    the page would fall minutes behind; at 20 a second its frames still took 3 times as long as with
    the sparklines it replaced, at 5 a second about as long. Paced, the few charts of one running step
    still follow closely, many charts share the budget (each redrawn less often), and the page never
    falls behind by more than what it can draw."""

    def __init__(self, rate: float = 10, open_charts: int = 24):
        self.rate = rate
        self.open_charts = open_charts
        self._active: dict = {}  # (panel id, chart key) -> when last drawn or admitted
        self._waiting: dict = {}  # (panel, key) -> its cost, in the order asked
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, panel, key: str, cost: float = 1.0):
        with self._cond:
            self._waiting.setdefault((panel, key), cost)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metric-charts", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def admit(self, panel, keys) -> bool:
        """Whether a new panel may open its charts: while the charts drawn in the last ``ACTIVE_SECONDS``
        and these stay within ``open_charts``. Beyond, a panel starts closed, its values as text."""
        with self._cond:
            now = time.monotonic()
            self._active = {k: t for k, t in self._active.items() if now - t < ACTIVE_SECONDS}
            if len(self._active) + len(keys) > self.open_charts:
                return False
            self._active.update({(id(panel), key): now for key in keys})
            return True

    def wait_idle(self, timeout: float = 30) -> bool:
        """True once everything asked for has been sent (for tests and the benchmark)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def _run(self):
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting)
                batch, cost = [], 0.0
                # the values first (cheap, and what a user reads), then charts, each in the order asked;
                # about 50 ms of the budget at a time
                for item, item_cost in sorted(self._waiting.items(), key=lambda kv: kv[0][1] != VALUES):
                    if batch and cost + item_cost > max(1.0, self.rate * 0.05):
                        break
                    batch.append(item)
                    cost += item_cost
                    del self._waiting[item]
                self._busy = True
            started = time.monotonic()
            for panel, key in batch:
                if key != VALUES:
                    self._active[(id(panel), key)] = started
                try:
                    panel.draw(key)
                except Exception:  # a chart that cannot draw must not stop the others
                    logging.getLogger(__name__).exception("metric chart %s could not be drawn", key)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            time.sleep(max(0.0, cost / self.rate - (time.monotonic() - started)))


VALUES = "values"  # the key of a panel's line of values as text
ACTIVE_SECONDS = 10
PACER = Pacer()


class MetricsPanel:
    """The metrics of one step run. ``add`` as they come, ``render`` to show them: values, tables and
    images at once, charts at once too or, ``paced``, through the shared ``PACER``. A paced panel opens
    its charts when the pacer admits them; otherwise it starts closed, every value shown as text, with
    a button to open the charts. ``files(rel)`` finds a logged image's file (or returns None)."""

    def __init__(self, files=None, paced: bool = False):
        self.files = files
        self.paced = paced
        self.open: bool | None = None if paced else True  # charts shown; None: not decided yet
        self.scalars: dict[str, list] = {}  # name -> every value logged, in order
        self.lists: dict[str, list] = {}
        self.rows: dict[str, dict] = {}  # log_row: column -> values; log_table: the table
        self.images: dict[str, str] = {}  # name -> the newest image's path in the run
        self.groups: dict[str, list[str]] = {}  # chart key -> its series' names
        self.chart_of: dict[str, str] = {}  # a charted scalar's name -> its chart key
        self.charts: dict[str, LineChart] = {}  # the charts made (when open), by key
        self.tables: dict[str, widgets.HTML] = {}
        self.image_views: dict[str, widgets.VBox] = {}
        self._dirty: dict[tuple[str, str], None] = {}  # (kind, name) changed since the last render, in order
        self._lock = threading.RLock()  # the pacer's thread reads what the monitor's adds
        self.values = widgets.HTML()
        self.values.add_class("mlpipe-metric-values")
        self.toggle = widgets.Button(description="Hide charts", tooltip="Show or hide this step's metric charts",
                                     layout=widgets.Layout(display="none", width="auto", height="24px"))
        self.toggle.add_class("mlpipe-metric-toggle")
        self.toggle.on_click(lambda _b: self.set_open(not self.open))
        self.box = widgets.Box([], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.widget = widgets.VBox([widgets.HBox([self.values, self.toggle]), self.box])
        self.widget.add_class("mlpipe-metric-panel")

    # -- recording ------------------------------------------------------------------------------------------
    def add(self, name: str, kind: str, value):
        with self._lock:
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
        with self._lock:
            dirty, self._dirty = self._dirty, {}
            if not dirty:
                return
            redraw: dict[str, None] = {}
            for kind, name in dirty:
                if kind == "scalar":
                    values = self.scalars[name]
                    if len(values) >= 2 and all(is_number(v) for v in values):
                        redraw[self._group_for(name)] = None
                elif kind == "list":
                    key = f"list:{name}"
                    self.groups.setdefault(key, [name])
                    redraw[key] = None
                elif kind in ("row", "table"):
                    self._table(name)
                elif kind == "image":
                    self._image(name)
            if redraw and self.open is None:
                self.open = PACER.admit(self, list(self.groups))
                self.toggle.description = "Hide charts" if self.open else "Show charts"
            if self.open:
                for key in redraw:
                    self._chart(key)
            self.toggle.layout.display = "inline-flex" if self.groups else "none"
            redraw = list(redraw) if self.open else []
        for key in [VALUES, *redraw]:
            if self.paced:
                PACER.request(self, key, 0.1 if key == VALUES else 1.0)
            else:
                self.draw(key)

    def set_open(self, show: bool):
        """Open (make and draw every chart) or close the charts; the button does this."""
        with self._lock:
            self.open = show
            for key in self.groups if show else ():
                self._chart(key)
            for chart in self.charts.values():
                chart.widget.layout.display = None if show else "none"
            self.toggle.description = "Hide charts" if show else "Show charts"
            self._show_values()
            keys = list(self.groups) if show else []
        for key in keys:
            PACER.request(self, key) if self.paced else self.draw(key)

    def _show_values(self):
        """Each metric's newest value, as text beside its name (lists too while the charts are closed)."""
        shown = [(n, short(v[-1])) for n, v in self.scalars.items()]
        if not self.open:
            shown += [(n, f"[{len(v)} values]") for n, v in self.lists.items()]
        self.values.value = f"<div style='{_TITLE_STYLE};max-width:none'>" + "".join(
            f"<span class='mlpipe-metric-value' style='margin-right:14px;white-space:nowrap'>{html.escape(n)} "
            f"<b>{html.escape(v)}</b></span>" for n, v in shown) + "</div>" if shown else ""

    def draw(self, key: str):
        """Bring one chart (or the values, ``VALUES``) up to date with what was logged; a chart not made,
        while closed: nothing."""
        with self._lock:
            if key == VALUES:
                self._show_values()
                return
            chart = self.charts.get(key)
            if chart is None or not self.open:
                return
            if key.startswith("list:"):
                name = key[5:]
                series = {name: [v for v in self.lists[name] if is_number(v)]}
                legend = {name: f"{len(self.lists[name])} values"}
            else:
                series = {n: list(self.scalars[n]) for n in self.groups[key]}
                legend = {n: "" for n in series}
        chart.show(series, legend)

    def _place(self, view):
        self.box.children = (*self.box.children, view)

    def _group_for(self, name: str) -> str:
        """The chart a scalar series joins: its family's, or the next of that family when full."""
        key = self.chart_of.get(name)
        if key is None:
            key, n = family(name), 1
            while len(self.groups.get(key, ())) >= MAX_SERIES:
                n += 1
                key = f"{family(name)} ({n})"
            self.groups.setdefault(key, []).append(name)
            self.chart_of[name] = key
        return key

    def _chart(self, key: str) -> LineChart:
        """The chart of ``key``, made (and placed) the first time."""
        chart = self.charts.get(key)
        if chart is None:
            chart = self.charts[key] = LineChart(key, live=not key.startswith("list:"))
            if key.startswith("list:"):
                chart.widget.add_class("mlpipe-metric-list")
            self._place(chart.widget)
        return chart

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
