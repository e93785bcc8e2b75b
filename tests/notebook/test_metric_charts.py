"""The metric charts of a step: grouping into charts, each kind of metric, appending without rebuilding,
and the monitor of a real run ending with every logged value on its chart."""
from __future__ import annotations

import time

import bqplot as bq
import ipywidgets as widgets
import numpy as np
from PIL import Image

from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep
from mlpipe_jupyter.notebook.metric_charts import (MAX_POINTS, MAX_SERIES, PACER, MetricsPanel, family, nice_range,
                                                   panel_for_run, run_file)
from mlpipe_jupyter.notebook.monitor import RunMonitor


def _png(path, colour=(200, 30, 30)):
    Image.new("RGB", (8, 6), colour).save(path)
    return path


def test_a_family_of_series_shares_a_chart_and_other_quantities_get_their_own():
    assert [family(n) for n in ("loss", "val_loss", "train/loss", "Test-Loss", "lr", "val")] == \
        ["loss", "loss", "loss", "loss", "lr", "val"]
    panel = MetricsPanel()
    for i in range(3):
        for name in ("loss", "val_loss", "train/loss", "lr"):
            panel.add(name, "scalar", 1.0 / (i + 1))
    panel.render()
    assert {k: list(c.lines) for k, c in panel.charts.items()} == {"loss": ["loss", "val_loss", "train/loss"],
                                                                   "lr": ["lr"]}
    assert [type(v) for v in panel.box.children] == [widgets.VBox, widgets.VBox]
    chart = panel.charts["loss"]
    assert isinstance(chart.figure, bq.Figure) and len(chart.figure.axes) == 2 and len(chart.figure.marks) == 3
    # the legend names each series in its line's colour; the newest values are text beside their names
    assert "val_loss</span>" in chart.title.value and chart.lines["val_loss"].colors[0] in chart.title.value
    assert "val_loss <b>0.3333</b>" in panel.values.value and "lr <b>0.3333</b>" in panel.values.value


def test_a_full_chart_overflows_into_a_second_one_of_the_same_family():
    panel = MetricsPanel()
    names = [f"loss_{i}" for i in range(MAX_SERIES + 2)]
    for value in (1.0, 2.0):
        for name in names:
            panel.add(name, "scalar", value)
    panel.render()
    assert [len(c.lines) for c in panel.charts.values()] == [MAX_SERIES, 2]


def test_one_value_is_text_until_a_second_makes_it_a_chart_and_words_stay_text():
    panel = MetricsPanel()
    panel.add("accuracy", "scalar", 0.93)
    panel.add("optimizer", "scalar", "adam")
    panel.render()
    assert panel.charts == {} and "accuracy <b>0.93</b>" in panel.values.value and "adam" in panel.values.value
    panel.add("accuracy", "scalar", 0.95)
    panel.render()
    assert list(panel.charts) == ["accuracy"] and "accuracy <b>0.95</b>" in panel.values.value
    assert list(panel.charts["accuracy"].lines["accuracy"].y) == [0.93, 0.95]


def test_live_append_keeps_the_figure_and_its_line_and_adds_points():
    panel = MetricsPanel()
    panel.add("loss", "scalar", 3.0)
    panel.add("loss", "scalar", 2.0)
    panel.render()
    chart = panel.charts["loss"]
    figure, line, box = chart.figure, chart.lines["loss"], panel.box.children
    for value in (1.5, 1.0):
        panel.add("loss", "scalar", value)
    panel.render()
    assert panel.charts["loss"].figure is figure and chart.lines["loss"] is line and panel.box.children == box
    assert figure.marks == [line]
    assert list(line.x) == [1, 2, 3, 4] and list(line.y) == [3.0, 2.0, 1.5, 1.0]
    assert "loss <b>1</b>" in panel.values.value


