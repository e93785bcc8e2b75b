"""Nothing a step starts outlives it: daemons that double-fork and call setsid end with the step, on its
normal end, on cancel, on its time limit and when the runner is killed; a step ends when its main
process ends even if a daemon holds its output open. The same for environment builds. And a container
of a runner killed with -9 is removed when the workspace is opened again. Real processes throughout."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS, labelled_containers, pids_with, run_pipeline, steps_by_name, submit, wait_until
from mlpipe_jupyter import PipelineParameter, PythonScriptStep, Run, RunConfiguration, Workspace

REPO = Path(__file__).resolve().parents[2]

DAEMON = """
import os, sys, time
marker, mode = sys.argv[1], sys.argv[2]
if os.fork() == 0:           # the classic daemon: fork, setsid, fork again
    os.setsid()
    if os.fork() == 0:
        # keeps the step's stdout open and carries the marker in its command line
        os.execv(sys.executable, [sys.executable, "-c", "import time\\nwhile True: time.sleep(0.05)", marker])
    os._exit(0)
time.sleep(0.5)
open(marker, "w").write("daemon started")
print("main step process", mode, flush=True)
if mode == "wait":
    time.sleep(600)
"""


def daemon_step(src, marker, mode, timeout=None):
    config = RunConfiguration()
    config.max_run_duration_seconds = timeout
    return PythonScriptStep("daemon.py", name="daemon", source_directory=str(src), arguments=[str(marker), mode],
                            runconfig=config, allow_reuse=False)


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", {"daemon.py": DAEMON})


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "daemon-marker"
    yield path
    for pid in pids_with(path):  # a failing test leaves nothing running
        os.kill(pid, signal.SIGKILL)


def test_a_step_ends_with_its_main_process_and_takes_its_daemons_along(workspace, src, marker):
    run = run_pipeline(workspace, [daemon_step(src, marker, "exit")])  # hung for ever before, on the held pipe
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert "main step process exit" in steps_by_name(run)["daemon"].get_log_text()
    wait_until(lambda: not pids_with(marker), "the daemon to be gone", timeout=10)


def test_cancel_ends_the_daemons_of_a_step(workspace, src, marker):
    run = submit(workspace, [daemon_step(src, marker, "wait")])
    wait_until(marker.exists, "the daemon to start")
    assert pids_with(marker)
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"
    wait_until(lambda: not pids_with(marker), "the daemon to be gone", timeout=10)


def test_the_time_limit_holds_though_a_daemon_keeps_the_output_open(workspace, src, marker):
    run = run_pipeline(workspace, [daemon_step(src, marker, "wait", timeout=3)])
    step = steps_by_name(run)["daemon"]
    assert step.get_status() == "Canceled"
    assert "max_run_duration_seconds=3" in step.get_details()["error"]["message"]
    wait_until(lambda: not pids_with(marker), "the daemon to be gone", timeout=10)


RUNNER = """
import sys, time
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace(sys.argv[1])
step = PythonScriptStep("daemon.py", source_directory=sys.argv[2], arguments=[sys.argv[3], "wait"])
Experiment(ws, "killed").submit(Pipeline(ws, [step]))
time.sleep(600)
"""


def with_package(code, *args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, **kwargs)


def test_daemons_of_a_step_die_with_a_runner_killed_by_sigkill(workspace, src, marker):
    runner = with_package(RUNNER, workspace.path, src, marker)
    try:
        wait_until(marker.exists, "the daemon to start")
    finally:
        runner.kill()
        runner.wait()
    # at once, before anyone opens the workspace again
    wait_until(lambda: not pids_with(marker), "the daemon to be gone", timeout=10)


BUILDER = """
import sys
from mlpipe_jupyter import CondaDependencies, Environment, Workspace
from mlpipe_jupyter.compute.envbuild import build_venv
env = Environment(sys.argv[2])
env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
build_venv(Workspace(sys.argv[1]), env)
"""


def test_an_environment_build_dies_with_a_runner_killed_by_sigkill(workspace):
    """A build runs its tools (``uv venv``, ``uv pip install``, or ``python -m venv`` and its ensurepip)
    as children; they end with the runner. The child is stopped first, so it cannot simply finish by
    itself before it is looked at."""
    target = workspace.folder / "environments"  # in the command line of every child of the build
    builder = with_package(BUILDER, workspace.path, "killed-build")
    stopped = []
    try:
        def build_child():
            # a child still in setpriv has not set its parent-death signal yet (it does, then execs the
            # tool): stopping it there would test the stop, not the build
            found = [p for p in pids_with(target) if p != builder.pid and str(target) in _cmdline(p)
                     and _comm(p) != "setpriv"]
            return found or None

        stopped = wait_until(build_child, "the build's first child to start", interval=0.005)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
    finally:
        builder.kill()
        builder.wait()
    try:
        wait_until(lambda: not any(_exists(p) for p in stopped), "the build's children to be gone", timeout=10)
    finally:
        for pid in stopped:
            if _exists(pid):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _exists(pid) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


DOCKER_RUNNER = """
import sys, time
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace(sys.argv[1])
step = PythonScriptStep("sleep.py", source_directory=sys.argv[2], compute_target="docker")
run = Experiment(ws, "killed").submit(Pipeline(ws, [step]))
print(run.id, flush=True)
time.sleep(600)
"""


def test_recovery_removes_the_container_of_a_runner_killed_by_sigkill(workspace, write_scripts, tmp_path,
                                                                      docker_engine):
    src = write_scripts(tmp_path / "dsrc", {"sleep.py": "import time\nprint('up', flush=True)\ntime.sleep(600)\n"})
    runner = with_package(DOCKER_RUNNER, workspace.path, src, stdout=subprocess.PIPE, text=True)
    try:
        run_id = runner.stdout.readline().strip()
        assert run_id.startswith("run_")
        ws = Workspace(workspace.path)
        step_id = Run.get(ws, run_id).get_steps()[0].id

        def containers():
            return labelled_containers(docker_engine, f"mlpipe.run_id={step_id}")

        wait_until(lambda: any(c["State"] == "running" for c in containers()), "the step's container to run")
    finally:
        runner.kill()
        runner.wait()
        runner.stdout.close()
    # Any process that opens a workspace or checks a Docker step sweeps dead runners' containers, and
    # tests on the other worker do: whoever comes first, the container must not outlive its runner.
    Workspace(workspace.path)  # another process opening the workspace: recovery
    assert Run.get(Workspace(workspace.path), run_id).get_status() == "Failed"
    assert containers() == []


def test_without_namespaces_a_step_still_ends_with_its_main_process(workspace, src, marker, tmp_path):
    """Where no PID namespace can be made (MLPIPE_STEP_CONTAINMENT=process-group stands in for such a
    machine), a daemon holding the output open cannot keep the step, or ``mlpipe run``, going."""
    pipeline = tmp_path / "daemon.yaml"
    pipeline.write_text(f"steps: [{{name: daemon, script: daemon.py, source_directory: {src}, "
                        f"arguments: ['{marker}', exit]}}]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLPIPE_STEP_CONTAINMENT": "process-group"}
    r = subprocess.run([sys.executable, "-m", "mlpipe_jupyter.cli", "--workspace", str(workspace.path), "run",
                        str(pipeline)], env=env, capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "main step process exit" in r.stdout


def test_a_contained_step_gets_its_whole_environment(workspace, write_scripts, tmp_path):
    """Variables whose names are no shell names (a parameter ``n.rows``) pass the namespace's first
    process unchanged, and a BASH_ENV in the step's environment runs nothing there."""
    src = write_scripts(tmp_path / "src", {"env.py": "import os\nprint(sorted(k for k in os.environ "
                                                     "if k.startswith(('AML_', 'MY-', 'BASH_ENV'))))\n"})
    hook = tmp_path / "hook.sh"
    hook.write_text(f"echo hooked > {tmp_path / 'hooked'}\n")
    config = RunConfiguration()
    config.environment_variables = {"MY-VAR": "1", "BASH_ENV": str(hook)}
    step = PythonScriptStep("env.py", name="env", source_directory=str(src), runconfig=config,
                            params={"n.rows": PipelineParameter("n.rows", default_value=2)})
    run = run_pipeline(workspace, [step])
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert "['AML_PARAMETER_n.rows', 'BASH_ENV', 'MY-VAR']" in steps_by_name(run)["env"].get_log_text()
    assert not (tmp_path / "hooked").exists()
