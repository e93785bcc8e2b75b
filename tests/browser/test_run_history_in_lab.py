"""The run history in real JupyterLab: ``%pipeline runs`` draws a grid of the runs, the filter box
narrows it, two rows selected with the mouse compare side by side (also after sorting from a column
header's menu), and the file browser previews a step's CSV output and a logged image.

The grid (ipydatagrid) paints on a canvas, so the page records every text the canvas draws (an init
script wraps ``fillText``): the tests read the header and the run ids from what was painted.
"""
from __future__ import annotations

import re

from playwright.sync_api import expect

from helpers import write_notebook

RUN_TIMEOUT = 90_000
HEADER_HEIGHT, ROW_HEIGHT = 28, 24  # history_view.py: base_column_header_size, base_row_size
WIDTHS = {"status": 112, "run id": 215, "experiment": 100, "start": 140, "duration": 72, "trigger": 64}  # run_history.py

RECORD_TEXT = """
(() => {
  window.__painted = [];
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, x, y, ...rest) {
    window.__painted.push(String(text));
    return fill.call(this, text, x, y, ...rest);
  };
})();
"""

SETUP = r'''
import os, struct, zlib
from mlpipe_jupyter import Experiment, Pipeline, PipelineData, PipelineParameter, PythonScriptStep, Workspace
def png(w=40, h=24):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + b"\x21\x96\xf3" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
os.makedirs("src", exist_ok=True)
open("curve.png", "wb").write(png())
open("src/train.py", "w").write("""
import os, sys
from azureml.core import Run
run = Run.get_context()
c, out = float(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "scores.csv"), "w") as f:
    f.write("epoch,loss\\n" + "".join(f"{i},{c / i}\\n" for i in range(1, 6)))
for i in range(4):
    run.log("loss", c / (i + 1))
run.log("accuracy", 0.9 - c / 10)
run.log_image("curve", path=sys.argv[3])
""")
ws = Workspace.from_config()
C = PipelineParameter("C", default_value=1.0)
step = PythonScriptStep("train.py", name="train", source_directory="src",
                        arguments=[C, (scores := PipelineData("scores")), os.path.abspath("curve.png")], outputs=[scores])
ids = []
for value in (1.0, 0.5, 0.25):
    run = Experiment(ws, "hist").submit(Pipeline(ws, [step]), pipeline_parameters={"C": value})
    run.wait_for_completion()
    ids.append(run.id)
print("RUNS", " ".join(ids))
'''


def painted(page) -> list[str]:
    return page.evaluate("window.__painted.slice()")


def wait_painted(page, texts, timeout=RUN_TIMEOUT):
    """Until every one of ``texts`` has been drawn since the record was last cleared."""
    try:
        page.wait_for_function("texts => texts.every(t => window.__painted.includes(t))", arg=list(texts),
                               timeout=timeout)
    except Exception:
        missing = [t for t in texts if t not in painted(page)]
        raise AssertionError(f"never drawn: {missing}; drawn: {sorted(set(painted(page)))[:80]}") from None


def click_row(page, grid, row: int, key: str | None = None):
    """Click a row of the grid (holding ``key``, as Shift, while clicking)."""
    box = grid.bounding_box()
    if key:
        page.keyboard.down(key)
    page.mouse.click(box["x"] + 40, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * row + ROW_HEIGHT / 2)
    if key:
        page.keyboard.up(key)