def test_axes_have_round_bounds_and_ticks_and_widen_only_when_a_point_falls_outside():
    assert nice_range(0.0667, 1.0) == (0.0, 1.0, 0.2)
    assert nice_range(0, 22.5, integer=True) == (0, 25, 5) and nice_range(0, 4, integer=True) == (0, 4, 1)
    assert nice_range(0.001234, 0.001567) == (0.0012, 0.0016, 0.0001) and nice_range(3, 3) == (2.6, 3.4, 0.2)
    panel = MetricsPanel()
    for value in (0.9, 0.5, 0.1):
        panel.add("loss", "scalar", value)
    panel.render()
    chart = panel.charts["loss"]
    assert (chart.y_scale.min, chart.y_scale.max) == (0.0, 1.0) and list(chart.y_axis.tick_values) == \
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert (chart.x_scale.min, chart.x_scale.max) == (0, 5) and list(chart.x_axis.tick_values) == [0, 1, 2, 3, 4, 5]
    panel.add("loss", "scalar", 0.05)
    panel.render()  # inside both axes: they stay
    assert (chart.x_scale.max, chart.y_scale.min, chart.y_scale.max) == (5, 0.0, 1.0)
    panel.add("loss", "scalar", 1.7)
    panel.add("loss", "scalar", 1.6)
    panel.render()
    assert chart.x_scale.max == 10 and (chart.y_scale.min, chart.y_scale.max) == (0.0, 2.0)


def test_a_long_series_is_drawn_thinned_with_its_newest_point():
    panel = MetricsPanel()
    for i in range(10 * MAX_POINTS + 7):
        panel.add("loss", "scalar", float(i))
    panel.render()
    line = panel.charts["loss"].lines["loss"]
    assert len(line.x) <= MAX_POINTS and line.x[0] == 1 and line.x[-1] == 10 * MAX_POINTS + 7
    assert np.array_equal(line.y, line.x - 1)  # each drawn point is the value logged at that step


def test_a_list_is_a_chart_of_its_values_and_a_new_list_replaces_it():
    panel = MetricsPanel()
    panel.add("hist", "list", [0.5, 2, 1])
    panel.render()
    chart = panel.charts["list:hist"]
    assert list(chart.lines["hist"].y) == [0.5, 2, 1] and "3 values" in chart.title.value
    panel.add("hist", "list", [4, 5])
    panel.render()
    assert panel.charts["list:hist"] is chart and list(chart.lines["hist"].y) == [4, 5]


def test_rows_and_tables_are_small_tables():
    panel = MetricsPanel()
    panel.add("scores", "row", {"fold": 1, "auc": 0.8})
    panel.add("scores", "row", {"fold": 2, "auc": 0.85})
    panel.add("grid", "table", {"C": [0.1, 1.0], "acc": [0.7, 0.9]})
    panel.render()
    scores, grid = panel.tables["scores"].value, panel.tables["grid"].value
    assert scores.count("<tr>") == 3 and ">fold</th>" in scores and ">0.85</td>" in scores
    assert grid.count("<tr>") == 3 and ">acc</th>" in grid and ">0.9</td>" in grid


def test_an_image_shows_the_logged_file_and_says_when_it_is_missing(tmp_path):
    _png(tmp_path / "a.png")
    panel = MetricsPanel(files=lambda rel: (tmp_path / rel) if (tmp_path / rel).is_file() else None)
    panel.add("confusion", "image", "a.png")
    panel.add("gone", "image", "b.png")
    panel.render()
    shown = panel.image_views["confusion"].children[1]
    assert isinstance(shown, widgets.Image) and shown.value == (tmp_path / "a.png").read_bytes()
    assert "image b.png not found" in panel.image_views["gone"].children[1].value


STEP = """
import time
from PIL import Image
from mlpipe_jupyter import Run
run = Run.get_context()
for i in range(25):
    run.log("loss", 1.0 / (i + 1))
    run.log("val_loss", 1.5 / (i + 1))
    time.sleep(0.01)
run.log("epochs", 25)
run.log_list("hist", [1, 3, 2])
run.log_row("folds", fold=1, auc=0.8)
Image.new("RGB", (8, 6), (10, 200, 10)).save("pic.png")
run.log_image("sample", path="pic.png")
"""


def _settled(monitor):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not monitor._stopped.is_set():
        time.sleep(0.05)
    return monitor.rows["train"].metrics_panel


