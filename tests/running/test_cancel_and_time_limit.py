"""Stopping steps: run.cancel() here or from another process, and max_run_duration_seconds."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS, pids_with, statuses, steps_by_name, submit, wait_until
from mlpipe_jupyter import (Experiment, PipelineData, PythonScriptStep, Run, RunConfiguration,
                            ScriptRunConfig, Workspace)

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPTS = {
    "slow.py": '''
        """Starts a grandchild (with the pids file in its command line too), records both pids, writes a
        partial output, then sleeps in a loop."""
        import json, os, subprocess, sys, time
        out, pids = sys.argv[1], sys.argv[2]
        child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.05)", pids])
        open(os.path.join(out, "partial.txt"), "w").write("half done")
        os.makedirs("outputs", exist_ok=True)
        open("outputs/progress.txt", "w").write("started")
        tmp = pids + ".tmp"
        json.dump({"script": os.getpid(), "grandchild": child.pid}, open(tmp, "w"))
        os.replace(tmp, pids)
        print("slow step started", flush=True)
        for _ in range(1200):
            time.sleep(0.05)
        print("slow step was not stopped")
    ''',
    "after.py": """
        print("after ran")
    """,
    "graceful.py": """
        import os, signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # saves its work and ends "successfully"
        open(os.path.join(sys.argv[1], "result.txt"), "w").write("unfinished")
        open(sys.argv[2], "w").write(str(os.getpid()))
        for _ in range(1200):
            time.sleep(0.05)
    """,
    "leaves_child.py": """
        import os, subprocess, sys
        # the child inherits the log pipe and would outlive the script; the step must still end
        child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.05)", sys.argv[1]])
        open(sys.argv[1], "w").write(str(child.pid))
        print("script done")
    """,
}

RUNNER = """
import sys, time
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace(sys.argv[1])
step = PythonScriptStep("slow.py", source_directory=sys.argv[2], arguments=[sys.argv[3], sys.argv[4]])
Experiment(ws, "killed").submit(Pipeline(ws, [step]))
time.sleep(600)
"""


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


def slow_pipeline(src, pids, runconfig=None):
    out = PipelineData("out")
    slow = PythonScriptStep("slow.py", name="slow", source_directory=str(src), outputs=[out],
                            arguments=[out, str(pids)], runconfig=runconfig)
    after = PythonScriptStep("after.py", name="after", source_directory=str(src), inputs=[out], arguments=[out])
    return [after, slow]


def python_with_package(code: str, *args, **popen_kwargs) -> subprocess.Popen:
    """Another Python process that imports this package from the work tree."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, **popen_kwargs)


def cancel_from_another_process(workspace, run):
    code = ("import sys\nfrom mlpipe_jupyter import Workspace, Run\n"
            "Run.get(Workspace(sys.argv[1]), sys.argv[2]).cancel()\n")
    assert python_with_package(code, workspace.path, run.id).wait(timeout=WAIT_SECONDS) == 0


def assert_stopped_cleanly(workspace, step, pids_file):
    wait_until(lambda: not pids_with(pids_file), "the step's processes (script and child) to be gone", timeout=10)
    assert step.get_outputs() == {}
    committed = list((workspace.folder / "data").rglob("partial.txt"))
    assert committed == []  # no output of the stopped step was committed
    assert "slow step started" in step.get_log_text()
    assert "slow step was not stopped" not in step.get_log_text()
    assert "outputs/progress.txt" in step.get_file_names()


def test_cancel_stops_the_process_group(workspace, src, tmp_path):
    pids = tmp_path / "pids.json"
    run = submit(workspace, slow_pipeline(src, pids))
    wait_until(pids.exists, "the slow step to start")
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)

    assert run.get_status() == "Canceled"
    assert statuses(run) == {"slow": "Canceled", "after": "Canceled"}
    steps = steps_by_name(run)
    assert steps["after"].get_details()["error"]["message"].startswith("Not run:")
    assert_stopped_cleanly(workspace, steps["slow"], pids)
    run.cancel()  # a second cancel of a finished run is harmless
    assert run.get_status() == "Canceled"


def test_cancel_from_another_process(workspace, src, tmp_path):
    pids = tmp_path / "pids.json"
    run = submit(workspace, slow_pipeline(src, pids))
    wait_until(pids.exists, "the slow step to start")
    cancel_from_another_process(workspace, run)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)

    assert run.get_status() == "Canceled"
    assert statuses(run) == {"slow": "Canceled", "after": "Canceled"}
    assert_stopped_cleanly(workspace, steps_by_name(run)["slow"], pids)


