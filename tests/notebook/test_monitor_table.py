"""The monitor as a table: headers, status icons, the pipeline graph, one readable error per step (failed,
not run, canceled), a log pane that can pause and open the whole log, and actions for the run's state."""
from __future__ import annotations

import html
import time

from helpers import run_pipeline

from mlpipe_jupyter import Experiment, Pipeline, PipelineData, PythonScriptStep
from mlpipe_jupyter.notebook.monitor import RunMonitor


def _settled(monitor):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not monitor._stopped.is_set():
        time.sleep(0.05)
    return monitor


def _chain(ws, src, fail=True):
    a, b = PipelineData("a", datastore=None), PipelineData("b", datastore=None)
    first = PythonScriptStep("first.py", name="first", arguments=["--out", a], outputs=[a], source_directory=str(src))
    boom = PythonScriptStep("boom.py" if fail else "first.py", name="boom", arguments=["--out", b, "--in", a],
                            inputs=[a], outputs=[b], source_directory=str(src))
    after = PythonScriptStep("first.py", name="after", arguments=["--in", b], inputs=[b], source_directory=str(src))
    return [first, boom, after]


SCRIPTS = {
    "first.py": "import sys\nprint('line one of first')\nfor i in range(5):\n    print('first says', i)\n",
    "util.py": "def divide(x):\n    return x / 0\n",
    "boom.py": "from util import divide\nprint('about to fail', flush=True)\ndivide(1)\n",
}


