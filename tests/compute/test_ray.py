"""Pipelines with steps on a real two-node Ray cluster on 127.0.0.1 (tests/compute/ray_cluster.py):
data between local and Ray steps, a step pinned to the worker node, logs, live metrics, failure,
cancel, a request no node can meet, pip packages through runtime_env, and reuse."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from helpers import LIVE_METRIC, metrics_arrive_while_the_step_runs, pids_with, statuses, steps_by_name, submit, trace_lines, wait_until
from mlpipe_jupyter import (ComputeTarget, CondaDependencies, DataReference, Datastore, Environment,
                            OutputFileDatasetConfig, PipelineData, PythonScriptStep, RayCompute, Run, RunConfiguration,
                            UserError, Workspace)
from mlpipe_jupyter.compat.cloud import AmlCompute
from distributed_scripts import RENDEZVOUS
from mlpipe_jupyter import PyTorchConfiguration, ScriptRunConfig
from ray_cluster import WORKER_RESOURCE

pytestmark = pytest.mark.xdist_group("ray")  # one cluster for all Ray tests (scripts/test.sh: --dist loadgroup)

SCRIPTS = {
    "prep.py": """
        import os, sys
        out, trace = sys.argv[1], sys.argv[2]
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, "numbers.txt"), "w").write("1 2 3")
        open(trace, "a").write("prep\\n")
    """,
    "pinned.py": """
        import os, sys
        from mlpipe_jupyter import Run
        inp, out, trace = sys.argv[1], sys.argv[2], sys.argv[3]
        total = sum(int(x) for x in open(os.path.join(inp, "numbers.txt")).read().split())
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, "total.txt"), "w").write(str(total))
        Run.get_context().log("total", total)
        open(trace, "a").write("pinned\\n")
        print("pinned total", total)
    """,
    "report.py": """
        import os, sys
        total = open(os.path.join(sys.argv[1], "total.txt")).read()
        print("report", total)
        open(sys.argv[2], "a").write("report\\n")
    """,
    "report_only.py": """
        import os, sys
        print("report", open(os.path.join(sys.argv[1], "total.txt")).read(), "in", os.getcwd())
    """,
    "meet.py": RENDEZVOUS,
    "chatty.py": """
        for i in range(300):
            print("line", i)
    """,
    "live.py": LIVE_METRIC,
    "fail.py": """
        import sys
        print("about to fail")
        sys.exit("the data was bad")
    """,
    "hang.py": """
        import subprocess, sys, time
        # a child in a session of its own that ignores SIGTERM: it too must go when the step is stopped
        subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "time.sleep(600)", sys.argv[1]], start_new_session=True)
        print("hanging", flush=True)
        time.sleep(600)
    """,
    "pkg.py": """
        import sys, tabulate
        print("tabulate", tabulate.__version__, "from", tabulate.__file__)
        print("python", sys.executable)
    """,
}


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


@pytest.fixture
def cluster_target(workspace, ray_cluster):
    config = RayCompute.provisioning_configuration(
        ray_cluster.address, step_resources={"pinned": {"resources": {WORKER_RESOURCE: 1}},
                                             "gpu": {"num_gpus": 1}})
    return ComputeTarget.create(workspace, "cluster", config)


# A guard against hangs only: a Ray step waits for a worker process, slow on a loaded 2-core machine.
RAY_WAIT = 300


def run_pipeline(ws, steps):
    run = submit(ws, steps, "ray")
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)
    return run


def step(src, script, name, target, **kwargs):
    return PythonScriptStep(script, name=name, source_directory=str(src), compute_target=target, **kwargs)


def ray_jobs(cluster) -> dict:
    """The cluster's jobs by the step run they ran."""
    with urllib.request.urlopen(f"{cluster.address}/api/jobs/", timeout=10) as r:
        return {(j.get("metadata") or {}).get("mlpipe.run_id"): j for j in json.load(r)}


def test_local_and_ray_steps_pass_data_and_a_pinned_step_runs_on_the_worker_node(
        workspace, src, tmp_path, ray_cluster, cluster_target):
    trace = tmp_path / "trace.txt"
    numbers, total = PipelineData("numbers"), PipelineData("total")
    prep = step(src, "prep.py", "prep", "local", outputs=[numbers], arguments=[numbers, str(trace)])
    pinned = step(src, "pinned.py", "pinned", cluster_target, inputs=[numbers], outputs=[total],
                  arguments=[numbers, total, str(trace)])
    report = step(src, "report.py", "report", "local", inputs=[total], arguments=[total, str(trace)])
    run = run_pipeline(workspace, [report])

    assert run.get_status() == "Completed", run.get_details().get("error")
    assert trace_lines(trace) == ["prep", "pinned", "report"]
    steps = steps_by_name(run)
    assert (steps["pinned"].get_output_data("total").path / "total.txt").read_text() == "6"
    assert "report 6" in steps["report"].get_log_text()
    assert "pinned total 6" in steps["pinned"].get_log_text()
    assert steps["pinned"].get_metrics() == {"total": 6}
    worker = [n["node_id"] for n in ray_cluster.nodes() if WORKER_RESOURCE in n["resources_total"]]
    assert ray_jobs(ray_cluster)[steps["pinned"].id]["driver_node_id"] == worker[0]

    again = run_pipeline(workspace, [report])  # unchanged: the Ray step is reused like any other
    assert again.get_status() == "Completed"
    assert all(s.reused for s in again.get_steps())
    assert trace_lines(trace) == ["prep", "pinned", "report"]
    assert steps_by_name(again)["pinned"].get_details()["reused_from"] == steps["pinned"].id


