"""The designer's "Save as draft" and "Open draft": a pipeline kept as a PipelineDraft in the workspace and
made the edited pipeline again, from a Pipeline object or the notebook's pipeline (in-process widgets)."""
from __future__ import annotations

import pytest

from mlpipe_jupyter import Pipeline, PipelineData, PipelineDraft, PythonScriptStep
from mlpipe_jupyter.notebook.designer import Designer
from nbhelpers import PREP, TRAIN, write_helper

SCRIPT = "import sys\nprint('ran', sys.argv[1:])\n"


@pytest.fixture
def chain(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("prep", "train", "lone"):
        (src / f"{name}.py").write_text(SCRIPT)
    data = PipelineData("data")
    prep = PythonScriptStep("prep.py", name="prep", source_directory=str(src), arguments=["--out", data],
                            outputs=[data])
    train = PythonScriptStep("train.py", name="train", source_directory=str(src), arguments=["--data", data],
                             inputs=[data])
    return Pipeline(workspace, [prep, train])


def click(designer, description):
    button, = [b for b in designer.toolbar.children if getattr(b, "description", None) == description]
    button.click()


def step_names(designer):
    return [s.name for s in designer.source.build().steps]


def test_save_as_draft_then_save_again_updates_it(chain, workspace):
    d = Designer(chain, experiment="drafting")
    click(d, "Save as draft")
    assert "Type the draft's name first." in d.message.value and PipelineDraft.list(workspace) == []

    d.draft_name.value = "my draft"
    click(d, "Save as draft")
    draft, = PipelineDraft.list(workspace)
    assert (draft.name, draft.experiment_name) == ("my draft", "drafting")
    assert [s.name for s in draft.get_graph().steps] == ["prep", "train"]
    assert f"Saved draft 'my draft' (id {draft.id}, 2 steps)." in d.message.value
    assert d.draft_pick.value == draft.id and d.draft_pick.label == f"my draft ({draft.id[:8]})"

    d.delete(["step:train"])
    click(d, "Save as draft")
    again, = PipelineDraft.list(workspace)  # the same draft, updated
    assert again.id == draft.id and [s.name for s in again.get_graph().steps] == ["prep"]
    assert "Updated draft 'my draft'" in d.message.value


def test_open_draft_makes_it_the_edited_pipeline_and_it_runs(chain, workspace, tmp_path):
    other = Designer(Pipeline(workspace, [PythonScriptStep("lone.py", name="lone",
                                                           source_directory=str(tmp_path / "src"))]))
    click(other, "Open draft")
    assert "The workspace has no pipeline drafts yet" in other.message.value and step_names(other) == ["lone"]

    Designer(chain).save_draft("first")
    kept = PipelineDraft.create(workspace, chain, "second", experiment_name="e")
    kept.update(pipeline=Pipeline(workspace, chain.steps[:1]))
    click(other, "Open draft")  # the list is read again: the newest draft is chosen
    assert step_names(other) == ["prep"] and other.draft_name.value == "second"
    other.draft_pick.value = [v for _, v in other.draft_pick.options if v != kept.id][0]
    click(other, "Open draft")
    assert step_names(other) == ["prep", "train"] and "draft 'first'" in other.message.value

    run = other.submit()
    run.wait_for_completion(raise_on_error=True, timeout_seconds=60)
    assert {s.name: s.get_status() for s in run.get_steps()} == {"prep": "Completed", "train": "Completed"}


def test_drafts_of_the_notebook_pipeline(ip, tmp_path):
    write_helper(tmp_path)
    for cell in (PREP, TRAIN):
        ip.run(cell.strip())
    magics = ip.magics_manager.registry["PipelineMagics"]
    d = Designer.for_notebook(magics)
    draft = d.save_draft("from cells")
    assert [s.name for s in draft.get_graph().steps] == ["prep", "train"]
    ip.run("%pipeline clear")
    assert list(magics.state.steps) == []
    d.open_draft(draft.id)
    assert list(magics.state.steps) == ["prep", "train"]
    run = ip.run("%pipeline submit --wait")
    assert {s.name: s.get_status() for s in run.get_steps()} == {"prep": "Completed", "train": "Completed"}
