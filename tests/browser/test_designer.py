"""The pipeline designer in real JupyterLab, used with the mouse and keyboard as a person would.

The canvas is drawn by cytoscape.js; the tests find where a node is on the screen through the
canvas element's ``mlpipeCy`` handle, then press, move and release the real mouse there. What the
kernel's pipeline became is read back by running a cell, never from the page alone.
"""
from __future__ import annotations

import json

from playwright.sync_api import expect

from helpers import write_notebook

RUN_TIMEOUT = 90_000

BODY = ("import os\n"
        "for name, path in outputs.items():\n"
        "    open(os.path.join(path, 'out.txt'), 'w').write(name)\n"
        "print('inputs', sorted(inputs), 'outputs', sorted(outputs))")

PROBE = ("import json\n"
         "from mlpipe_jupyter.notebook.designer import notebook_designer\n"
         "def probe():\n"
         "    designer = notebook_designer(get_ipython().magics_manager.registry['PipelineMagics'])\n"
         "    doc = designer.source.doc()\n"
         "    print('PROBE', json.dumps({s['name']: {'position': s.get('position'),\n"
         "        'inputs': [i['data'] for i in s.get('inputs', [])],\n"
         "        'outputs': [o['data'] for o in s.get('outputs', [])]} for s in doc['steps']}))")


def designer_notebook() -> list[str]:
    return [
        "%load_ext mlpipe_jupyter",
        "%%step prep --outputs data\n" + BODY,
        "%%step train --inputs data --outputs model\n" + BODY,
        "%%step evaluate --inputs model\n" + BODY,
        "%%step extra\n" + BODY,
        PROBE,
        "%pipeline show",
    ]


def node_point(canvas, node_id):
    """Where a node is drawn, in page coordinates."""
    return canvas.evaluate(
        """(el, id) => { const cy = el.mlpipeCy; const n = cy.getElementById(id);
            if (n.empty()) { return null; }
            const p = n.renderedPosition(); const r = cy.container().getBoundingClientRect();
            return {x: r.left + p.x, y: r.top + p.y}; }""", node_id)


def graph_ids(canvas):
    return set(canvas.evaluate("el => el.mlpipeCy.elements().map(e => e.id())"))


def drag(page, start, end, hover_ms=400):
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(start["x"] + 6, start["y"] + 6, steps=3)
    page.mouse.move(end["x"], end["y"], steps=15)
    page.wait_for_timeout(hover_ms)  # edgehandles snaps to a target after hovering it briefly
    page.mouse.up()


def wait_for(canvas, script, arg=None):
    canvas.page.wait_for_function(f"([el, arg]) => {{ const cy = el.mlpipeCy; return {script}; }}",
                                  arg=[canvas.element_handle(), arg], timeout=RUN_TIMEOUT)


def probe(lab) -> dict:
    index = lab.add_cell_and_run("probe()")
    expect(lab.output(index)).to_contain_text("PROBE", timeout=RUN_TIMEOUT)
    text = lab.output_text(index)
    return json.loads(text[text.index("PROBE") + len("PROBE"):].strip().splitlines()[0])


def open_designer(lab, lab_server, name):
    write_notebook(lab_server.root, name, designer_notebook())
    lab.open(name)
    lab.run_all()
    canvas = lab.page.locator(".mlpipe-designer-canvas[data-ready='true']").first
    expect(canvas).to_be_visible(timeout=RUN_TIMEOUT)
    canvas.scroll_into_view_if_needed()
    return canvas


