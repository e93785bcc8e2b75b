"""The designer's Python side without a browser: canvas messages change the pipeline, pipeline changes
reach the canvas's ``graph``, refused edits change nothing, and run status reaches ``status``.

The canvas messages here are exactly what the browser view sends (see labextension/src/canvas.ts).
"""
from __future__ import annotations

import os
import textwrap

import pytest

from mlpipe_jupyter import Pipeline, PipelineData, PythonScriptStep
from mlpipe_jupyter.model import edits as dm
from mlpipe_jupyter.notebook.designer import Designer, clone_run

STEP_SCRIPT = """
import os, sys
from mlpipe_jupyter import Run
run = Run.get_context()
for name, value in os.environ.items():
    if name.startswith("AZUREML_DATAREFERENCE_"):
        print("path", name[len("AZUREML_DATAREFERENCE_"):], value)
run.log("answer", 42)
print("done", os.path.basename(sys.argv[0]))
"""


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    for name in ("prep", "train", "evaluate", "extra"):
        (folder / f"{name}.py").write_text(textwrap.dedent(STEP_SCRIPT))
    return folder


@pytest.fixture
def chain(workspace, src, tmp_path, monkeypatch):
    """prep -> train -> evaluate, linked by data, as an Azure ML user writes it."""
    monkeypatch.chdir(tmp_path)
    data, model = PipelineData("data"), PipelineData("model")
    prep = PythonScriptStep("prep.py", name="prep",
                            source_directory=str(src), arguments=["--out", data], outputs=[data])
    train = PythonScriptStep("train.py", name="train",
                             source_directory=str(src), arguments=["--data", data, "--model", model],
                             inputs=[data], outputs=[model])
    evaluate = PythonScriptStep("evaluate.py", name="evaluate", source_directory=str(src), arguments=["--model", model],
                                inputs=[model])
    return Pipeline(workspace, [prep, train, evaluate])


def message(designer, **content):
    designer._on_message(designer.canvas, content, [])


def edges(designer):
    """Each data link as (the step or external data it comes from, the step reading it, data name):
    the canvas draws it producer -> data node -> reader."""
    graph = designer.canvas.graph
    producer = {e["target"]: e["source"] for e in graph["edges"] if e["id"].startswith("out:")}
    return {(producer.get(e["source"], e["source"]), e["target"], e["data"])
            for e in graph["edges"] if e["id"].startswith("edge:")}


def node_ids(designer):
    return {n["id"] for n in designer.canvas.graph["nodes"]}


def test_graph_shows_steps_links_and_external_data(chain, workspace, tmp_path):
    (tmp_path / "raw.csv").write_text("a\n1\n")
    from mlpipe_jupyter import Dataset

    raw = Dataset.File.from_files(str(tmp_path / "raw.csv")).as_named_input("raw")
    chain.find_step("prep").inputs.append(raw)
    d = Designer(chain)
    nodes = {n["id"]: n for n in d.canvas.graph["nodes"]}
    assert set(nodes) == {"step:prep", "step:train", "step:evaluate", "data:raw", "data:data", "data:model"}
    assert nodes["step:prep"]["compute"] == "local" and nodes["data:raw"]["kind"] == "data"
    assert [n["kind"] for n in d.canvas.graph["nodes"]] == ["step"] * 3 + ["data"] * 3  # steps first
    assert nodes["data:data"]["produced"] and not nodes["data:raw"]["produced"]
    assert edges(d) == {("step:prep", "step:train", "data"), ("step:train", "step:evaluate", "model"),
                        ("data:raw", "step:prep", "raw")}
    drawn = {(e["source"], e["target"]) for e in d.canvas.graph["edges"]}
    assert {("step:prep", "data:data"), ("data:data", "step:train")} <= drawn


def test_moving_a_node_saves_its_position_with_the_pipeline(chain, tmp_path):
    d = Designer(chain)
    message(d, event="move", node="train", x=310.25, y=-40)
    assert chain.find_step("train").position == {"x": 310.2, "y": -40.0}
    path = tmp_path / "saved.yml"
    chain.save(path)
    loaded = Pipeline.load(chain.workspace, path)
    assert loaded.find_step("train").position == {"x": 310.2, "y": -40.0}
    assert Designer(loaded).canvas.graph["nodes"][1]["position"] == {"x": 310.2, "y": -40.0}