def test_a_pipeline_of_local_ray_and_docker_steps(workspace, src, tmp_path, cluster_target, docker_engine):
    trace = tmp_path / "trace.txt"
    numbers, total = PipelineData("numbers"), PipelineData("total")
    prep = step(src, "prep.py", "prep", "local", outputs=[numbers], arguments=[numbers, str(trace)])
    pinned = step(src, "pinned.py", "pinned", cluster_target, inputs=[numbers], outputs=[total],
                  arguments=[numbers, total, str(trace)])
    report = step(src, "report_only.py", "report", "docker", inputs=[total], arguments=[total])
    run = run_pipeline(workspace, [prep, pinned, report])

    assert run.get_status() == "Completed", run.get_details().get("error")
    assert "report 6 in /mlpipe/wd" in steps_by_name(run)["report"].get_log_text()  # it ran in the container
    assert trace_lines(trace) == ["prep", "pinned"]
    again = run_pipeline(workspace, [prep, pinned, report])
    assert all(s.reused for s in again.get_steps())


def test_ray_and_local_steps_pass_data_through_an_fsspec_datastore(workspace, src, tmp_path, cluster_target):
    """The runner brings an fsspec input to a path the cluster shares and uploads a committed output."""
    bucket = Datastore.register_fsspec(workspace, "bucket", f"file://{tmp_path / 'bucket'}")
    bucket.fs.makedirs(bucket.resolve("raw"), exist_ok=True)
    bucket.fs.pipe(bucket.resolve("raw/numbers.txt"), b"4 5 6")
    trace = tmp_path / "trace.txt"
    total = OutputFileDatasetConfig("total", destination=(bucket, "results/{run-id}"))
    raw = DataReference(bucket, "raw", "raw")
    pinned = step(src, "pinned.py", "pinned", cluster_target, inputs=[raw], outputs=[total],
                  arguments=[raw, total, str(trace)])
    report = step(src, "report.py", "report", "local", arguments=[total.as_input(), str(trace)])
    run = run_pipeline(workspace, [pinned, report])

    assert run.get_status() == "Completed", run.get_details().get("error")
    steps = steps_by_name(run)
    assert "report 15" in steps["report"].get_log_text()
    assert bucket.fs.cat(bucket.resolve(f"results/{steps['pinned'].id}/total.txt")) == b"15"


def test_every_line_of_a_short_step_reaches_the_log(workspace, src, cluster_target):
    run = run_pipeline(workspace, [step(src, "chatty.py", "chatty", cluster_target)])

    assert run.get_status() == "Completed"
    log = steps_by_name(run)["chatty"].get_log_text()
    assert log.splitlines() == [f"line {i}" for i in range(300)]  # and nothing of Ray's own


def test_metrics_reach_the_run_history_while_the_job_runs(workspace, src, tmp_path, cluster_target):
    go = tmp_path / "go"
    metrics_arrive_while_the_step_runs(workspace, step(src, "live.py", "live", cluster_target, arguments=[str(go)]),
                                       go, RAY_WAIT)


def test_a_failing_job_fails_its_step_with_its_last_line(workspace, src, cluster_target):
    run = run_pipeline(workspace, [step(src, "fail.py", "fail", cluster_target)])

    assert statuses(run) == {"fail": "Failed"}
    error = steps_by_name(run)["fail"].get_details()["error"]["message"]
    assert "exited with code 1" in error and "the data was bad" in error


def test_cancel_stops_the_job_and_every_process_it_started(workspace, src, tmp_path, cluster_target):
    marker = f"child-of-{tmp_path.name}"
    run = submit(workspace, [step(src, "hang.py", "hang", cluster_target, arguments=[marker])])
    hang = wait_until(lambda: steps_by_name(run).get("hang"), "the step to start", RAY_WAIT)
    wait_until(lambda: "hanging" in hang.get_log_text(), "the job to print", RAY_WAIT)
    assert pids_with(marker)
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)

    assert statuses(run) == {"hang": "Canceled"}
    wait_until(lambda: not pids_with(marker), "the job's child process to be gone", timeout=60)


def test_a_request_no_node_can_meet_is_refused_before_anything_runs(workspace, src, cluster_target):
    with pytest.raises(UserError) as raised:
        submit(workspace, [step(src, "chatty.py", "gpu", cluster_target)])
    message = str(raised.value)
    assert "Step 'gpu'" in message and "GPU=1" in message and "no node" in message