def test_edit_the_pipeline_by_mouse_and_watch_it_run(lab, lab_server):
    canvas = open_designer(lab, lab_server, "designer.ipynb")
    page = lab.page
    designer = page.locator(".mlpipe-designer").first
    assert graph_ids(canvas) >= {"step:prep", "step:train", "step:evaluate", "step:extra",
                                 "edge:data:train", "edge:model:evaluate"}
    lab.screenshot("designer-shown")

    # drag a node: its new position is saved in the kernel's pipeline
    start = node_point(canvas, "step:extra")
    drag(page, start, {"x": start["x"] + 40, "y": start["y"] + 90}, hover_ms=50)
    moved = canvas.evaluate("el => el.mlpipeCy.getElementById('step:extra').position()")
    canvas.scroll_into_view_if_needed()
    state = probe(lab)
    saved = state["extra"]["position"]
    assert saved is not None
    assert abs(saved["x"] - moved["x"]) < 1 and abs(saved["y"] - moved["y"]) < 1

    # draw a link from extra to evaluate in link mode: a new data link in the kernel
    canvas.scroll_into_view_if_needed()
    designer.locator(".mlpipe-designer-linkmode").click()
    expect(page.locator(".mlpipe-designer-canvas.mlpipe-link-mode").first).to_be_visible()
    drag(page, node_point(canvas, "step:extra"), node_point(canvas, "step:evaluate"))
    wait_for(canvas, "cy.getElementById('edge:extra_out:evaluate').nonempty()")
    lab.screenshot("designer-linked")

    # a link that would close a cycle is refused with a message; the graph stays as it was
    before = graph_ids(canvas)
    drag(page, node_point(canvas, "step:evaluate"), node_point(canvas, "step:prep"))
    expect(designer.locator(".mlpipe-designer-message")).to_contain_text("cycle", timeout=RUN_TIMEOUT)
    assert graph_ids(canvas) == before
    lab.screenshot("designer-cycle-refused")
    designer.locator(".mlpipe-designer-linkmode").click()
    expect(page.locator(".mlpipe-designer-canvas.mlpipe-link-mode")).to_have_count(0)

    state = probe(lab)
    assert state["extra"]["outputs"] == ["extra_out"]
    assert state["evaluate"]["inputs"] == ["model", "extra_out"]
    assert state["prep"]["inputs"] == []

    # double-click opens the step's properties; an output name another step writes is refused
    canvas.scroll_into_view_if_needed()
    point = node_point(canvas, "step:extra")
    page.mouse.dblclick(point["x"], point["y"])
    form = designer.locator(".mlpipe-designer-properties")
    expect(form.locator(".mlpipe-prop-name input")).to_have_value("extra", timeout=RUN_TIMEOUT)
    outputs = form.locator(".mlpipe-prop-outputs input")
    expect(outputs).to_have_value("extra_out")
    outputs.fill("data")
    outputs.press("Enter")
    expect(form.locator(".mlpipe-prop-message")).to_contain_text("written by both", timeout=RUN_TIMEOUT)
    lab.screenshot("designer-properties-refused")
    form.locator("button", has_text="Close").click()
    assert probe(lab)["extra"]["outputs"] == ["extra_out"]

    # select the middle step and press Delete: the step and its links go
    canvas.scroll_into_view_if_needed()
    point = node_point(canvas, "step:train")
    page.mouse.click(point["x"], point["y"])
    wait_for(canvas, "cy.getElementById('step:train').selected()")
    page.keyboard.press("Delete")
    confirm = designer.locator(".mlpipe-designer-confirm")  # a linked cell step: the designer asks first
    expect(confirm).to_contain_text("linked to prep, evaluate", timeout=RUN_TIMEOUT)
    confirm.locator(".mlpipe-designer-confirm-delete").click()
    wait_for(canvas, "cy.getElementById('step:train').empty()")
    assert "edge:model:evaluate" not in graph_ids(canvas)
    state = probe(lab)
    assert list(state) == ["prep", "evaluate", "extra"]
    assert state["evaluate"]["inputs"] == ["extra_out"]

    # submit from the toolbar: the nodes turn to completed
    canvas.scroll_into_view_if_needed()
    designer.locator(".mlpipe-designer-submit").click()
    wait_for(canvas, "['step:prep', 'step:evaluate', 'step:extra'].every("
                     "id => cy.getElementById(id).data('status') === 'completed')")
    colours = canvas.evaluate(
        "el => el.mlpipeCy.nodes('[kind=\"step\"]').map(n => [n.id(), n.style('background-color')])")
    assert {c for _, c in colours} == {"rgb(200,230,201)"}  # the 'completed' green
    labels = canvas.evaluate("el => el.mlpipeCy.getElementById('step:evaluate').data('label')")
    assert "completed" in labels
    lab.screenshot("designer-completed")

    # clicking a node of the run shows its log tail
    point = node_point(canvas, "step:evaluate")
    page.mouse.click(point["x"], point["y"])
    expect(designer.locator(".mlpipe-designer-details")).to_contain_text("inputs ['extra_out']",
                                                                          timeout=RUN_TIMEOUT)


def test_designer_panel_and_dropping_a_file(lab, lab_server):
    (lab_server.root / "score.py").write_text("print('score')\n")
    open_designer(lab, lab_server, "panel.ipynb")
    page = lab.page

    # the command palette opens the designer of this notebook's kernel in a main-area panel
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Pipeline Designer")
    page.locator(".lm-CommandPalette-item", has_text="Pipeline Designer").first.click()
    panel = page.locator(".mlpipe-designer-panel")
    expect(panel).to_be_visible(timeout=RUN_TIMEOUT)
    canvas = panel.locator(".mlpipe-designer-canvas[data-ready='true']")
    expect(canvas).to_be_visible(timeout=RUN_TIMEOUT)
    assert "step:train" in graph_ids(canvas)
    lab.screenshot("designer-panel")

    # drag score.py from the file browser onto the panel's canvas: it becomes a step
    if not page.locator(".jp-DirListing").first.is_visible():
        page.locator(".jp-SideBar [data-id='filebrowser']").first.click()
    item = page.locator(".jp-DirListing-item", has_text="score.py").first
    expect(item).to_be_visible()
    box, target = item.bounding_box(), canvas.bounding_box()
    drag(page, {"x": box["x"] + 30, "y": box["y"] + box["height"] / 2},
         {"x": target["x"] + target["width"] * 0.8, "y": target["y"] + target["height"] * 0.8}, hover_ms=200)
    wait_for(canvas, "cy.getElementById('step:score').nonempty()")
    lab.screenshot("designer-file-dropped")
    # the notebook's own view of the same designer follows too
    inline = page.locator(".jp-NotebookPanel .mlpipe-designer-canvas[data-ready='true']").first
    wait_for(inline, "cy.getElementById('step:score').nonempty()")