def test_a_failed_pipeline_reads_as_a_table_with_one_error_per_step(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", SCRIPTS)
    run = run_pipeline(workspace, _chain(workspace, src), "table")
    monitor = _settled(RunMonitor(run))

    header = [w.value for w in monitor.table.children[0].children]
    assert header == ["", "Step", "Status", "Duration", "Why"]
    assert monitor.statuses() == {"first": "completed", "boom": "failed", "after": "canceled"}
    rows = monitor.rows
    assert "mlpipe-icon-completed" in rows["first"].icon.value and "&#10003;" in rows["first"].icon.value
    assert "mlpipe-icon-failed" in rows["boom"].icon.value
    assert "mlpipe-icon-not-run" in rows["after"].icon.value

    failed = html.unescape(rows["boom"].error.value)
    assert "mlpipe-error-failed" in failed and "#c62828" in failed
    assert f'File "{src}/boom.py", line 3, in <module>' in failed, failed
    assert f'File "{src}/util.py", line 2, in divide' in failed
    assert "ZeroDivisionError: division by zero" in failed and "step-" not in failed
    log = html.unescape(rows["boom"].log.value)
    assert "about to fail" in log and "Traceback" not in log  # the traceback shows once, in the error block

    skipped = html.unescape(rows["after"].error.value)
    assert "mlpipe-error-not-run" in skipped and "not run: upstream 'boom' failed" in skipped
    assert "#c62828" not in skipped

    graph = monitor.graph.value
    assert graph.count('class="mlpipe-graph-node"') == 3 and graph.count('class="mlpipe-graph-edge"') == 2
    assert 'data-step="boom" data-status="failed"' in graph and 'data-step="after" data-status="not run"' in graph

    # a finished pipeline run: no Cancel; Rerun, Clone and Open in panel instead
    assert monitor.cancel_button.layout.display == "none"
    for button in (monitor.rerun_button, monitor.clone_button, monitor.panel_button):
        assert button.layout.display is None, button.description


def test_pause_keeps_the_pane_and_full_log_shows_the_whole_file(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", SCRIPTS)
    run = run_pipeline(workspace, _chain(workspace, src, fail=False), "table")
    monitor = _settled(RunMonitor(run))
    row = monitor.rows["first"]
    before = row.log.value
    assert "first says 4" in html.unescape(before)

    row.follow_button.value = True  # paused
    with monitor._lock:
        row.add_lines(["new one", "new two"])
    assert row.log.value == before and row.follow_button.description == "Resume (2 new)"
    row.follow_button.value = False
    assert "new two" in row.log.value and row.follow_button.description == "Pause"

    row.full_button.click()
    full = html.unescape(row.full_log.value)
    assert "mlpipe-full-log-box" in full and "line one of first" in full and "first says 4" in full
    row.full_button.click()
    assert row.full_log.value == ""


def test_actions_rerun_clone_and_panel(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", SCRIPTS)
    run = run_pipeline(workspace, _chain(workspace, src, fail=False), "actions")
    monitor = _settled(RunMonitor(run))

    monitor.rerun_button.click()
    (again,) = monitor.below.children
    newer = [r for r in Experiment(workspace, "actions").get_runs()][0]
    assert newer.id != run.id
    newer.wait_for_completion(raise_on_error=True)
    assert "mlpipe-monitor" in again._dom_classes
    # the same pipeline, unchanged: every step is reused from the first run
    assert sorted(s.name for s in newer.get_steps()) == ["after", "boom", "first"]
    assert all(s.get_status() == "Completed" and s._row["reused_from"] for s in newer.get_steps())

    monitor.clone_button.click()
    designer_widget = monitor.below.children[1]
    assert "mlpipe-designer" in designer_widget._dom_classes
    designer = monitor._designers[-1]
    assert sorted(n["name"] for n in designer.canvas.graph["nodes"] if n["kind"] == "step") == [
        "after", "boom", "first"]

    monitor.panel_button.click()
    panel = monitor._designers[-1]._panel
    assert panel is not None and panel.open_request == 1


def test_a_user_cancel_is_amber_not_red(workspace, tmp_path, write_scripts):
    gate = tmp_path / "started"
    src = write_scripts(tmp_path / "src", {"hold.py": f"""
        import pathlib, time
        print('holding', flush=True)
        pathlib.Path({str(gate)!r}).touch()
        time.sleep(60)
    """})
    run = Experiment(workspace, "cancel").submit(
        Pipeline(workspace, [PythonScriptStep("hold.py", name="hold", source_directory=str(src))]))
    monitor = RunMonitor(run)
    assert monitor.cancel_button.layout.display is None and monitor.rerun_button.layout.display == "none"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not gate.exists():
        time.sleep(0.05)
    monitor.cancel_button.click()
    run.wait_for_completion(raise_on_error=False)
    monitor.sync()
    row = monitor.rows["hold"]
    assert monitor.statuses() == {"hold": "canceled"}
    assert "mlpipe-error-canceled" in row.error.value and "#c62828" not in row.error.value
    assert "mlpipe-icon-canceled" in row.icon.value
    assert "holding" in html.unescape(row.log.value) and "#c62828" not in row.log.value
    assert monitor.cancel_button.layout.display == "none" and monitor.rerun_button.layout.display is None


def test_the_python_api_shows_the_monitor_and_wait_prints_text(notebook, tmp_path):
    """A notebook written against the SDK: a run (or a step run) as a cell's last expression shows the live
    monitor, ``RunDetails(run).show()`` too; ``wait_for_completion(show_output=True)`` prints text, as Azure
    documents it (the run's output on stdout)."""
    from nbhelpers import by_tag, errors

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text("print('hello from the step')\n")
    nb = notebook([
        "%load_ext mlpipe_jupyter",
        """
        # run
        from azureml.core import Workspace, Experiment
        from azureml.pipeline.core import Pipeline
        from azureml.pipeline.steps import PythonScriptStep
        ws = Workspace.from_config()
        run = Experiment(ws, "api").submit(Pipeline(ws, [PythonScriptStep("hello.py", name="hello",
                                                                          source_directory="src")]))
        run
        """,
        "# wait\nrun.wait_for_completion(show_output=True);",
        "# step\nstep = run.find_step_run('hello')[0]\nstep",
        "# rows\nfrom mlpipe_jupyter.notebook.monitor import monitors_for\n"
        "print(sorted(monitors_for(step.id)[-1].rows))",
        "# details\nfrom azureml.widgets import RunDetails\nRunDetails(run).show();",
    ])
    for tag in ("# run", "# step", "# details"):
        shown = [o for o in by_tag(nb, tag).outputs if o.output_type == "display_data"]
        assert len(shown) == 1 and WIDGET in shown[0]["data"], (tag, by_tag(nb, tag).outputs)
    assert by_tag(nb, "# rows").outputs[0]["text"].strip() == "['hello']"  # the step run's own monitor
    printed = "".join(o.get("text", "") for o in by_tag(nb, "# wait").outputs if o.output_type == "stream")
    assert "hello from the step" in printed and "==> hello: Completed" in printed, printed
    assert not [o for o in by_tag(nb, "# wait").outputs if o.output_type == "display_data"]
    for cell in nb.cells:
        assert not errors(cell), cell.source


WIDGET = "application/vnd.jupyter.widget-view+json"
