"""Ray steps on a cluster that does not share this machine's filesystem: everything travels through a
staging URL (a local-directory fsspec URL here; s3/gcs/abfs the same way). The steps run in folders of
their own on the node, never at this machine's paths, and still pass data, keep their files, report
metrics while they run, run distributed across nodes, and produce outputs with the same fingerprints as
the same step run locally."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from distributed_scripts import RENDEZVOUS
from helpers import LIVE_METRIC, metrics_arrive_while_the_step_runs, steps_by_name, submit
from mlpipe_jupyter import (ComputeTarget, PipelineData, PythonScriptStep, PyTorchConfiguration, RayCompute,
                            ScriptRunConfig, UserError)
from ray_cluster import WORKER_RESOURCE

pytestmark = pytest.mark.xdist_group("ray")  # one cluster for all Ray tests (scripts/test.sh: --dist loadgroup)
RAY_WAIT = 300  # a guard against hangs only

SCRIPTS = {
    "prep.py": """
        import os, sys
        os.makedirs(sys.argv[1], exist_ok=True)
        open(os.path.join(sys.argv[1], "numbers.txt"), "w").write("1 2 3")
        os.makedirs(os.path.join(sys.argv[1], "empty"), exist_ok=True)
    """,
    "total.py": """
        import os, sys
        from azureml.core import Run
        inp, out = sys.argv[1], sys.argv[2]
        total = sum(int(x) for x in open(os.path.join(inp, "numbers.txt")).read().split())
        os.makedirs(out, exist_ok=True)
        open(os.path.join(out, "total.txt"), "w").write(str(total))
        os.makedirs(os.path.join(out, "nothing"), exist_ok=True)
        os.makedirs("outputs", exist_ok=True)
        open("outputs/report.txt", "w").write("total %d" % total)
        Run.get_context().log("total", total)
        print("cwd", os.getcwd())
        print("input", os.path.realpath(inp))
        print("saw empty folder", os.path.isdir(os.path.join(inp, "empty")))
    """,
    "live.py": LIVE_METRIC,
    "meet.py": RENDEZVOUS,
}


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


@pytest.fixture
def staging(tmp_path) -> Path:
    return tmp_path / "staging"


@pytest.fixture
def staged_target(workspace, ray_cluster, staging):
    config = RayCompute.provisioning_configuration(
        ray_cluster.address, staging_url=f"file://{staging}", python=sys.executable,
        step_resources={"total": {"resources": {WORKER_RESOURCE: 1}}})
    return ComputeTarget.create(workspace, "staged", config)


def step(src, script, name, target, **kwargs):
    return PythonScriptStep(script, name=name, source_directory=str(src), compute_target=target, **kwargs)


def test_a_staged_step_runs_in_a_folder_of_its_own_and_everything_comes_back(workspace, src, staging, staged_target):
    numbers, total = PipelineData("numbers"), PipelineData("total")
    prep = step(src, "prep.py", "prep", "local", outputs=[numbers], arguments=[numbers])
    on_ray = step(src, "total.py", "total", staged_target, inputs=[numbers], outputs=[total],
                  arguments=[numbers, total])
    run = submit(workspace, [prep, on_ray])
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)
    assert run.get_status() == "Completed", run.get_details().get("error")

    ray_step = steps_by_name(run)["total"]
    log = ray_step.get_log_text()
    node_root = Path(tempfile.gettempdir()) / "mlpipe-step-"
    cwd = next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("cwd "))
    seen_input = next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("input "))
    assert cwd.startswith(str(node_root)) and seen_input.startswith(str(node_root)), log  # not this machine's paths
    assert str(workspace.path) not in log
    assert "saw empty folder True" in log
    out = ray_step.get_output_data("total").path
    assert (out / "total.txt").read_text() == "6" and (out / "nothing").is_dir()
    assert ray_step.get_metrics() == {"total": 6}
    assert "outputs/report.txt" in ray_step.get_file_names()
    assert sorted(p.name for p in staging.iterdir()) == ["_package"]  # the step's staging folder went
    assert not list(Path(tempfile.gettempdir()).glob("mlpipe-step-*/wd/total.py"))  # nor its folder on the node

    local = step(src, "total.py", "total", "local", inputs=[numbers], outputs=[total], arguments=[numbers, total])
    here = submit(workspace, [prep, local], experiment="here")
    here.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)
    fingerprint = lambda s: {d["outputDetails"]["outputName"]: d["identifier"]["savedId"]  # noqa: E731
                             for d in s.get_details()["outputDatasets"]}
    assert fingerprint(steps_by_name(here)["total"]) == fingerprint(ray_step)  # the same data wherever it ran


def test_metrics_of_a_staged_step_reach_the_run_history_while_it_runs(workspace, src, tmp_path, staged_target):
    go = tmp_path / "go"
    metrics_arrive_while_the_step_runs(workspace, step(src, "live.py", "live", staged_target, arguments=[str(go)]),
                                       go, RAY_WAIT)


def test_a_staged_distributed_step_meets_across_two_node_jobs(workspace, src, staged_target):
    config = ScriptRunConfig(str(src), "meet.py", distributed_job_config=PyTorchConfiguration(process_count=2,
                                                                                              node_count=2))
    run = submit(workspace, [step(src, "meet.py", "train", staged_target, runconfig=config.run_config)])
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)
    assert run.get_status() == "Completed", run.get_details().get("error")
    logs = steps_by_name(run)["train"].get_details()["logFiles"]
    assert "rank 0 met ranks [1]" in open(logs["logs/std_log.txt"]).read()
    assert "rank 1 got welcome" in open(logs["user_logs/std_log_process_1.txt"]).read()


def test_a_staging_url_that_is_not_one_is_refused(ray_cluster):
    with pytest.raises(UserError, match="fsspec URL"):
        RayCompute.provisioning_configuration(ray_cluster.address, staging_url="/not/a/url")


def test_a_failing_staged_step_keeps_its_log_and_leaves_no_staging_folder(workspace, src, staging, staged_target):
    (src / "fail.py").write_text("print('about to fail')\nraise SystemExit('the data was bad')\n")
    run = submit(workspace, [step(src, "fail.py", "fail", staged_target)])
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)
    assert run.get_status() == "Failed"
    failed = steps_by_name(run)["fail"]
    assert "the data was bad" in failed.get_details()["error"]["message"]
    assert "about to fail" in failed.get_log_text()
    assert sorted(p.name for p in staging.iterdir()) == ["_package"]