def test_run_history_grid_filter_compare_and_files(lab, lab_server):
    write_notebook(lab_server.root, "history.ipynb", ["%load_ext mlpipe_jupyter", SETUP,
                                                     "%pipeline runs --experiment hist"])
    lab.page.add_init_script(RECORD_TEXT)
    lab.open("history.ipynb")
    lab.run_all()
    expect(lab.output(1)).to_contain_text("RUNS", timeout=RUN_TIMEOUT)
    newest_last = re.search(r"RUNS (\S+) (\S+) (\S+)", lab.output_text(1)).groups()
    shown = list(reversed(newest_last))  # the table is newest first

    history = lab.output(2).locator(".mlpipe-run-history")
    grid = history.locator(".mlpipe-history-grid")
    expect(grid).to_be_visible(timeout=RUN_TIMEOUT)
    wait_painted(lab.page, ["status", "run id", "experiment", "start", "duration", "trigger", "C", *shown,
                            "✓ Completed"])
    box = grid.bounding_box()
    assert box["width"] > 600 and box["height"] >= HEADER_HEIGHT + 3 * ROW_HEIGHT, box
    expect(history.locator(".mlpipe-history-count")).to_have_text("3 of 3 runs")
    lab.screenshots("run-history-table", history)

    # the filter box narrows the rows: only the run with C=0.5 is drawn again
    lab.page.evaluate("window.__painted = []")
    history.locator(".mlpipe-history-filter input").fill("C=0.5")
    expect(history.locator(".mlpipe-history-count")).to_have_text("1 of 3 runs")
    wait_painted(lab.page, [shown[1]])
    assert shown[0] not in painted(lab.page) and shown[2] not in painted(lab.page)
    lab.page.evaluate("window.__painted = []")
    history.locator(".mlpipe-history-filter input").fill("")
    expect(history.locator(".mlpipe-history-count")).to_have_text("3 of 3 runs")
    wait_painted(lab.page, shown)  # the count comes first; clicks before the rows are drawn again miss them

    # select two rows with the mouse (click, then Shift+click) and compare them
    click_row(lab.page, grid, 0)
    click_row(lab.page, grid, 1, key="Shift")
    history.locator(".mlpipe-compare").click()
    table = history.locator(".mlpipe-compare-table")
    expect(table).to_be_visible()
    expect(table.locator("thead th")).to_have_text(["", shown[0], shown[1]])
    c_row = table.locator("tr.mlpipe-compare-parameter")
    expect(c_row).to_have_class(re.compile("mlpipe-diff"))
    expect(c_row.locator("td")).to_have_text(["0.25", "0.5"])
    highlight = c_row.locator("td").first.evaluate("el => getComputedStyle(el).backgroundColor")
    plain = table.locator("tr.mlpipe-compare-status td").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert highlight != plain, (highlight, plain)
    expect(table.locator("tr.mlpipe-compare-status")).not_to_have_class(re.compile("mlpipe-diff"))
    chart = history.locator(".mlpipe-compare-chart svg").first
    expect(chart).to_be_visible()
    expect(history.locator(".mlpipe-compare-chart")).to_contain_text("step")
    assert history.locator(".mlpipe-compare-chart .line").count() >= 2
    lab.screenshots("run-history-compare", history)

    # sort by C, descending, from the menu button in its header's bottom-right corner: the same two rows
    # are other runs now
    box = grid.bounding_box()
    c_right = sum(WIDTHS[c] for c in ("status", "run id", "experiment", "start", "duration", "trigger")) + 96
    lab.page.mouse.click(box["x"] + c_right - 8, box["y"] + HEADER_HEIGHT - 8)
    lab.page.evaluate("window.__painted = []")
    lab.page.locator(".lm-Menu-itemLabel", has_text="Sort Descending").click()
    wait_painted(lab.page, [shown[2]])
    click_row(lab.page, grid, 0)
    click_row(lab.page, grid, 1, key="Shift")
    history.locator(".mlpipe-compare").click()
    expect(table.locator("thead th")).to_have_text(["", shown[2], shown[1]])
    expect(table.locator("tr.mlpipe-compare-parameter td")).to_have_text(["1", "0.5"])

    # one run's files: its step's CSV output as a table, then the logged image (row 2, sorted by C
    # descending, is the run with C=0.25: its losses are 0.25 / epoch)
    click_row(lab.page, grid, 2)
    history.locator(".mlpipe-open-files").click()
    files = history.locator(".mlpipe-files")
    listing = files.locator(".mlpipe-files-list select")
    expect(listing).to_be_visible()
    where = files.locator(".mlpipe-files-path")
    listing.select_option(label="▸ step outputs/")
    expect(where).to_have_text("step outputs")
    listing.select_option(label="▸ scores/")
    expect(where).to_have_text("step outputs/scores")
    listing.select_option(label=listing.locator("option").filter(has_text="scores.csv").inner_text())
    preview = files.locator(".mlpipe-preview-table")
    expect(preview.locator("thead th")).to_have_text(["epoch", "loss"])
    expect(preview.locator("tbody tr")).to_have_count(5)
    expect(preview.locator("tbody tr").nth(1).locator("td")).to_have_text(["2", "0.125"])
    expect(files.locator(".mlpipe-download")).to_have_attribute("href", re.compile("^data:text/csv;base64,"))
    lab.screenshots("run-history-files-csv", files)

    listing.select_option(label="↑ ..")
    expect(where).to_have_text("step outputs")
    listing.select_option(label="↑ ..")
    expect(where).to_have_text("/")
    listing.select_option(label="▸ images/")
    expect(where).to_have_text("images")
    listing.select_option(index=1)
    image = files.locator(".mlpipe-preview-image")
    expect(image).to_be_visible()
    size = image.evaluate("el => [el.naturalWidth, el.naturalHeight]")
    assert size == [40, 24], size
    lab.screenshots("run-history-files-image", files)
