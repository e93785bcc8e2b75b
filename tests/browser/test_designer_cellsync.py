"""The designer and the notebook's cells in real JupyterLab: an edit on the canvas or in the properties form
rewrites the ``%%step`` line of the cell it changed, Undo puts it back; and a designer opened while a run
is going shows that run's status at once."""
from __future__ import annotations

from playwright.sync_api import expect

from helpers import write_notebook
from test_designer import RUN_TIMEOUT, drag, node_point, wait_for

BODY = ("import os\n"
        "for name, path in outputs.items():\n"
        "    open(os.path.join(path, 'out.txt'), 'w').write(name)\n"
        "print('inputs', sorted(inputs), 'outputs', sorted(outputs))")


def first_line(lab, index) -> str:
    return lab.cell(index).locator(".cm-line").first.inner_text()


def expect_first_line(lab, index, text):
    expect(lab.cell(index).locator(".cm-line").first).to_have_text(text, timeout=RUN_TIMEOUT)


def test_canvas_and_form_edits_rewrite_the_step_lines_of_the_cells(lab, lab_server):
    write_notebook(lab_server.root, "cellsync.ipynb", [
        "%load_ext mlpipe_jupyter",
        "%%step prep --outputs data\n" + BODY,
        "%%step train --param C=1.0\n" + BODY,
        "%pipeline show",
    ])
    lab.open("cellsync.ipynb")
    lab.run_all()
    page = lab.page
    canvas = page.locator(".mlpipe-designer-canvas[data-ready='true']").first
    expect(canvas).to_be_visible(timeout=RUN_TIMEOUT)
    designer = page.locator(".mlpipe-designer").first
    body_before = lab.cell(2).locator(".cm-content").inner_text().split("\n", 1)[1]

    # link prep -> train by mouse: both cells' first lines say so
    canvas.scroll_into_view_if_needed()
    designer.locator(".mlpipe-designer-linkmode").click()
    expect(page.locator(".mlpipe-designer-canvas.mlpipe-link-mode").first).to_be_visible()  # through the kernel
    drag(page, node_point(canvas, "step:prep"), node_point(canvas, "step:train"))
    wait_for(canvas, "cy.getElementById('edge:prep_out:train').nonempty()")
    designer.locator(".mlpipe-designer-linkmode").click()
    expect(page.locator(".mlpipe-designer-canvas.mlpipe-link-mode")).to_have_count(0)
    expect_first_line(lab, 1, "%%step prep --outputs data prep_out")
    expect_first_line(lab, 2, "%%step train --inputs prep_out --param C=1.0")
    assert lab.cell(2).locator(".cm-content").inner_text().split("\n", 1)[1] == body_before  # the rest as it was
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty", has_text="cellsync.ipynb")).to_have_count(1)

    # a parameter changed in the properties form
    canvas.scroll_into_view_if_needed()
    point = node_point(canvas, "step:train")
    page.mouse.dblclick(point["x"], point["y"])
    params = designer.locator(".mlpipe-designer-properties .mlpipe-prop-params input")
    expect(params).to_have_value("C=1.0", timeout=RUN_TIMEOUT)
    params.fill("C=0.25")
    params.press("Enter")
    expect_first_line(lab, 2, "%%step train --inputs prep_out --param C=0.25")
    lab.screenshots("designer-cellsync", page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first)

    # Undo twice: the parameter, then the link, each back in the cells
    cells_before = lab.cell_count()
    designer.locator(".mlpipe-designer-undo").click()
    expect_first_line(lab, 2, "%%step train --inputs prep_out --param C=1.0")
    canvas.focus()  # the second by keyboard on the canvas: the designer's history, not the notebook's
    page.keyboard.press("Control+z")
    expect_first_line(lab, 2, "%%step train --param C=1.0")
    expect_first_line(lab, 1, "%%step prep --outputs data")
    wait_for(canvas, "cy.getElementById('edge:prep_out:train').empty()")
    assert lab.cell_count() == cells_before  # the notebook did not undo a cell operation of its own
    page.keyboard.press("Control+Shift+z")
    expect_first_line(lab, 2, "%%step train --inputs prep_out --param C=1.0")

    # Delete on a linked cell step asks first; Keep keeps it
    canvas.scroll_into_view_if_needed()
    point = node_point(canvas, "step:prep")
    page.mouse.click(point["x"], point["y"])
    wait_for(canvas, "cy.getElementById('step:prep').selected()")
    page.keyboard.press("Delete")
    confirm = designer.locator(".mlpipe-designer-confirm")
    expect(confirm).to_contain_text("'prep' is recorded from a %%step cell (the cell stays) and linked to train",
                                    timeout=RUN_TIMEOUT)
    lab.screenshots("designer-delete-confirm", designer)
    confirm.locator(".mlpipe-designer-keep").click()
    expect(confirm).to_be_hidden()
    expect(designer.locator(".mlpipe-designer-message")).to_contain_text("Nothing was deleted")
    assert canvas.evaluate("el => el.mlpipeCy.getElementById('step:prep').nonempty()")

    # the kernel recorded what the cells now say: running the cells again changes nothing
    index = lab.add_cell_and_run("%pipeline steps")
    expect(lab.output(index)).to_contain_text("train", timeout=RUN_TIMEOUT)
    assert "prep_out" in lab.output_text(index)


def test_a_designer_opened_during_a_run_shows_its_status_at_once(lab, lab_server):
    gate = lab_server.root / "go.flag"
    gate.unlink(missing_ok=True)
    write_notebook(lab_server.root, "midrun.ipynb", [
        "%load_ext mlpipe_jupyter",
        f"%%step slow --outputs data\nimport os, time\nwhile not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.1)\n" + BODY,
        "%%step after --inputs data\n" + BODY,
        "%pipeline submit",
    ])
    lab.open("midrun.ipynb")
    lab.run_all()
    page = lab.page
    expect(lab.output(3)).to_contain_text("slow", timeout=RUN_TIMEOUT)
    lab.wait_kernel_idle(RUN_TIMEOUT)

    # the designer is made now, while 'slow' runs: no status change comes until the gate opens
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Pipeline Designer")
    page.locator(".lm-CommandPalette-item", has_text="Pipeline Designer").first.click()
    panel = page.locator(".mlpipe-designer-panel")
    canvas = panel.locator(".mlpipe-designer-canvas[data-ready='true']")
    expect(canvas).to_be_visible(timeout=RUN_TIMEOUT)
    wait_for(canvas, "cy.getElementById('step:slow').data('status') === 'running'")
    assert canvas.evaluate("el => el.mlpipeCy.getElementById('step:after').data('status')") == "queued"
    assert not gate.exists()
    lab.screenshots("designer-opened-mid-run", panel)

    gate.write_text("go")
    wait_for(canvas, "['step:slow', 'step:after'].every(id => cy.getElementById(id).data('status') === 'completed')")