def test_a_second_step_asking_too_much_fails_at_once_naming_it(workspace, src, tmp_path, cluster_target):
    """check() runs once per target and environment; the job's own check catches the step it skipped."""
    first = step(src, "chatty.py", "chatty", cluster_target)
    gpu = step(src, "prep.py", "gpu", cluster_target, outputs=[PipelineData("d")], arguments=["x", str(tmp_path / "t")])
    run = run_pipeline(workspace, [first, gpu])

    assert statuses(run)["gpu"] == "Failed"
    assert "GPU=1" in steps_by_name(run)["gpu"].get_details()["error"]["message"]
    assert not (tmp_path / "t").exists()


def test_pip_packages_are_installed_through_runtime_env(workspace, src, cluster_target):
    env = Environment("with-tabulate")
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["tabulate==0.9.0"])
    rc = RunConfiguration()
    rc.environment = env
    run = run_pipeline(workspace, [step(src, "pkg.py", "pkg", cluster_target, runconfig=rc)])

    log = steps_by_name(run)["pkg"].get_log_text()
    assert run.get_status() == "Completed", log
    assert "tabulate 0.9.0 from" in log
    assert "runtime_resources/pip" in log  # Ray's virtualenv for the environment, not this interpreter


AZURE_DRIVER = """
from azureml.core import Workspace, Experiment
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException
from azureml.pipeline.core import Pipeline
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
try:
    cluster = ComputeTarget(workspace=ws, name="cpu-cluster")
except ComputeTargetException:
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
    cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    cluster.wait_for_completion(show_output=True)
step = PythonScriptStep(script_name="answer.py", compute_target=cluster, source_directory="src")
run = Experiment(ws, "on-ray").submit(Pipeline(workspace=ws, steps=[step]))
run.wait_for_completion(show_output=True)
print("RUN", run.id, run.get_status())
"""

AZURE_STEP = """
from azureml.core import Run
Run.get_context().log("answer", 42)
"""


def test_an_azure_driver_runs_its_cluster_steps_on_the_ray_cluster_its_name_is_mapped_to(tmp_path, ray_cluster):
    ws = Workspace.create("azure-ray", path=tmp_path)
    config = ws.folder / "config.json"
    mapping = {"cpu-cluster": {"kind": "ray", "address": ray_cluster.address, "resources": {WORKER_RESOURCE: 1}}}
    config.write_text(json.dumps({**json.loads(config.read_text()), "compute_targets": mapping}))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "answer.py").write_text(textwrap.dedent(AZURE_STEP))
    (tmp_path / "driver.py").write_text(AZURE_DRIVER)
    r = subprocess.run([str(Path(sys.executable).with_name("mlpipe")), "python", "driver.py"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=RAY_WAIT, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    run = Run.get(Workspace(tmp_path), r.stdout.split("RUN ")[1].split()[0])
    (answer,) = run.get_steps()
    assert answer.get_status() == "Completed" and answer.get_metrics() == {"answer": 42}
    worker = [n["node_id"] for n in ray_cluster.nodes() if WORKER_RESOURCE in n["resources_total"]]
    assert ray_jobs(ray_cluster)[answer.id]["driver_node_id"] == worker[0]  # ran where the mapping asked


def test_a_credential_in_the_workspace_config_is_refused(workspace):
    config = workspace.folder / "config.json"
    mapping = {"cpu-cluster": {"kind": "ray", "address": "http://127.0.0.1:1", "auth_token": "in-clear"}}
    config.write_text(json.dumps({**json.loads(config.read_text()), "compute_targets": mapping}))
    with pytest.raises(UserError, match="auth_token.*RAY_AUTH_TOKEN"):
        ComputeTarget.create(Workspace(workspace.path), "cpu-cluster", AmlCompute.provisioning_configuration())


@pytest.mark.parametrize("nodes", [1, 2])
def test_two_pytorch_processes_meet_on_the_cluster(workspace, src, cluster_target, nodes):
    """One job starting both processes, or one job per node (Ray may put both on one node: they meet
    over the address node 0's launcher published either way)."""
    config = ScriptRunConfig(str(src), "meet.py",
                             distributed_job_config=PyTorchConfiguration(process_count=2, node_count=nodes))
    train = step(src, "meet.py", "train", cluster_target, runconfig=config.run_config)
    run = run_pipeline(workspace, [train])
    assert run.get_status() == "Completed", run.get_details().get("error")
    logs = steps_by_name(run)["train"].get_details()["logFiles"]
    assert "rank 0 met ranks [1]" in open(logs["logs/std_log.txt"]).read()
    rank1 = open(logs["user_logs/std_log_process_1.txt"]).read()
    assert "rank 1 got welcome" in rank1 and f"('NODE_RANK', '{nodes - 1}')" in rank1
    jobs = [j for j in ray_jobs_all(cluster_target) if (j.get("metadata") or {}).get("mlpipe.run_id") ==
            steps_by_name(run)["train"].id]
    assert len(jobs) == nodes and {j["status"] for j in jobs} == {"SUCCEEDED"}


def ray_jobs_all(target) -> list:
    with urllib.request.urlopen(f"{target.config['address'].rstrip('/')}/api/jobs/", timeout=10) as r:
        return json.load(r)
