"""The notebook monitor of a run with a step on the Ray cluster shows what the step logs while it runs."""
from __future__ import annotations

import pytest

from helpers import steps_by_name, submit, wait_until
from mlpipe_jupyter import ComputeTarget, PythonScriptStep, RayCompute
from mlpipe_jupyter.notebook.monitor import RunMonitor

pytestmark = pytest.mark.xdist_group("ray")  # one cluster for all Ray tests (scripts/test.sh: --dist loadgroup)

RAY_WAIT = 300  # a guard against hangs only

LIVE = """
import os, sys, time
from mlpipe_jupyter import Run
Run.get_context().log("progress", 0.5)
print("logged", flush=True)
for _ in range(3000):  # until the test has seen the metric in the monitor
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.1)
Run.get_context().log("progress", 1.0)
"""


def test_the_monitor_shows_a_metric_of_a_ray_step_while_it_runs(workspace, write_scripts, tmp_path, ray_cluster):
    target = ComputeTarget.create(workspace, "cluster", RayCompute.provisioning_configuration(ray_cluster.address))
    src = write_scripts(tmp_path / "src", {"live.py": LIVE})
    go = tmp_path / "go"
    run = submit(workspace, [PythonScriptStep("live.py", name="live", source_directory=str(src),
                                              compute_target=target, arguments=[str(go)])], "ray")
    try:
        monitor = RunMonitor(run)
        wait_until(lambda: "live" in monitor.rows and monitor.rows["live"].metrics_panel.scalars.get("progress"),
                   "the metric in the monitor", RAY_WAIT)
        row = monitor.rows["live"]
        assert row.metrics_panel.scalars == {"progress": [0.5]}
        assert monitor.statuses()["live"] == "running"  # the step waits for the go file, made only now
        wait_until(lambda: "logged" in row.log.value, "its log line in the monitor", RAY_WAIT)  # polled apart
    finally:
        go.write_text("")
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)

    assert run.get_status() == "Completed"
    assert steps_by_name(run)["live"].get_metrics() == {"progress": [0.5, 1.0]}
    wait_until(lambda: monitor.rows["live"].metrics_panel.scalars == {"progress": [0.5, 1.0]},
               "the last value in the monitor", 30)
    wait_until(lambda: monitor.statuses()["live"] == "completed", "the monitor to show the end", 30)
