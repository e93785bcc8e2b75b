"""What every compute backend promises the runner (running/protocol.py), tested the same way on each
registered kind against its real engine: a local subprocess, a Docker container, a Ray job.

A new kind of compute target adds itself to ``KINDS`` and must pass these before the runner may use it."""
from __future__ import annotations

import shutil
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from helpers import labelled_containers, pids_with, wait_until
from mlpipe_jupyter.compute import backend_for
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.environment import EnvironmentDefinition
from mlpipe_jupyter.planning.planner import Ref
from mlpipe_jupyter.running.protocol import Job, backend_class, backend_kinds

KINDS = ["local", "docker", "ray"]

STEP = textwrap.dedent("""
    import os, subprocess, sys, time
    inp, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    print("read", open(os.path.join(inp, "in.txt")).read().strip(), "cwd", os.path.basename(os.getcwd()))
    print("env", os.environ["GREETING"], os.environ["OUT_DIR"] == out, flush=True)
    sys.stderr.write("to stderr\\n")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "result.txt"), "w").write("written by the step")
    if mode == "hang":
        # a child in a process group of its own that ignores SIGTERM: it too must go when the step is stopped
        subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "time.sleep(600)", "child-of-" + out], start_new_session=True)
        print("hanging", flush=True)
        time.sleep(600)
    sys.exit(int(mode))
""")


# every Ray test on one worker of the parallel run (scripts/test.sh: --dist loadgroup): one cluster, not one each
@pytest.fixture(params=[pytest.param(k, marks=pytest.mark.xdist_group("ray")) if k == "ray" else k for k in KINDS])
def backend(request):
    if request.param == "docker":
        client = request.getfixturevalue("docker_engine")
        made = backend_for(None, "docker", {"kind": "docker", "config": {}})
        made.containers = lambda run_id: labelled_containers(client, f"mlpipe.run_id={run_id}")
        return made
    if request.param == "ray":
        cluster = request.getfixturevalue("ray_cluster")
        made = backend_for(None, "ray", {"kind": "ray", "config": {"address": cluster.address}})
        made.containers = lambda run_id: []
        return made
    made = backend_for(None, "local", {"kind": "local", "config": {}})
    made.containers = lambda run_id: []
    return made


def make_job(tmp_path: Path, mode: str) -> Job:
    """A job as the runner hands it over: a snapshot copy as working folder, an input, an output folder."""
    scratch = tmp_path / f"scratch-{uuid.uuid4().hex[:8]}"
    working = scratch / "wd"
    (working / "outputs").mkdir(parents=True)
    (working / "logs").mkdir()
    (working / "step.py").write_text(STEP)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "in.txt").write_text("hello input")
    run_dir = scratch / "run"
    run_dir.mkdir()
    output = scratch / "out" / "result" / "result"  # a folder output, staged as the runner stages it
    output.mkdir(parents=True)
    environment = EnvironmentDefinition("contract")
    if shutil.which("python3") is None:
        environment.python.interpreter_path = sys.executable
    return Job(run_id=f"contract-{uuid.uuid4().hex}", parent_run_id=None, experiment="contract", step_name="only",
               script="step.py", arguments=[Ref("input", "data"), Ref("output", "result"), mode],
               env_vars={"GREETING": "hi", "OUT_DIR": Ref("output", "result")}, working_dir=working,
               run_dir=run_dir, inputs={"data": data}, outputs={"result": output}, environment=environment,
               scratch=scratch)


def run_to_end(backend, job) -> tuple[bytes, int]:
    handle = backend.start(job)
    printed = b"".join(handle.chunks())
    code = handle.wait()
    backend.collect(job, handle)
    return printed, code


def test_every_registered_kind_is_tested_here():
    shipped = [k for k in backend_kinds() if backend_class(k).__module__.startswith("mlpipe_jupyter.")]
    assert sorted(KINDS) == shipped  # (tests may register fakes of their own)


def test_identity_names_the_kind_and_what_changes_results_not_the_name_or_limits(backend):
    identity = backend.identity()
    assert identity["kind"] == backend.kind
    other = backend_for(None, "another-name", {"kind": backend.kind, "config": {"max_concurrency": 3}})
    assert other.identity() == identity
    assert other.capacity() == 3 and backend.capacity() is None
    with_image = backend_for(None, "x", {"kind": backend.kind, "config": {"image": "some/image:1"}})
    assert with_image.identity() != identity


def test_a_step_reads_its_input_writes_its_output_and_every_byte_and_the_exit_code_come_back(backend, tmp_path):
    job = make_job(tmp_path, "3")
    printed, code = run_to_end(backend, job)
    text = printed.decode()
    assert code == 3, text
    assert "read hello input cwd wd" in text and "env hi True" in text and "to stderr" in text
    assert (job.outputs["result"] / "result.txt").read_text() == "written by the step"
    assert backend.containers(job.run_id) == []


def test_cancel_stops_the_step_and_everything_it_started_and_is_safe_to_repeat(backend, tmp_path):
    job = make_job(tmp_path, "hang")
    handle = backend.start(job)
    printed = b""
    for chunk in handle.chunks():
        printed += chunk
        if b"hanging" in printed:
            break
    started = time.monotonic()
    handle.cancel()
    code = handle.wait()
    handle.cancel()  # again, after it ended
    assert code != 0
    assert time.monotonic() - started < 30
    child = f"child-of-{job.outputs['result']}"
    if backend.kind in ("local", "ray"):
        wait_until(lambda: not pids_with(child), "the step's child process to be gone", timeout=10)
    wait_until(lambda: backend.containers(job.run_id) == [], "the step's container to be removed", timeout=20)
    assert (job.outputs["result"] / "result.txt").exists()  # what it wrote before it was stopped is kept


def test_check_names_the_step_when_its_environment_cannot_run_here(backend, tmp_path):
    environment = EnvironmentDefinition("impossible")
    if backend.kind == "docker":
        environment.docker.base_image = "mlpipe-contract/no-such-image:1"
    else:
        environment.python.interpreter_path = str(tmp_path / "no" / "python")
    with pytest.raises(UserError) as raised:
        backend.check("train-model", environment)
    message = str(raised.value)
    assert "train-model" in message and "\n" not in message.strip()
