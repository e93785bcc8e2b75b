"""The browser harness itself: JupyterLab runs cells, renders ipywidgets with their CSS classes,
and a live widget keeps changing while the kernel runs another cell."""
from playwright.sync_api import expect

from helpers import write_notebook


def test_cells_and_widgets_render_in_lab(lab, lab_server, tmp_path):
    gate = tmp_path / "gate"
    write_notebook(lab_server.root, "basics.ipynb", [
        "print('hello from', 'the kernel')",
        "import threading, time, pathlib\n"
        "import ipywidgets as w\n"
        "label = w.Label('running').add_class('probe-status')\n"
        "box = w.VBox([label]).add_class('probe-box')\n"
        "def finish():\n"
        f"    while not pathlib.Path({str(gate)!r}).exists():\n"
        "        time.sleep(0.05)\n"
        "    label.value = 'completed'\n"
        "threading.Thread(target=finish, daemon=True).start()\n"
        "box",
        "print(6 * 7)",
    ])
    lab.open("basics.ipynb")
    lab.run_all()

    expect(lab.output(0)).to_contain_text("hello from the kernel")
    expect(lab.output(2)).to_contain_text("42")
    status = lab.page.locator(".probe-box .probe-status")
    expect(status).to_have_text("running")

    gate.touch()
    expect(status).to_have_text("completed")

    index = lab.add_cell_and_run("print('typed', 1 + 1)")
    expect(lab.output(index)).to_contain_text("typed 2")
