"""How the designer looks and keeps its graph in view, in real JupyterLab: fitted on first paint and
after every resize, a side column that floats over the canvas instead of squeezing it, a docked panel
that fills its area, zoom and fit buttons, a minimap for large graphs, data objects as nodes, and
steps marked stale from the kernel.

Everything is read from what the page renders: the canvas element's box, the graph's rendered
bounding box from cytoscape (``mlpipeCy``), classes and visible text.
"""
from __future__ import annotations

from playwright.sync_api import expect

from helpers import write_notebook
from test_designer import RUN_TIMEOUT, node_point, open_designer

KERNEL_DESIGNER = ("from mlpipe_jupyter.notebook.designer import notebook_designer\n"
                   "d = notebook_designer(get_ipython().magics_manager.registry['PipelineMagics'])\n"
                   "print('designer ready')")

GRAPH_IN_VIEW = """el => { const cy = el.mlpipeCy; const bb = cy.elements().renderedBoundingBox({});
    return {x1: bb.x1, y1: bb.y1, x2: bb.x2, y2: bb.y2, w: cy.width(), h: cy.height(),
            zoom: cy.zoom(), pan: cy.pan()}; }"""

FITTED = """([el, _]) => { const cy = el.mlpipeCy; if (!cy || cy.width() === 0) { return false; }
    const bb = cy.elements().renderedBoundingBox({}); const w = cy.width(), h = cy.height();
    return bb.x1 >= 0 && bb.y1 >= 0 && bb.x2 <= w && bb.y2 <= h && (bb.w / w > 0.6 || bb.h / h > 0.6); }"""


def view(canvas) -> dict:
    return canvas.evaluate(GRAPH_IN_VIEW)


def assert_fitted(canvas, where):
    """The whole graph (borders and labels) is inside the canvas and fills most of one dimension."""
    canvas.page.wait_for_function(FITTED, arg=[canvas.element_handle(), None], timeout=RUN_TIMEOUT)
    v = view(canvas)
    assert v["x1"] >= 0 and v["y1"] >= 0 and v["x2"] <= v["w"] and v["y2"] <= v["h"], (where, v)
    fill = max((v["x2"] - v["x1"]) / v["w"], (v["y2"] - v["y1"]) / v["h"])
    assert fill > 0.6, (where, v)
    return v


def run_in_kernel(lab, code, marker):
    index = lab.add_cell_and_run(code)
    expect(lab.output(index)).to_contain_text(marker, timeout=RUN_TIMEOUT)
    return index


def canvas_width(canvas) -> float:
    return canvas.bounding_box()["width"]