def test_the_monitor_of_a_run_ends_with_every_logged_value_charted(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"train.py": STEP})
    step = PythonScriptStep("train.py", name="train", source_directory=str(src))
    run = Experiment(workspace, "charts").submit(Pipeline(workspace, [step]))
    live = RunMonitor(run)  # follows the runner's events as the step logs
    run.wait_for_completion(raise_on_error=True)
    for panel in (_settled(live), _settled(RunMonitor(run))):  # and a monitor opened after the end
        assert panel.paced and PACER.wait_idle(30)  # the monitor's charts are drawn by the shared pacer
        chart = panel.charts["loss"]
        assert list(chart.lines) == ["loss", "val_loss"]
        assert list(chart.lines["loss"].y) == [1.0 / (i + 1) for i in range(25)]
        assert list(chart.lines["val_loss"].x) == list(range(1, 26))
        assert "epochs <b>25</b>" in panel.values.value
        assert list(panel.charts["list:hist"].lines["hist"].y) == [1, 3, 2]
        assert ">0.8</td>" in panel.tables["folds"].value
        image = panel.image_views["sample"].children[1]
        assert isinstance(image, widgets.Image) and bytes(image.value).startswith(b"\x89PNG")

    train = run.get_steps()[0]
    stored = panel_for_run(train)  # what the designer shows for a step of a finished run
    assert list(stored.charts["loss"].lines["loss"].y) == [1.0 / (i + 1) for i in range(25)]
    rel = train.get_metrics()["sample"]
    assert run_file(workspace._store, train.id, rel) == workspace._store.run_dir(train.id) / rel
    assert run_file(workspace._store, train.id, "../escape.png") is None


def test_an_image_is_found_in_the_step_scratch_folder_while_the_step_runs(workspace):
    store = workspace._store
    scratch = store.staging_dir("step-r1")
    (scratch / "run" / "images").mkdir(parents=True)
    _png(scratch / "run" / "images" / "x.png")
    assert run_file(store, "r1", "images/x.png") == scratch / "run" / "images" / "x.png"
    assert run_file(store, "r2", "images/x.png") is None


def test_the_designer_shows_a_tapped_step_s_metrics_as_charts(workspace, tmp_path, write_scripts):
    from mlpipe_jupyter.notebook.designer import Designer

    src = write_scripts(tmp_path / "src", {"train.py": STEP})
    designer = Designer(Pipeline(workspace, [PythonScriptStep("train.py", name="train", source_directory=str(src))]),
                        experiment="charts")
    run = designer.submit()
    run.wait_for_completion(raise_on_error=True, timeout_seconds=60)
    designer.watch(run)
    designer.run_view.show_step("train")
    (panel,) = designer.run_view.metrics.children
    (values, _toggle), box = panel.children[0].children, panel.children[1]
    charts = {tuple(c._dom_classes): c for c in box.children}
    histogram = charts[("mlpipe-metric-chart", "mlpipe-metric-list")].children[1]
    assert list(histogram.marks[0].y) == [1, 3, 2]  # a list is a chart, not a raw list of numbers
    assert "epochs <b>25</b>" in values.value
    assert ("mlpipe-metric-image",) in charts and ("mlpipe-metric-table",) in charts


def test_past_the_open_chart_budget_a_panel_starts_closed_with_its_values_as_text(monkeypatch):
    monkeypatch.setattr(PACER, "open_charts", 2)
    monkeypatch.setattr(PACER, "_active", {})
    first, second = MetricsPanel(paced=True), MetricsPanel(paced=True)
    for value in (1.0, 0.5):
        for name in ("loss", "lr"):
            first.add(name, "scalar", value)
        second.add("loss", "scalar", value)
    first.render()
    second.render()
    assert PACER.wait_idle(30)  # a paced panel's values and charts go out from the pacer's thread
    assert first.open and list(first.charts) == ["loss", "lr"] and first.toggle.description == "Hide charts"
    assert second.open is False and second.charts == {} and second.toggle.description == "Show charts"
    assert "loss <b>0.5</b>" in second.values.value  # its values stay live, as text
    second.add("loss", "scalar", 0.25)
    second.render()
    assert PACER.wait_idle(30)
    assert "loss <b>0.25</b>" in second.values.value and second.charts == {}
    second.toggle.click()  # the user opens them: made and drawn with every value
    assert PACER.wait_idle(30)
    assert list(second.charts["loss"].lines["loss"].y) == [1.0, 0.5, 0.25] and "loss <b>0.25</b>" in second.values.value
    assert list(first.charts["lr"].lines["lr"].y) == [1.0, 0.5]
