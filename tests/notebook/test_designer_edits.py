"""Designer edits of the notebook's pipeline: written back to the ``%%step`` lines of the cells they change,
undoable and redoable, a Delete that leaves nothing dangling, stale marks with the planner's reasons,
refusals that clear, and a designer opened during a run that shows it at once.

The browser side is stood in for where needed by the messages it sends (labextension/src/cellsync.ts
says ``hello``, then answers each ``rewrite``)."""
from __future__ import annotations

import time

import pytest

from mlpipe_jupyter.model import edits as dm
from mlpipe_jupyter.notebook.designer import Designer, cellsync, notebook_designer
from mlpipe_jupyter.sdk.experiment import Experiment
from nbhelpers import stream

WRITE = "import os\nopen(os.path.join(outputs['{out}'], 'x.txt'), 'w').write(str(params))\n"
READ = "import os\nprint(sorted(os.listdir(inputs['{inp}'])))\n"


@pytest.fixture
def magics(ip, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(cellsync, "_instance", None)  # a fresh browser connection for each test
    return ip.magics_manager.registry["PipelineMagics"]


@pytest.fixture
def page(magics, monkeypatch):
    """A browser that holds the cell-sync model: what the kernel asks of it, in order."""
    d = notebook_designer(magics)
    asked = []
    monkeypatch.setattr(d.cell_sync, "send", lambda content, buffers=None: asked.append(content))
    d.cell_sync._on_msg(d.cell_sync, {"event": "hello"}, [])
    return asked


def lines(asked) -> dict:
    """The last first line asked for each cell (by the name the cell has)."""
    out = {}
    for content in asked:
        assert content["event"] == "rewrite"
        out.update({c["match"]: c["line"] for c in content["cells"]})
    return out


def send(d, **content):
    d._on_message(d.canvas, content, [])


def recorded(magics):
    return {n: (e.spec.inputs, e.spec.outputs, e.spec.params) for n, e in magics.state.steps.items()}


def test_canvas_and_form_edits_rewrite_the_cells_step_lines_and_undo_puts_them_back(magics, page):
    magics.step("prep --outputs data --param rows=10", WRITE.format(out="data"))
    magics.step("train", "print('train')\n")
    d = notebook_designer(magics)

    send(d, event="link", source="prep", target="train")
    assert lines(page) == {"prep": "%%step prep --outputs data prep_out --param rows=10",
                           "train": "%%step train --inputs prep_out"}
    assert magics.state.steps["train"].spec.inputs == [["prep_out", None]]

    page.clear()
    d.properties.open("train")
    d.properties.fields["params"].value = "C=0.5, kind=two words"
    d.properties.fields["compute_target"].value = "local"  # unchanged: no rewrite for it
    assert lines(page) == {"train": "%%step train --inputs prep_out --param C=0.5 --param 'kind=two words'"}
    assert magics.state.steps["train"].spec.params == {"C": 0.5, "kind": "two words"}

    page.clear()
    d.properties.fields["name"].value = "fit"  # the cell still says train: it is found by that name
    assert lines(page) == {"train": "%%step fit --inputs prep_out --param C=0.5 --param 'kind=two words'"}

    page.clear()
    d.undo()  # the rename: the cell now says fit, and goes back to train
    assert lines(page) == {"fit": "%%step train --inputs prep_out --param C=0.5 --param 'kind=two words'"}
    d.undo()  # the parameters
    d.undo()  # the link
    assert lines(page) == {"fit": "%%step train --inputs prep_out --param C=0.5 --param 'kind=two words'",
                           "train": "%%step train", "prep": "%%step prep --outputs data --param rows=10"}
    assert recorded(magics) == {"prep": ([], ["data"], {"rows": 10}), "train": ([], [], {})}
    assert "Undid linking prep -&gt; train" in d.message.value

    page.clear()
    d.redo()
    assert lines(page) == {"prep": "%%step prep --outputs data prep_out --param rows=10",
                           "train": "%%step train --inputs prep_out"}

    # the page answers: a cell it could not find is said in the message area
    d.cell_sync._on_msg(d.cell_sync, {"event": "rewritten", "id": 1, "done": ["prep"], "missing": ["train"]}, [])
    assert "No cell of this notebook starts with %%step train" in d.message.value


def test_without_a_page_the_edit_lands_and_says_the_line_to_write(magics):
    magics.step("prep --outputs data", WRITE.format(out="data"))
    magics.step("train", "print('train')\n")
    d = notebook_designer(magics)
    send(d, event="link", source="prep", target="train")
    assert magics.state.steps["train"].spec.inputs == [["prep_out", None]]  # never lost
    assert "no notebook page is connected" in d.message.value
    assert "%%step train --inputs prep_out" in d.message.value
    assert d.cell_sync.pending == {"prep": ("prep", "%%step prep --outputs data prep_out"),
                                   "train": ("train", "%%step train --inputs prep_out")}

    # renamed before any page connected: the cell still says train, and gets the latest line
    d.properties.open("train")
    d.properties.fields["name"].value = "fit"
    assert d.cell_sync.pending["train"] == ("fit", "%%step fit --inputs prep_out")
    asked = []
    d.cell_sync.send = lambda content, buffers=None: asked.append(content)
    d.cell_sync._on_msg(d.cell_sync, {"event": "hello"}, [])
    assert lines(asked) == {"prep": "%%step prep --outputs data prep_out", "train": "%%step fit --inputs prep_out"}
    assert d.cell_sync.pending == {}


def test_deleting_a_linked_cell_step_asks_first_and_leaves_nothing_dangling(magics, page):
    magics.step("prep --outputs data", WRITE.format(out="data"))
    magics.step("train --inputs data --outputs model", READ.format(inp="data"))
    magics.step("evaluate --inputs model data", READ.format(inp="model"))
    d = notebook_designer(magics)

    d.canvas.selected = ["step:prep"]
    d.delete_selected()
    assert "prep" in magics.state.steps and d.confirm_row.layout.display == "flex"
    assert "recorded from a %%step cell" in d.confirm_text.value and "linked to train, evaluate" in d.confirm_text.value
    d.keep()
    assert "prep" in magics.state.steps and d.confirm_row.layout.display == "none"

    d.delete_selected()
    d.confirm_delete()
    assert list(magics.state.steps) == ["train", "evaluate"]
    assert dm.dangling(d.source.doc()) == []
    assert lines(page) == {"train": "%%step train --outputs model", "evaluate": "%%step evaluate --inputs model"}
    assert "data:data" not in {n["id"] for n in d.canvas.graph["nodes"]}

    page.clear()
    d.undo()  # the cell step comes back as a cell step, with its consumers' links
    assert recorded(magics)["prep"] == ([], ["data"], {})
    assert magics.state.steps["evaluate"].spec.inputs == [["model", None], ["data", None]]
    assert lines(page) == {"train": "%%step train --inputs data --outputs model",
                           "evaluate": "%%step evaluate --inputs model data"}
    assert type(magics.state.steps["prep"]).__name__ == "CellStep"


def test_deleting_a_data_node_unlinks_its_readers_and_its_writer(magics, page):
    magics.step("prep --outputs data stats", WRITE.format(out="data"))
    magics.step("train --inputs data stats", READ.format(inp="data"))
    d = notebook_designer(magics)
    d.delete(["data:stats"])
    assert recorded(magics) == {"prep": ([], ["data"], {}), "train": ([["data", None]], [], {})}
    assert lines(page) == {"prep": "%%step prep --outputs data", "train": "%%step train --inputs data"}
    d.delete(["out:prep:data"])
    assert recorded(magics) == {"prep": ([], [], {}), "train": ([], [], {})}
    assert dm.dangling(d.source.doc()) == []
    d.undo()
    d.undo()
    assert recorded(magics)["train"] == ([["data", None], ["stats", None]], [], {})


def test_every_kind_of_edit_undoes_and_redoes(magics, tmp_path):
    magics.step("prep --outputs data", WRITE.format(out="data"))
    magics.step("train --inputs data", READ.format(inp="data"))
    d = notebook_designer(magics)
    (tmp_path / "score.py").write_text("print('score')\n")
    edits = {
        "add": lambda: d.add_file(tmp_path / "score.py"),
        "add cell": lambda: d.add_cell("clean"),
        "link": lambda: send(d, event="link", source="train", target="score"),
        "unlink": lambda: d.delete(["edge:train_out:score"]),
        "move": lambda: send(d, event="move", node="prep", x=11, y=22),
        "layout": d.relayout,
        "rename": lambda: (d.properties.open("score"), setattr(d.properties.fields["name"], "value", "scoring")),
        "property": lambda: (d.properties.open("train"), setattr(d.properties.fields["allow_reuse"], "value", False)),
        "delete": lambda: d.delete(["step:prep"]),
    }
    for kind, edit in edits.items():
        before = d.source.doc()
        edit()
        after = d.source.doc()
        assert after != before, kind
        d.undo()
        assert d.source.doc() == before, kind
        d.redo()
        assert d.source.doc() == after, kind
    assert [s["name"] for s in d.source.doc()["steps"]] == ["train", "scoring", "clean"]
    for _ in edits:
        d.undo()
    assert [s["name"] for s in d.source.doc()["steps"]] == ["prep", "train"]
    assert d.source.doc()["steps"][0].get("position") is None
    with pytest.raises(Exception, match="Nothing to undo"):
        d.undo()

    magics.step("prep --outputs data", WRITE.format(out="data"))  # a change made elsewhere: history starts again
    assert d._undo == [] and d._redo == []


def test_a_refusal_clears_on_the_next_action_that_works(magics):
    magics.step("prep --outputs data", WRITE.format(out="data"))
    magics.step("train --inputs data", READ.format(inp="data"))
    d = notebook_designer(magics)
    send(d, event="link", source="train", target="prep")
    assert "cycle" in d.message.value
    send(d, event="move", node="train", x=5, y=5)
    assert d.message.value == ""
    send(d, event="link", source="train", target="prep")
    assert "cycle" in d.message.value
    d.undo()  # the move
    assert "cycle" not in d.message.value


def test_stale_marks_say_why_a_step_would_rerun_and_last_run_colours_stay_only_on_reused_steps(magics):
    magics.step("prep --outputs data --param rows=10", WRITE.format(out="data"))
    magics.step("train --inputs data --outputs model --param C=1.0", WRITE.format(out="model"))
    magics.step("report", "print('report')\n")
    d = notebook_designer(magics)
    run = d.submit()
    run.wait_for_completion()
    time.sleep(0.2)  # the last status events reach the canvas from the runner's threads
    assert {n: s["status"] for n, s in d.canvas.status.items()} == {
        "prep": "completed", "train": "completed", "report": "completed"}

    d.properties.open("prep")
    d.properties.fields["params"].value = "rows=20"
    d.wait_stale()  # planned on a worker thread
    assert d.canvas.stale == {
        "prep": d.canvas.stale["prep"],
        "train": "upstream step 'prep' will rerun, so its input will be new."}
    assert d.canvas.stale["prep"].startswith("parameter 'rows' changed from 10 to 20 (compared with step run ")
    assert set(d.canvas.status) == {"report"}  # its result still stands; the others go neutral

    d.undo()
    d.wait_stale()
    assert d.canvas.stale == {}  # back as it ran: every step would be reused
    d.properties.open("train")
    d.properties.fields["allow_reuse"].value = False
    d.wait_stale()
    assert d.canvas.stale == {"train": "step 'train' has allow_reuse=False."}


def test_a_designer_opened_during_a_run_shows_it_at_once(magics, tmp_path):
    gate = tmp_path / "go"
    magics.step("slow --outputs data", f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n"
                                       "    time.sleep(0.05)\n" + WRITE.format(out="data"))
    magics.step("after --inputs data", READ.format(inp="data"))
    run = Experiment(magics.workspace, magics.experiment_name()).submit(magics.state.build())
    step = next(s for s in run.get_steps() if s.name == "slow")
    deadline = time.monotonic() + 60
    while step.get_status() != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    d = Designer.for_notebook(magics)  # made during the run; no status change happens while it starts
    assert d.canvas.status["slow"]["status"] == "running"
    assert d.canvas.status["after"]["status"] == "queued"
    gate.write_text("go")
    run.wait_for_completion()
    deadline = time.monotonic() + 10
    while d.canvas.status.get("after", {}).get("status") != "completed":  # then it follows the run's events
        assert time.monotonic() < deadline
        time.sleep(0.05)
    d.close()


def test_in_a_kernel_without_a_page_the_edit_lands_and_the_line_is_said(notebook):
    nb = notebook(["%load_ext mlpipe_jupyter",
                   "%%step prep --outputs data\nprint('prep')",
                   "%%step train --param C=1.0\nprint('train')",
                   "%pipeline show",
                   "from mlpipe_jupyter.notebook.designer import notebook_designer\n"
                   "d = notebook_designer(get_ipython().magics_manager.registry['PipelineMagics'])\n"
                   "d._on_message(d.canvas, {'event': 'link', 'source': 'prep', 'target': 'train'}, [])\n"
                   "print(d.cell_sync.ready, d.message.value)",
                   "%pipeline steps"])
    shown = stream(nb.cells[4])
    assert shown.startswith("False ")  # no page ever said hello
    assert "no notebook page is connected" in shown and "%%step train --inputs prep_out --param C=1.0" in shown
    assert "in: prep_out" in stream(nb.cells[5])