def test_drawing_a_link_adds_a_data_output_and_input(chain, workspace, src):
    extra = PythonScriptStep("extra.py", name="extra", source_directory=str(src))
    chain.add_step(extra)
    d = Designer(chain)
    message(d, event="link", source="extra", target="evaluate")
    out = chain.find_step("extra").outputs
    assert [o.name for o in out] == ["extra_out"]
    assert "extra_out" in [name for name, _, _ in chain.find_step("evaluate").input_items()]
    assert chain.upstream(chain.find_step("evaluate"))[-1].name == "extra"
    assert ("step:extra", "step:evaluate", "extra_out") in edges(d)
    assert chain.validate() == []


def test_a_link_that_makes_a_cycle_is_refused_and_nothing_changes(chain):
    d = Designer(chain)
    before, graph_before = chain.to_dict(), d.canvas.graph
    message(d, event="link", source="evaluate", target="prep")
    assert "cycle" in d.message.value and "prep" in d.message.value
    assert chain.to_dict() == before
    assert d.canvas.graph == graph_before
    message(d, event="link", source="train", target="train")
    assert "cannot feed itself" in d.message.value
    assert chain.to_dict() == before


def test_deleting_a_middle_step_removes_it_and_its_links(chain):
    d = Designer(chain)
    message(d, event="delete", ids=["step:train"])
    assert [s.name for s in chain.steps] == ["prep", "train", "evaluate"]  # a linked step: asked first
    assert "linked to prep, evaluate" in d.confirm_text.value
    d.confirm_delete()
    assert [s.name for s in chain.steps] == ["prep", "evaluate"]
    assert node_ids(d) == {"step:prep", "step:evaluate", "data:data"}  # prep's output, read by no one now
    assert edges(d) == set()
    assert chain.find_step("evaluate").inputs == [] and chain.find_step("evaluate").arguments == []
    assert chain.validate() == []


def test_deleting_a_link_keeps_both_steps(chain):
    d = Designer(chain)
    message(d, event="delete", ids=["edge:model:evaluate"])
    assert [s.name for s in chain.steps] == ["prep", "train", "evaluate"]
    assert edges(d) == {("step:prep", "step:train", "data")}
    assert chain.find_step("evaluate").arguments == []


def test_python_changes_reach_a_displayed_canvas(chain, src):
    d = Designer(chain)
    chain.add_step(PythonScriptStep("extra.py", name="extra", source_directory=str(src)))
    assert "step:extra" in node_ids(d)
    chain.remove_step("prep")
    assert "step:prep" not in node_ids(d)
    assert "data:data" in node_ids(d)  # train's input now has no producer: shown as missing data
    assert "no step writes" in d.message.value


def test_a_closed_designer_follows_nothing_any_more(chain, src):
    from mlpipe_jupyter.running.events import bus

    subscribers, observers = len(bus._subs), len(chain._listeners)
    d = Designer(chain)
    assert (len(bus._subs), len(chain._listeners)) == (subscribers + 1, observers + 1)
    d.close()
    assert (len(bus._subs), len(chain._listeners)) == (subscribers, observers)
    assert d.canvas.comm is None and d.properties.fields["name"].comm is None
    chain.add_step(PythonScriptStep("extra.py", name="extra", source_directory=str(src)))  # no closed canvas redraws
    assert "step:extra" not in node_ids(d)


def test_properties_edits_apply_at_once_and_bad_ones_are_refused(chain):
    d = Designer(chain)
    message(d, event="open", node="train")
    form = d.properties
    assert form.fields["name"].value == "train" and form.fields["outputs"].value == "model"
    form.fields["compute_target"].value = "local"
    form.fields["allow_reuse"].value = False
    assert chain.find_step("train").allow_reuse is False
    form.fields["outputs"].value = "model, metrics"
    assert [o.name for o in chain.find_step("train").outputs] == ["model", "metrics"]

    before = chain.to_dict()
    form.fields["outputs"].value = "data"  # prep already writes 'data'
    assert "written by both" in form.message.value
    assert chain.to_dict() == before
    form.fields["inputs"].value = "data, model"  # model is train's own output
    assert "its own output" in form.message.value
    assert chain.to_dict() == before
    form.fields["name"].value = "fit"
    assert [s.name for s in chain.steps] == ["prep", "fit", "evaluate"]
    assert form.step == "fit" and "step:fit" in node_ids(d)
    form.fields["params"].value = "lr=0.5, epochs=3"
    assert chain.parameters()["lr"].default_value == 0.5
    form.fields["name"].value = "prep"
    assert "already has a step named 'prep'" in form.message.value


