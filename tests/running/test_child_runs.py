"""Child runs, properties and run management as in Azure ML SDK v1: children a step script creates
through Run.get_context() (recorded by the runner from its metrics file), children of an interactive
run (written to the store directly), immutable properties, run filters, cancel/fail/complete/start."""
import subprocess
import sys
import textwrap
import zipfile

import pytest

from helpers import WAIT_SECONDS, run_pipeline, wait_until
from mlpipe_jupyter import Experiment, PythonScriptStep, Run, ScriptRunConfig, UserError

CHILDREN_SCRIPT = """
    import json
    from azureml.core import Run

    run = Run.get_context()
    kids = run.create_children(tag_key="fold", tag_values=["a", "b", "c"])
    print("statuses", [k.get_status() for k in kids])
    for i, kid in enumerate(kids):
        kid.start()
        kid.log("score", i * 10)
        kid.log("score", i * 10 + 1)
        kid.tag("seen", "yes")
    with open("note.txt", "w") as f:
        f.write("from child a")
    kids[0].upload_file("notes/note.txt", "note.txt")
    kids[0].add_properties({"owner": "a"})
    kids[0].complete()
    kids[1].fail(error_details="fold b diverged")
    # kids[2] is left open: it ends with the step
    with run.child_run(name="nested-parent") as middle:
        middle.log("depth", 1)
        grandchild = middle.child_run(name="grandchild")
        grandchild.log("depth", 2)
        grandchild.complete()
    run.add_properties({"author": "me"})
    run.add_properties({"author": "me"})  # the same value again is fine
    try:
        run.add_properties({"author": "someone else"})
    except Exception as e:
        print("refused:", type(e).__name__)
    # what a step may not do: set its own status, or speak for a run it did not create
    with open(run._dir / ".metrics.jsonl", "a") as f:
        f.write(json.dumps({"type": "status", "status": "Failed"}) + "\\n")
        f.write(json.dumps({"type": "metric", "name": "x", "value": 1, "for_child": "someone_else"}) + "\\n")
        f.write(json.dumps({"type": "child", "id": "../escape", "status": "Running"}) + "\\n")
    print("own metrics", run.get_metrics(), "kid metrics", kids[0].get_metrics())
"""


def _script_run(workspace, tmp_path, source, experiment="kids"):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "script.py").write_text(textwrap.dedent(source))
    run = Experiment(workspace, experiment).submit(ScriptRunConfig(source_directory=str(src), script="script.py"))
    return run


def test_children_of_a_step_script_are_recorded_with_metrics_status_and_files(workspace, tmp_path):
    run = _script_run(workspace, tmp_path, CHILDREN_SCRIPT)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    log = run.get_details_with_logs()["logFiles"]["logs/std_log.txt"]
    assert run.get_status() == "Completed", log
    assert "statuses ['NotStarted', 'NotStarted', 'NotStarted']" in log
    assert "refused: UserError" in log
    assert "own metrics {} kid metrics {'score': [0, 1]}" in log

    children = list(run.get_children())
    by_name = {c.name: c for c in children}
    a, b, c = (by_name[f"{run.id}_{i}"] for i in range(3))
    assert [a.get_status(), b.get_status(), c.get_status()] == ["Completed", "Failed", "Completed"]
    assert b.get_details()["error"]["message"] == "fold b diverged"
    assert [x.get_tags() for x in (a, b, c)] == [{"fold": f, "seen": "yes"} for f in "abc"]
    assert [x.get_metrics() for x in (a, b, c)] == [{"score": [0, 1]}, {"score": [10, 11]}, {"score": [20, 21]}]
    assert a.get_file_names() == ["notes/note.txt"]
    assert a.get_properties()["owner"] == "a"
    assert all(x.parent.id == run.id for x in children)

    middle = by_name["nested-parent"]
    grandchild, = middle.get_children()
    assert (grandchild.name, grandchild.get_status(), grandchild.get_metrics()) == ("grandchild", "Completed", {"depth": 2})
    assert middle.get_metrics() == {"depth": 1}
    assert len(list(run.get_children(recursive=True))) == 5

    # the step's own record: its properties, nothing from the forged records
    assert run.get_properties()["author"] == "me"
    assert run.get_metrics() == {}
    assert workspace._store.get_run("someone_else") is None
    # children are not top-level runs, but are listed with include_children
    exp = Experiment(workspace, "kids")
    assert [r.id for r in exp.get_runs()] == [run.id]
    assert len(list(exp.get_runs(include_children=True))) == 6
    # filters as Azure's: a tag key, tag values, status
    assert sorted(x.name for x in run.get_children(tags="fold")) == sorted(x.name for x in (a, b, c))
    assert [x.id for x in run.get_children(tags={"fold": "b"})] == [b.id]
    assert [x.id for x in run.get_children(status="Failed")] == [b.id]


