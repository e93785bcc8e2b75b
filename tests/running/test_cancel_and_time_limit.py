"""Stopping steps: run.cancel() here or from another process, and max_run_duration_seconds."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS, pid_alive, read_json, statuses, steps_by_name, submit, wait_until
from mlpipe_jupyter import (Experiment, PipelineData, PythonScriptStep, Run, RunConfiguration,
                            ScriptRunConfig)

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPTS = {
    "slow.py": '''
        """Starts a grandchild, records both pids, writes a partial output, then sleeps in a loop."""
        import json, os, subprocess, sys, time
        out, pids = sys.argv[1], sys.argv[2]
        child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.05)"])
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
}


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


def slow_pipeline(src, pids, runconfig=None):
    out = PipelineData("out")
    slow = PythonScriptStep("slow.py", source_directory=str(src), outputs=[out], arguments=[out, str(pids)],
                            runconfig=runconfig)
    after = PythonScriptStep("after.py", source_directory=str(src), inputs=[out], arguments=[out])
    return [after, slow]


def assert_stopped_cleanly(workspace, step, pids_file):
    pids = read_json(pids_file)
    for role, pid in pids.items():
        wait_until(lambda: not pid_alive(pid), f"the {role} process {pid} to be gone", timeout=10)
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
    code = ("import sys\nfrom mlpipe_jupyter import Workspace, Run\n"
            "Run.get(Workspace(sys.argv[1]), sys.argv[2]).cancel()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code, str(workspace.path), run.id], check=True, env=env,
                   timeout=WAIT_SECONDS)
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
    for pid in read_json(pids).values():
        wait_until(lambda: not pid_alive(pid), f"process {pid} to be gone", timeout=10)
    assert "slow step started" in run.get_log_text()
    assert isinstance(Run.get(workspace, run.id), Run)


def test_cancel_of_a_script_that_exits_0_on_sigterm(workspace, src, tmp_path):
    pid_file = tmp_path / "pid.txt"
    out = PipelineData("out")
    step = PythonScriptStep("graceful.py", source_directory=str(src), outputs=[out], arguments=[out, str(pid_file)])
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
        code = ("import sys\nfrom mlpipe_jupyter import Workspace, Run\n"
                "Run.get(Workspace(sys.argv[1]), sys.argv[2]).cancel()\n")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        subprocess.run([sys.executable, "-c", code, str(workspace.path), run.id], check=True, env=env,
                       timeout=WAIT_SECONDS)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"
    for pid in read_json(pids).values():
        wait_until(lambda: not pid_alive(pid), f"process {pid} to be gone", timeout=10)
    assert "slow step started" in run.get_log_text()
    assert "outputs/progress.txt" in run.get_file_names()