def test_cycle_through_the_properties_panel_is_refused(chain):
    d = Designer(chain)
    d.properties.open("prep")
    before = chain.to_dict()
    d.properties.fields["inputs"].value = "model"
    assert "cycle" in d.properties.message.value
    assert chain.to_dict() == before


def test_adding_steps_from_the_palette_and_by_dropping_files(chain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = Designer(chain)
    d.add_kind.value, d.add_text.value = "blank", "clean"
    d._add_from_toolbar()
    assert (tmp_path / "clean.py").is_file()
    assert chain.find_step("clean").script_name == "clean.py"

    (tmp_path / "score.py").write_text("print('score')\n")
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\nprint('from a notebook')")]
    nbformat.write(nb, tmp_path / "report.ipynb")
    message(d, event="drop", paths=["score.py", "report.ipynb"])
    assert {"score", "report"} <= {s.name for s in chain.steps}
    report = chain.find_step("report")
    script = open(os.path.join(report.source_directory, report.script_name)).read()
    assert "# %matplotlib inline" in script and "print('from a notebook')" in script
    message(d, event="drop", paths=["score.py"])
    assert "already has a step named 'score'" in d.message.value


def test_run_status_reaches_the_canvas_and_a_run_can_be_cloned(chain, tmp_path, monkeypatch):
    d = Designer(chain, experiment="designer-test")
    run = d.submit()
    run.wait_for_completion(raise_on_error=True, timeout_seconds=60)
    d.watch(run)  # settle on the stored state, as the events may still be in flight
    assert {n: s["status"] for n, s in d.canvas.status.items()} == {
        "prep": "completed", "train": "completed", "evaluate": "completed"}
    assert all(s["ended"] >= s["started"] for s in d.canvas.status.values())

    message(d, event="tap", node="train", kind="step")
    assert "done train.py" in d.details.value
    (panel,) = d.run_view.metrics.children  # the step's metrics panel, under its log
    assert "answer <b>42</b>" in panel.children[0].children[0].value

    elsewhere = tmp_path / "another" / "folder"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # a kernel in another folder clones the run: its folders are the same ones
    copy = clone_run(run)
    assert [s.name for s in copy.steps] == ["prep", "train", "evaluate"]
    assert copy.to_document()["steps"] == chain.to_document()["steps"]
    d.clone_last_run()
    assert d.source.build().to_document()["steps"] == chain.to_document()["steps"]
    monkeypatch.chdir(tmp_path)

    again = d.run_step("train")  # alone: prep is reused from the run above, train runs
    again.wait_for_completion(raise_on_error=True, timeout_seconds=60)
    steps = {s.name: s for s in again.get_steps()}
    assert set(steps) == {"prep", "train"} and steps["prep"].reused and not steps["train"].reused
    onward = d.run_step("train", onward=True)
    onward.wait_for_completion(raise_on_error=True, timeout_seconds=60)
    steps = {s.name: s for s in onward.get_steps()}
    assert set(steps) == {"prep", "train", "evaluate"}
    assert steps["prep"].reused and not steps["train"].reused and not steps["evaluate"].reused


def test_model_functions_on_documents():
    doc = {"version": 1, "parameters": {}, "data": {}, "steps": [
        {"name": "a", "script": "a.py", "outputs": [], "inputs": []},
        {"name": "b", "script": "b.py", "outputs": [], "inputs": []},
        {"name": "c", "script": "c.py", "outputs": [], "inputs": []}]}
    doc, first = dm.link(doc, "a", "b")
    doc, second = dm.link(doc, "b", "c")
    assert (first, second) == ("a_out", "b_out")
    doc, third = dm.link(doc, "a", "c")  # a feeds c through b already; a direct link is still fine
    assert third == "a_out_2"
    with pytest.raises(Exception, match="already feeds"):
        dm.link(doc, "a", "b")
    with pytest.raises(Exception, match="cycle"):
        dm.link(doc, "c", "a")
    assert dm.descendants(doc, "a") == {"b", "c"} and dm.ancestors(doc, "c") == {"a", "b"}
    sub = dm.subset(doc, "b", onward=True)
    assert [s["name"] for s in sub["steps"]] == ["a", "b", "c"]
    assert [s.get("allow_reuse", True) for s in sub["steps"]] == [True, False, False]
    removed = dm.remove_step(doc, "b")
    assert dm.input_names(dm.find(removed, "c")) == ["a_out_2"] and "b_out" not in removed["data"]
