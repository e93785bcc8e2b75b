"""Every row of the monitor says, in words, why its step was reused or rerun: live, as the run goes, and
when a finished run is shown again."""
from __future__ import annotations

import html
import time

from helpers import run_pipeline

from mlpipe_jupyter import Experiment, Pipeline, PipelineParameter, PythonScriptStep
from mlpipe_jupyter.notebook.monitor import RunMonitor


def _steps(src):
    first = PythonScriptStep("first.py", name="first", source_directory=str(src))
    second = PythonScriptStep("second.py", name="second", arguments=["--c", PipelineParameter("C", 1.0)],
                              source_directory=str(src))
    return [first, second]


def _reasons(monitor) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not monitor._stopped.is_set():
        time.sleep(0.05)
    return {name: html.unescape(row.note.value) for name, row in monitor.rows.items()}


def test_each_row_says_why_its_step_was_reused_or_rerun(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"first.py": "print('first')\n", "second.py": "import sys\nprint(sys.argv)\n"})
    run_pipeline(workspace, _steps(src), "reasons")
    again = run_pipeline(workspace, _steps(src), "reasons", pipeline_parameters={"C": 0.05})

    shown = _reasons(RunMonitor(again))  # a finished run, from the store
    assert "Reused: nothing changed since step run" in shown["first"], shown
    assert "Rerun:" in shown["second"] and "'C'" in shown["second"] and "0.05" in shown["second"], shown
    assert "mlpipe-reason" in shown["second"]

    run = Experiment(workspace, "reasons").submit(Pipeline(workspace, _steps(src)), pipeline_parameters={"C": 2.0})
    live = RunMonitor(run)
    run.wait_for_completion(raise_on_error=True)
    live_reasons = _reasons(live)  # from the runner's events while it ran
    assert "Reused:" in live_reasons["first"] and "Rerun:" in live_reasons["second"], live_reasons


def test_the_header_counts_up_while_the_run_goes_and_cancel_leaves_when_it_ends(workspace, tmp_path, write_scripts):
    gate = tmp_path / "gate"
    src = write_scripts(tmp_path / "src", {"hold.py": f"""
        import os, time
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.05)
    """})
    run = Experiment(workspace, "header").submit(
        Pipeline(workspace, [PythonScriptStep("hold.py", name="hold", source_directory=str(src))]))
    monitor = RunMonitor(run)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and monitor.statuses().get("hold") != "running":
            time.sleep(0.05)
        first = monitor.run_status.value
        time.sleep(2.5)  # the header's duration is re-rendered each tick, not only on a status change
        assert monitor.run_status.value != first and "running" in monitor.run_status.value
        assert monitor.cancel_button.layout.display is None and not monitor.cancel_button.disabled
    finally:
        gate.touch()
    run.wait_for_completion(raise_on_error=True)
    _reasons(monitor)  # until the monitor has seen the end
    assert "completed" in monitor.run_status.value
    assert monitor.cancel_button.layout.display == "none" and monitor.cancel_button.disabled
