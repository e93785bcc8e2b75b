"""The designer on the notebook's pipeline: ``%%step`` cells recorded again, ``%pipeline remove`` and
canvas edits all meet in the one pipeline that ``%pipeline submit`` uses."""
from __future__ import annotations

import pytest

from mlpipe_jupyter.notebook.designer import notebook_designer
from nbhelpers import stream

PREP = "import os\nopen(os.path.join(outputs['data'], 'x.txt'), 'w').write('1')\n"
TRAIN = "import os\nprint(sorted(os.listdir(inputs['data'])))\n"


@pytest.fixture
def magics(ip, monkeypatch):
    """The real magics in the in-process IPython shell, working in a fresh folder."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return ip.magics_manager.registry["PipelineMagics"]


def ids(designer):
    return {n["id"] for n in designer.canvas.graph["nodes"]}


def edges(designer):
    """Each data link as (producing step, reading step, data name); the canvas draws it through a data node."""
    graph = designer.canvas.graph
    producer = {e["target"]: e["source"] for e in graph["edges"] if e["id"].startswith("out:")}
    return {(producer.get(e["source"], e["source"]), e["target"], e["data"])
            for e in graph["edges"] if e["id"].startswith("edge:")}


def test_recorded_cells_and_canvas_edits_are_one_pipeline(magics, tmp_path):
    magics.step("prep --outputs data", PREP)
    magics.step("train --inputs data", TRAIN)
    d = notebook_designer(magics)
    assert edges(d) == {("step:prep", "step:train", "data")}

    # a cell recorded again (new output) and a new cell reach the displayed canvas
    magics.step("prep --outputs data stats", PREP)
    magics.step("report", "print('report')\n")
    assert "step:report" in ids(d)
    d._on_message(d.canvas, {"event": "link", "source": "report", "target": "train"}, [])
    entry = magics.state.steps["train"]
    assert entry.spec.inputs == [["data", None], ["report_out", None]]
    assert "'report_out'" in entry.script_text  # the regenerated script gives the cell the new input
    assert magics.state.steps["report"].spec.outputs == ["report_out"]
    assert ("step:report", "step:train", "report_out") in edges(d)

    d._on_message(d.canvas, {"event": "move", "node": "train", "x": 12, "y": 34}, [])
    assert d.source.doc()["steps"][1]["position"] == {"x": 12.0, "y": 34.0}
    magics.step("train --inputs data report_out", TRAIN)  # recorded again: the position stays
    assert [n["position"] for n in d.canvas.graph["nodes"] if n["id"] == "step:train"] == [{"x": 12.0, "y": 34.0}]

    # a cycle drawn on the canvas is refused; the recorded cells stay as they were
    d._on_message(d.canvas, {"event": "link", "source": "train", "target": "prep"}, [])
    assert "cycle" in d.message.value
    assert magics.state.steps["prep"].spec.inputs == []

    # deleting the middle step on the canvas (a linked cell step: confirmed first) drops the link from the
    # cell that read it
    d._on_message(d.canvas, {"event": "delete", "ids": ["step:report"]}, [])
    assert "report" in magics.state.steps and d.confirm_row.layout.display == "flex"
    d.confirm_delete()
    assert list(magics.state.steps) == ["prep", "train"]
    assert magics.state.steps["train"].spec.inputs == [["data", None]]
    pipeline = magics.state.build()
    assert [s.name for s in pipeline.steps] == ["prep", "train"]

    magics.pipeline("remove train")
    assert ids(d) == {"step:prep", "data:data", "data:stats"}  # prep's outputs stay as data nodes

    # the palette adds a placeholder cell step, filled in later by a %%step cell
    d.add_kind.value, d.add_text.value = "cell", "clean"
    d._add_from_toolbar()
    assert "step:clean" in ids(d)
    magics.step("clean --inputs data", "print('cleaning')\n")
    assert ("step:prep", "step:clean", "data") in edges(d)


def test_pipeline_show_displays_the_designer_in_a_kernel(notebook):
    nb = notebook(["%load_ext mlpipe_jupyter",
                   "%%step prep --outputs data\nprint('x')",
                   "%pipeline show",
                   "from mlpipe_jupyter.notebook.designer import notebook_designer\n"
                   "d = notebook_designer(get_ipython().magics_manager.registry['PipelineMagics'])\n"
                   "print(sorted(n['id'] for n in d.canvas.graph['nodes']), d._panel)",
                   "%pipeline show --panel",
                   "print('requests', d._panel.open_request, d._panel.child is d.widget)"])
    views = [o for o in nb.cells[2].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    assert "['data:data', 'step:prep'] None" in stream(nb.cells[3])
    assert "opened in a JupyterLab panel" in stream(nb.cells[4])
    assert "requests 1 True" in stream(nb.cells[5])