def test_step_time_limit(workspace, src, tmp_path):
    pids = tmp_path / "pids.json"
    config = RunConfiguration()
    config.max_run_duration_seconds = 2
    run = submit(workspace, slow_pipeline(src, pids, config))
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)

    steps = steps_by_name(run)
    assert steps["slow"].get_status() == "Canceled"
    error = steps["slow"].get_details()["error"]["message"]
    assert "max_run_duration_seconds=2" in error and "'slow'" in error
    assert steps["after"].get_status() == "Canceled"
    assert run.get_status() == "Canceled"
    assert "max_run_duration_seconds=2" in run.get_details()["error"]["message"]
    assert_stopped_cleanly(workspace, steps["slow"], pids)


def test_script_run_time_limit(workspace, src, tmp_path):
    pids = tmp_path / "pids.json"
    out = tmp_path / "out"
    out.mkdir()
    config = ScriptRunConfig(source_directory=str(src), script="slow.py", arguments=[str(out), str(pids)],
                             max_run_duration_seconds=2)
    run = Experiment(workspace, "scripts").submit(config)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)

    assert run.get_status() == "Canceled"
    assert "max_run_duration_seconds=2" in run.get_details()["error"]["message"]
    wait_until(lambda: not pids_with(pids), "the script and its child to be gone", timeout=10)
    assert "slow step started" in run.get_log_text()
    assert isinstance(Run.get(workspace, run.id), Run)


def test_cancel_of_a_script_that_exits_0_on_sigterm(workspace, src, tmp_path):
    pid_file = tmp_path / "pid.txt"
    out = PipelineData("out")
    step = PythonScriptStep("graceful.py", name="graceful", source_directory=str(src), outputs=[out],
                            arguments=[out, str(pid_file)])
    run = submit(workspace, [step])
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the step to start")
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"
    graceful = steps_by_name(run)["graceful"]
    assert graceful.get_status() == "Canceled"
    assert graceful.get_outputs() == {}
    assert list((workspace.folder / "data").rglob("result.txt")) == []
    # and a canceled step is not reused later
    pid_file.unlink()
    again = submit(workspace, [step])
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), "the resubmitted step to start")
    assert not steps_by_name(again)["graceful"].reused
    again.cancel()
    again.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)


@pytest.mark.parametrize("where", ["here", "another process"])
def test_cancel_a_script_run(workspace, src, tmp_path, where):
    pids = tmp_path / "pids.json"
    out = tmp_path / "out"
    out.mkdir()
    config = ScriptRunConfig(source_directory=str(src), script="slow.py", arguments=[str(out), str(pids)])
    run = Experiment(workspace, "scripts").submit(config)
    wait_until(pids.exists, "the script to start")
    if where == "here":
        run.cancel()
    else:
        cancel_from_another_process(workspace, run)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"
    wait_until(lambda: not pids_with(pids), "the script and its child to be gone", timeout=10)
    assert "slow step started" in run.get_log_text()
    assert "outputs/progress.txt" in run.get_file_names()


def test_what_a_finished_script_leaves_running_is_ended(workspace, src, tmp_path):
    pid_file = tmp_path / "child.pid"
    run = submit(workspace, [PythonScriptStep("leaves_child.py", name="leaves_child", source_directory=str(src),
                                              arguments=[str(pid_file)])])
    try:
        run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
        assert run.get_status() == "Completed"
        assert "script done" in steps_by_name(run)["leaves_child"].get_log_text()
        wait_until(lambda: not pids_with(pid_file), "the left-behind process to be gone", timeout=10)
    finally:
        for pid in pids_with(pid_file):  # a failed test leaves nothing running
            os.kill(pid, signal.SIGKILL)


def test_steps_die_with_a_killed_runner(workspace, src, tmp_path):
    """SIGKILL to the process running the pipeline ends its steps at once, before anyone opens the workspace."""
    pids, out = tmp_path / "pids.json", tmp_path / "out"
    out.mkdir()
    runner = python_with_package(RUNNER, workspace.path, src, out, pids)
    try:
        wait_until(pids.exists, "the slow step to start")
    finally:
        runner.kill()
        runner.wait()
    try:
        wait_until(lambda: not pids_with(pids), "the step's processes (script and child) to be gone", timeout=10)
    finally:
        Workspace(workspace.path)  # opening the workspace ends the dead run's process group, child and all
