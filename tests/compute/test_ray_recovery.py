"""A runner killed with SIGKILL while a step runs on the Ray cluster: its job would run on unobserved, so
the next process that opens the workspace stops it, with everything the step started, and where the
run was marked failed without reaching the cluster, the next run with a step there does."""
from __future__ import annotations

import json
import os
import sys
import urllib.request
import warnings
from pathlib import Path

import pytest

from helpers import kill_hard, pids_with, runner_process, submit, wait_until
from mlpipe_jupyter import ComputeTarget, PythonScriptStep, RayCompute, Run, Workspace
from mlpipe_jupyter.compute import recover

pytestmark = pytest.mark.xdist_group("ray")  # one cluster for all Ray tests (scripts/test.sh: --dist loadgroup)

REPO = Path(__file__).resolve().parents[2]
RAY_WAIT = 300  # a guard against hangs only: a Ray job waits for a worker process on a loaded machine

HANG = """
import subprocess, sys, time
# a child in a session of its own that ignores SIGTERM: it too must go when the job is stopped
subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "time.sleep(600)", sys.argv[1]], start_new_session=True)
print("hanging", flush=True)
time.sleep(600)
"""

RUNNER = """
import sys, time
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace(sys.argv[1])
step = PythonScriptStep("hang.py", name="hang", source_directory=sys.argv[2], compute_target="cluster",
                        arguments=[sys.argv[3]])
run = Experiment(ws, "killed").submit(Pipeline(ws, [step]))
print(run.id, flush=True)
time.sleep(600)
"""


def job_of(cluster, step_id: str) -> dict | None:
    with urllib.request.urlopen(f"{cluster.address}/api/jobs/", timeout=10) as r:
        jobs = [j for j in json.load(r) if (j.get("metadata") or {}).get("mlpipe.run_id") == step_id]
    return jobs[-1] if jobs else None


def killed_runner(workspace, src, marker, cluster) -> tuple[str, str]:
    """A runner process that submits a Ray step, killed with SIGKILL once the step runs: (run id, step id)."""
    ComputeTarget.create(workspace, "cluster", RayCompute.provisioning_configuration(cluster.address))
    with runner_process([sys.executable, "-c", RUNNER, str(workspace.path), str(src), marker],
                        env={**os.environ, "PYTHONPATH": str(REPO)}) as runner:
        run_id = runner.stdout.readline().strip()
        assert run_id.startswith("run_"), run_id
        step_id = wait_until(lambda: [s.id for s in Run.get(workspace, run_id).get_steps()], "the step's run",
                             RAY_WAIT)[0]
        step = Run.get(workspace, step_id)
        wait_until(lambda: (job_of(cluster, step_id) or {}).get("status") == "RUNNING" or step.get_status() in
                   ("Failed", "Canceled", "Completed"), "the job to run", RAY_WAIT)
        assert step.get_status() == "Running", step.get_details().get("error")  # not a step that ended at once
        # the runner's own command line names the marker too: wait for another process
        wait_until(lambda: set(pids_with(marker)) - {runner.pid}, "the step's child process to start", RAY_WAIT)
        kill_hard(runner)
    assert job_of(cluster, step_id)["status"] == "RUNNING"  # the dead runner's job runs on unobserved
    assert pids_with(marker)
    return run_id, step_id


def test_recovery_stops_the_ray_job_of_a_runner_killed_by_sigkill(workspace, write_scripts, tmp_path, ray_cluster):
    src = write_scripts(tmp_path / "src", {"hang.py": HANG})
    marker = f"ray-orphan-of-{tmp_path.name}"
    run_id, step_id = killed_runner(workspace, src, marker, ray_cluster)

    Workspace(workspace.path)  # another process opening the workspace: recovery
    assert Run.get(Workspace(workspace.path), run_id).get_status() == "Failed"
    wait_until(lambda: job_of(ray_cluster, step_id)["status"] == "STOPPED", "the job to be stopped", 60)
    wait_until(lambda: not pids_with(marker), "every process of the step to be gone", 60)


def test_a_job_whose_run_was_recovered_elsewhere_is_stopped_by_the_next_run_on_the_cluster(
        workspace, write_scripts, tmp_path, ray_cluster):
    """A wait in another process marks the dead runner's run failed without reaching the cluster; the
    next run with a step there stops the job."""
    src = write_scripts(tmp_path / "src", {"hang.py": HANG, "quick.py": "print('quick')\n"})
    marker = f"ray-orphan-of-{tmp_path.name}"
    run_id, step_id = killed_runner(workspace, src, marker, ray_cluster)
    workspace._store.recover_orphans()  # what a wait or the run history does: the rows only
    assert Run.get(workspace, run_id).get_status() == "Failed"
    assert job_of(ray_cluster, step_id)["status"] == "RUNNING"

    quick = PythonScriptStep("quick.py", name="quick", source_directory=str(src), compute_target="cluster")
    run = submit(workspace, [quick], "next")
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)
    assert run.get_status() == "Completed"
    wait_until(lambda: job_of(ray_cluster, step_id)["status"] == "STOPPED", "the job to be stopped", 60)
    wait_until(lambda: not pids_with(marker), "every process of the step to be gone", 60)


def test_a_cluster_that_does_not_answer_is_warned_about_and_recovery_goes_on():
    runs = [{"id": "run_1", "parent_id": None, "details": {}},
            {"id": "run_1_s", "parent_id": "run_1", "details": {"compute_target": "gone"}}]
    targets = {"gone": {"kind": "ray", "config": {"address": "http://127.0.0.1:9"}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recover(runs, targets)
    (warning,) = [str(w.message) for w in caught]
    assert "Ray target 'gone'" in warning and "http://127.0.0.1:9 did not answer" in warning