def test_notebook_designer_fits_floats_its_side_column_and_marks_stale_steps(lab, lab_server):
    canvas = open_designer(lab, lab_server, "view.ipynb")
    page = lab.page
    designer = page.locator(".mlpipe-designer").first

    # first paint: fitted, not at zoom 1 in the top-left corner
    first = assert_fitted(canvas, "first paint in a notebook")
    assert first["zoom"] != 1 or first["pan"] != {"x": 0, "y": 0}
    lab.screenshots("designer-view-notebook", designer)

    # data objects are nodes of their own between the steps, named after the data
    data = canvas.evaluate("el => el.mlpipeCy.nodes('[kind=\"data\"]').map(n => [n.id(), n.style('label')])")
    assert ["data:data", "data"] in data and ["data:model", "model"] in data
    ids = set(canvas.evaluate("el => el.mlpipeCy.edges().map(e => e.id())"))
    assert {"out:prep:data", "edge:data:train", "out:train:model", "edge:model:evaluate"} <= ids
    canvas.scroll_into_view_if_needed()
    point = node_point(canvas, "data:model")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function("el => el.mlpipeCy.getElementById('data:model').selected()", arg=canvas.element_handle())

    # a narrower window: the canvas shrinks and the graph is fitted again
    page.set_viewport_size({"width": 900, "height": 1500})
    page.wait_for_function("([el, w]) => el.mlpipeCy.width() < w - 100", arg=[canvas.element_handle(), first["w"]])
    assert_fitted(canvas, "after a window resize")
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.wait_for_function("([el, w]) => Math.abs(el.mlpipeCy.width() - w) < 2",
                           arg=[canvas.element_handle(), first["w"]])
    assert_fitted(canvas, "after the window grew back")

    # the properties form floats over the canvas: its width does not change when it opens or closes
    width = canvas_width(canvas)
    canvas.scroll_into_view_if_needed()
    point = node_point(canvas, "step:train")
    page.mouse.dblclick(point["x"], point["y"])
    form = designer.locator(".mlpipe-designer-properties")
    expect(form.locator(".mlpipe-prop-name input")).to_have_value("train", timeout=RUN_TIMEOUT)
    form_box, canvas_box = form.bounding_box(), canvas.bounding_box()
    assert canvas_width(canvas) == width
    assert form_box["x"] > canvas_box["x"] + canvas_box["width"] / 2  # over the canvas's right side
    assert form_box["x"] + form_box["width"] <= canvas_box["x"] + canvas_box["width"]
    lab.screenshots("designer-view-properties", designer)
    form.locator("button", has_text="Close").click()
    expect(form).to_be_hidden()
    assert canvas_width(canvas) == width
    assert_fitted(canvas, "after the properties closed")

    # run details float too, and close with their own button
    run_in_kernel(lab, KERNEL_DESIGNER, "designer ready")
    run_in_kernel(lab, "d.details.value = '<b>train</b> step details'\nprint('details set')", "details set")
    card = designer.locator(".mlpipe-designer-details-card")
    expect(card).to_contain_text("train step details")
    assert canvas_width(canvas) == width
    card.locator(".mlpipe-designer-close").click()
    expect(card).to_be_hidden()
    assert canvas_width(canvas) == width

    # stale marking from the kernel: a dashed border, a "will rerun" badge, the reason on hover
    reason = "parameter 'C' changed from 1.0 to 0.05"
    run_in_kernel(lab, f"d.canvas.stale = {{'train': {reason!r}}}\nprint('stale set')", "stale set")
    badge = designer.locator(".mlpipe-stale-badge[data-step='train']")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("\u21bb will rerun")
    assert badge.get_attribute("title") == reason
    assert canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').hasClass('stale')")
    assert canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').style('border-style')") == "dashed"
    canvas.scroll_into_view_if_needed()
    b, n = badge.bounding_box(), node_point(canvas, "step:train")
    assert abs(b["y"] + b["height"] / 2 - n["y"]) < 60  # on the node's top edge, not somewhere else
    page.mouse.move(n["x"], n["y"] + 5)
    tooltip = designer.locator(".mlpipe-designer-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text(reason)
    lab.screenshots("designer-view-stale", designer)
    page.mouse.move(5, 5)
    run_in_kernel(lab, "d.canvas.stale = {}\nprint('stale cleared')", "stale cleared")
    expect(badge).to_have_count(0)
    assert not canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').hasClass('stale')")

    # status colours follow the `status` trait, back to neutral when it is emptied
    neutral = canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').style('background-color')")
    run_in_kernel(lab, "d.canvas.status = {'train': {'status': 'failed'}}\nprint('status set')", "status set")
    page.wait_for_function("el => el.mlpipeCy.getElementById('step:train').hasClass('status-failed')",
                           arg=canvas.element_handle())
    assert canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').style('background-color')") != neutral
    run_in_kernel(lab, "d.canvas.status = {}\nprint('status emptied')", "status emptied")
    page.wait_for_function("el => !el.mlpipeCy.getElementById('step:train').hasClass('status-failed')",
                           arg=canvas.element_handle())
    assert canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').style('background-color')") == neutral
    assert "failed" not in canvas.evaluate("el => el.mlpipeCy.getElementById('step:train').data('label')")

    # zoom buttons change the zoom; a resize then keeps the user's view; Fit brings the fitted view back
    canvas.scroll_into_view_if_needed()
    fitted = view(canvas)["zoom"]
    canvas.locator(".mlpipe-zoom-in").click()
    zoomed_in = view(canvas)["zoom"]
    assert zoomed_in > fitted * 1.1
    canvas.locator(".mlpipe-zoom-out").click()
    canvas.locator(".mlpipe-zoom-out").click()
    assert view(canvas)["zoom"] < zoomed_in
    canvas.locator(".mlpipe-zoom-in").click()
    canvas.locator(".mlpipe-zoom-in").click()
    kept = view(canvas)["zoom"]
    page.set_viewport_size({"width": 1200, "height": 1500})
    page.wait_for_function("([el, w]) => el.mlpipeCy.width() < w - 100", arg=[canvas.element_handle(), first["w"]])
    page.wait_for_timeout(200)
    assert view(canvas)["zoom"] == kept  # the user's own zoom survives a resize
    canvas.locator(".mlpipe-zoom-fit").click()
    assert_fitted(canvas, "after Fit")


def test_panel_fills_its_area_with_a_one_row_toolbar_and_the_launcher_has_an_icon(lab, lab_server):
    open_designer(lab, lab_server, "panel-view.ipynb")
    page = lab.page

    page.keyboard.press("Escape")
    page.evaluate("window.jupyterapp.commands.execute('mlpipe:open-designer')")
    panel = page.locator(".mlpipe-designer-panel")
    expect(panel).to_be_visible(timeout=RUN_TIMEOUT)
    canvas = panel.locator(".mlpipe-designer-canvas[data-ready='true']")
    expect(canvas).to_be_visible(timeout=RUN_TIMEOUT)
    assert_fitted(canvas, "first paint in the panel")

    def check_fills(where):
        box, cbox = panel.bounding_box(), canvas.bounding_box()
        assert cbox["height"] > box["height"] * 0.7, (where, box, cbox)
        assert cbox["y"] + cbox["height"] <= box["y"] + box["height"], (where, box, cbox)
        assert box["y"] + box["height"] - (cbox["y"] + cbox["height"]) < 60, (where, box, cbox)  # no empty band
        no_scroll = panel.evaluate("el => [el, ...el.querySelectorAll('.mlpipe-designer, .mlpipe-designer-body')]"
                                   ".every(e => e.scrollWidth <= e.clientWidth + 1)")
        assert no_scroll, where

    check_fills("split beside the notebook")
    # the panel as the only document, at 1400 px: the toolbar is one row, the canvas still fills
    page.evaluate("async () => { const c = window.jupyterapp.commands;"
                  " await c.execute('application:set-mode', {mode: 'single-document'});"
                  " if (window.jupyterapp.shell.leftCollapsed === false) {"
                  "   await c.execute('application:toggle-left-area'); } }")
    page.evaluate("id => window.jupyterapp.shell.activateById(id)", panel.get_attribute("id"))
    page.wait_for_function("el => el.getBoundingClientRect().width > 1300", arg=panel.element_handle())
    assert_fitted(canvas, "after the panel grew")
    check_fills("alone in the main area")
    toolbar = panel.locator(".mlpipe-designer-toolbar")
    tops = toolbar.evaluate("el => [...el.children].filter(c => c.offsetWidth > 0).map(c => {"
                            " const r = c.getBoundingClientRect(); return Math.round(r.top + r.height / 2); })")
    assert max(tops) - min(tops) <= 4, tops
    lab.screenshots("designer-view-panel", panel)

    # a narrow panel: the toolbar wraps, nothing scrolls sideways
    page.set_viewport_size({"width": 800, "height": 1000})
    page.wait_for_function("el => el.getBoundingClientRect().width < 800", arg=panel.element_handle())
    assert_fitted(canvas, "in a narrow panel")
    check_fills("narrow")
    page.set_viewport_size({"width": 1400, "height": 1500})

    # the Launcher's tile for the designer shows its icon
    page.evaluate("window.jupyterapp.commands.execute('launcher:create')")
    tile = page.locator(".jp-LauncherCard", has_text="Pipeline Designer").first
    expect(tile).to_be_visible(timeout=RUN_TIMEOUT)
    icon = tile.locator(".jp-LauncherCard-icon svg")
    expect(icon).to_be_visible()
    assert icon.bounding_box()["width"] >= 16
    lab.screenshots("designer-view-launcher", tile)
    tab_icon = page.locator(".lm-TabBar-tab", has_text="Pipeline Designer").locator("svg")
    assert tab_icon.count() >= 1


def test_minimap_for_a_large_graph_pans_the_view(lab, lab_server):
    build = ("import tempfile\n"
             "from mlpipe_jupyter import Workspace, Pipeline, PipelineData, PythonScriptStep\n"
             "folder = tempfile.mkdtemp()\n"
             "ws = Workspace.create('big', path=folder, exist_ok=True)\n"
             "open(folder + '/s.py', 'w').write('print(1)')\n"
             "steps, previous = [], []\n"
             "for i in range(60):\n"
             "    out = PipelineData(f'd{i}')\n"
             "    ins = previous[-2:] if i % 10 else previous[-1:]\n"
             "    steps.append(PythonScriptStep('s.py', name=f'step{i:02d}', source_directory=folder,\n"
             "                                  inputs=list(ins), outputs=[out]))\n"
             "    previous.append(out)\n"
             "pipeline = Pipeline(ws, steps)\n"
             "pipeline.designer()")
    write_notebook(lab_server.root, "big.ipynb", [build])
    lab.open("big.ipynb")
    lab.run_all()
    canvas = lab.page.locator(".mlpipe-designer-canvas[data-ready='true']").first
    expect(canvas).to_be_visible(timeout=RUN_TIMEOUT)
    canvas.scroll_into_view_if_needed()
    assert canvas.evaluate("el => el.mlpipeCy.nodes('[kind=\"step\"]').length") == 60
    assert_fitted(canvas, "a 60-step graph")
    minimap = canvas.locator(".mlpipe-minimap")
    expect(minimap).to_be_visible()
    lab.screenshots("designer-view-minimap", canvas)

    # zoom in so only part of the graph shows; a click on the minimap's far end moves the view there
    for _ in range(4):
        canvas.locator(".mlpipe-zoom-in").click()
    before = view(canvas)
    box = minimap.locator("canvas").bounding_box()
    lab.page.mouse.click(box["x"] + box["width"] - 6, box["y"] + box["height"] / 2)
    after = view(canvas)
    assert after["zoom"] == before["zoom"]
    assert after["pan"]["x"] < before["pan"]["x"] - 100, (before, after)  # moved towards the graph's right end
    # dragging on it pans continuously
    lab.page.mouse.move(box["x"] + box["width"] - 6, box["y"] + box["height"] / 2)
    lab.page.mouse.down()
    lab.page.mouse.move(box["x"] + 10, box["y"] + box["height"] / 2, steps=8)
    lab.page.mouse.up()
    assert view(canvas)["pan"]["x"] > after["pan"]["x"] + 100
