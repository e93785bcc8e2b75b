"""A step's metrics in the monitor, in real JupyterLab: charts with axes and tick labels that grow while
the step logs, a tooltip with the value under the mouse, a logged list as a chart and a logged image.

The step logs until the test creates a gate file, so "still running" is a state the test controls."""
import re
import time

from playwright.sync_api import expect

from helpers import write_notebook

RUN_TIMEOUT = 90_000


def charts_notebook(gate) -> list[str]:
    return [
        "%load_ext mlpipe_jupyter",
        "%%step train\n"
        "import pathlib, time\n"
        "from PIL import Image, ImageDraw\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "picture = Image.new('RGB', (160, 100), (250, 250, 250))\n"
        "ImageDraw.Draw(picture).rectangle([20, 20, 140, 80], fill=(30, 140, 90))\n"
        "picture.save('sample.png')\n"
        "run.log_image('sample', path='sample.png')\n"
        "run.log_list('histogram', [3, 1, 4, 1, 5, 9, 2, 6])\n"
        "deadline = time.monotonic() + 120\n"
        "i = 0\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    i += 1\n"
        "    run.log('loss', 1.0 / i)\n"
        "    run.log('val_loss', 1.3 / i)\n"
        "    time.sleep(0.15)\n"
        "print('logged', i)",
        "run = %pipeline submit --experiment charts",
    ]


def dots(chart) -> int:
    return chart.locator("path.dot").count()


def more_points(chart, count: int):
    """Wait until the chart draws more than ``count`` points."""
    deadline = time.monotonic() + RUN_TIMEOUT / 1000
    while dots(chart) <= count:
        assert time.monotonic() < deadline, f"the chart stayed at {dots(chart)} points"
        time.sleep(0.1)


def test_metric_charts_grow_while_the_step_runs_and_show_values_on_hover(lab, lab_server, tmp_path):
    gate = tmp_path / "gate"
    write_notebook(lab_server.root, "charts.ipynb", charts_notebook(gate))
    lab.open("charts.ipynb")
    lab.run_all()

    row = lab.output(2).locator(".mlpipe-monitor .mlpipe-step-row.mlpipe-step-train")
    expect(row.locator(".mlpipe-status")).to_have_text("running", timeout=RUN_TIMEOUT)
    loss = row.locator(".mlpipe-metric-chart").filter(has_text="val_loss")
    histogram = row.locator(".mlpipe-metric-chart.mlpipe-metric-list")
    expect(loss.locator("path.dot").nth(5)).to_be_attached(timeout=RUN_TIMEOUT)
    expect(loss.locator(".mlpipe-metric-title")).to_contain_text("loss")
    expect(histogram.locator(".mlpipe-metric-title")).to_contain_text("histogram 8 values")

    # axes with readable tick labels on both charts, inside a figure of the compact size
    for chart in (loss, histogram):
        figure = chart.locator(".bqplot.figure")
        expect(figure).to_be_visible()
        box = figure.bounding_box()
        assert 300 <= box["width"] <= 340 and 160 <= box["height"] <= 200, box
        ticks = chart.locator(".axis .tick text").evaluate_all(  # the labels drawn, with a size on screen
            "els => els.filter(e => e.getBoundingClientRect().width > 0).map(e => e.textContent).filter(t => t.trim())")
        assert len(ticks) >= 4 and all(re.fullmatch(r"[-0-9.e+]+", t.strip()) for t in ticks), ticks
    assert dots(histogram) == 8

    # new points come while the step runs, on the same figure
    figure = loss.locator(".bqplot.figure").element_handle()
    before = dots(loss)
    more_points(loss, before + 4)
    assert figure.evaluate("el => el.isConnected")  # the figure drawn first, still in the page: not rebuilt
    expect(row.locator(".mlpipe-status")).to_have_text("running")

    # the logged image, shown as it is
    image = row.locator(".mlpipe-metric-image img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") == 160
    lab.screenshots("metric-charts-running", row.locator(".mlpipe-metric-panel"))

    gate.touch()
    expect(row.locator(".mlpipe-status")).to_have_text("completed", timeout=RUN_TIMEOUT)
    logged = int(re.search(r"logged (\d+)", row.locator(".mlpipe-log").inner_text()).group(1))
    expect(row.locator(".mlpipe-metric-values")).to_contain_text(f"val_loss {1.3 / logged:.4g}")

    # the value under the mouse, in a tooltip
    loss.locator(".curve").nth(1).locator("path.dot").nth(2).hover()
    tooltip = lab.page.locator(".bqplot_mark_tooltip").filter(has_text="val_loss")
    expect(tooltip).to_be_visible()
    shown = re.search(r"step\s*(\d+)\s*val_loss\s*([0-9.]+)", tooltip.inner_text())
    assert shown and shown.group(2) == f"{1.3 / int(shown.group(1)):.6g}", tooltip.inner_text()
    lab.screenshots("metric-charts-hover", row.locator(".mlpipe-metric-panel"))