def test_children_of_a_pipeline_step_end_with_a_failed_step(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"step.py": """
        from azureml.core import Run
        child = Run.get_context().child_run(name="left open")
        child.log("progress", 0.5)
        raise SystemExit(3)
        """})
    run = run_pipeline(workspace, [PythonScriptStep("step.py", name="s", source_directory=str(src))])
    assert run.get_status() == "Failed"
    step, = run.get_steps()
    child, = step.get_children()
    assert (child.name, child.get_status(), child.get_metrics()) == ("left open", "Failed", {"progress": 0.5})
    assert step.id in child.get_details()["error"]["message"]
    assert [r.id for r in run.get_children(recursive=True)] == [step.id, child.id]


def test_interactive_children_properties_and_filters(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = Experiment(workspace, "interactive")
    with exp.start_logging() as parent:
        for i in range(3):
            with parent.child_run() as child:
                assert child.get_status() == "Running"
                child.log("i", i)
        later = parent.create_children(count=2)
        assert [k.get_status() for k in later] == ["NotStarted", "NotStarted"]
        later[0].start()
        assert later[0].get_status() == "Running"
        named = parent.child_run(name="named", run_id="my-own-id")
        with pytest.raises(UserError, match="my-own-id"):
            parent.child_run(run_id="my-own-id")
        named.cancel()
        parent.add_properties({"stage": "test"})
        with pytest.raises(UserError, match="immutable.*'stage'"):
            parent.add_properties({"stage": "prod", "new": "x"})
        parent.tag("flag")
    assert parent.get_status() == "Completed"
    assert parent.get_properties()["stage"] == "test" and "new" not in parent.get_properties()

    kids = list(parent.get_children())
    assert [k.id for k in kids[-3:]] == [f"{parent.id}_{i}" for i in (2, 1, 0)]  # latest first
    assert [k.get_metrics() for k in kids[-3:]] == [{"i": 2}, {"i": 1}, {"i": 0}]
    statuses = {k.id: k.get_status() for k in kids}
    assert statuses[later[0].id] == statuses[later[1].id] == "Completed"  # ended with their parent
    assert statuses["my-own-id"] == "Canceled"
    assert len(list(parent.get_children(status="Completed"))) == 5

    with exp.start_logging() as other:
        other.tag("flag", "x")
    assert [r.id for r in exp.get_runs(properties={"stage": "test"}, tags="flag")] == [parent.id]
    assert [r.id for r in exp.get_runs(tags={"flag": "x"})] == [other.id]
    assert [r.id for r in Run.list(exp, properties="stage")] == [parent.id]
    assert len(list(exp.get_runs(type="azureml.PipelineRun"))) == 0
    with pytest.raises(UserError, match="count"):
        parent.create_children(count=0)
    with pytest.raises(UserError, match="tag_values"):
        parent.create_children(count=3, tag_key="k", tag_values=["a"])


def test_display_name_description_and_snapshot(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _script_run(workspace, tmp_path, "print('hi')\n", experiment="names")
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    run.display_name = "my run"
    run.description = "what it was for"
    again = Run.get(workspace, run.id)
    assert (again.display_name, again.description) == ("my run", "what it was for")
    with pytest.raises(UserError, match="display_name"):
        run.display_name = ""
    path = run.restore_snapshot(path="snapshots")
    with zipfile.ZipFile(path) as archive:
        assert archive.read("script.py") == b"print('hi')\n"
    with pytest.raises(UserError, match="complete"):
        run.complete()


def test_cancel_and_fail_a_submitted_run(workspace, tmp_path):
    run = _script_run(workspace, tmp_path, "import time\ntime.sleep(60)\n", experiment="stop")
    run.cancel()
    assert run.get_status() in ("CancelRequested", "Canceled")
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"

    run = _script_run(workspace, tmp_path, "import time\ntime.sleep(60)\n", experiment="stop")
    wait_until(lambda: run.get_status() == "Running", "the script to start")
    run.fail()
    assert run.get_status() == "Failed"
    assert run.get_details()["error"]["message"] == "Marked failed by the user."
    run.fail(error_details="again")  # an ended run stays as it ended
    assert run.get_details()["error"]["message"] == "Marked failed by the user."


def test_children_of_a_dead_process_run_are_recovered(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = Experiment(workspace, "crash").start_logging()
    child = parent.child_run()
    grandchild = child.child_run()
    workspace._store.update_run(parent.id, runner_pid=dead.pid, runner_start="gone")
    workspace._store.recover_orphans()
    assert [r.get_status() for r in (parent, child, grandchild)] == ["Failed", "Failed", "Failed"]
