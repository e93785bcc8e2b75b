"""A runner killed with SIGKILL: the next open of the workspace cleans up, completed work stays reusable."""
import os
import runpy
import subprocess
import sys
import textwrap
import time

from helpers import kill_hard, pids_with, runner_process
from mlpipe_jupyter import Experiment, Run, Workspace

DRIVER = '''
import sys, time
from mlpipe_jupyter import Experiment, Pipeline, PipelineData, PipelineParameter, PythonScriptStep, Workspace


def build(ws, src, pid_file):
    quick_out = PipelineData("quick_out")
    quick = PythonScriptStep("quick.py", name="quick", source_directory=src, arguments=["--out", quick_out],
                             outputs=[quick_out])
    slow = PythonScriptStep("slow.py", name="slow", source_directory=src,
                            arguments=["--inp", quick_out, "--pid-file", pid_file,
                                       "--sleep", PipelineParameter("sleep", 600)], inputs=[quick_out])
    return Pipeline(ws, [slow])


if __name__ == "__main__":
    ws = Workspace(sys.argv[1])
    run = Experiment(ws, "crash").submit(build(ws, sys.argv[2], sys.argv[3]))
    print(run.id, flush=True)
    time.sleep(600)
'''

QUICK = '''
import argparse, os
p = argparse.ArgumentParser(); p.add_argument("--out"); a = p.parse_args()
open(os.path.join(a.out, "value.txt"), "w").write("42")
'''

SLOW = '''
import argparse, os, time
p = argparse.ArgumentParser(); p.add_argument("--inp"); p.add_argument("--pid-file"); p.add_argument("--sleep")
a = p.parse_args()
assert open(os.path.join(a.inp, "value.txt")).read() == "42"
tmp = a.pid_file + ".tmp"
open(tmp, "w").write(str(os.getpid()))
os.replace(tmp, a.pid_file)
print("sleeping", flush=True)
time.sleep(float(a.sleep))
'''


def _wait_for(condition, what, limit=30.0):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_killed_runner_is_recovered_and_completed_steps_are_reused(tmp_path):
    Workspace.create("crash", path=tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "quick.py").write_text(textwrap.dedent(QUICK))
    (src / "slow.py").write_text(textwrap.dedent(SLOW))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    pid_file = tmp_path / "slow.pid"

    marker = f"crash-test-{tmp_path.name}"  # in the runner's variables: its step's (and helper's) too
    with runner_process([sys.executable, str(driver), str(tmp_path / "ws"), str(src), str(pid_file)],
                        stderr=subprocess.PIPE, env={**os.environ, "CRASH_TEST_MARKER": marker}) as proc:
        run_id = proc.stdout.readline().strip()
        assert run_id.startswith("run_"), proc.stderr.read() if proc.poll() is not None else run_id
        _wait_for(pid_file.exists, "the slow step to start")
        # the step runs in a PID namespace, and a warm one looks like its helper: found by that variable
        assert set(pids_with(marker, where="environ")) - {proc.pid}
        kill_hard(proc)

    ws = Workspace(tmp_path / "ws")  # opening the workspace notices the dead runner
    run = Run.get(ws, run_id)
    assert run.get_status() == "Failed"
    error = run.get_details()["error"]["message"]
    assert f"pid {proc.pid}" in error and "ended before the run finished" in error
    steps = {s.name: s for s in run.get_steps()}
    assert steps["quick"].get_status() == "Completed"
    assert steps["slow"].get_status() == "Failed"
    assert "ended before the run finished" in steps["slow"].get_details()["error"]["message"]
    _wait_for(lambda: not pids_with(marker, where="environ"), "the orphaned step process to end")
    assert list((ws.folder / "tmp").glob(f"step-{steps['slow'].id}-*")) == []  # its staging is cleaned up

    build = runpy.run_path(str(driver))["build"]
    again = Experiment(ws, "crash").submit(build(ws, str(src), str(tmp_path / "again.pid")),
                                           pipeline_parameters={"sleep": 0})
    again.wait_for_completion(raise_on_error=False)
    assert again.get_status() == "Completed"
    quick = again.get_step("quick")
    assert quick.reused and quick.get_details()["reused_from"] == steps["quick"].id
    assert not again.get_step("slow").reused
