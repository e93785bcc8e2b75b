"""A step's secrets on the Ray cluster: the step gets them, its log shows them masked, and the job's
record in the Jobs API (what the dashboard and job list show) holds none of them."""
from __future__ import annotations

import json
import urllib.request

import pytest

from helpers import USE_SECRETS, sha, steps_by_name, submit
from mlpipe_jupyter import (ComputeTarget, Environment, PipelineParameter, PythonScriptStep, RayCompute,
                            RunConfiguration)

pytestmark = pytest.mark.xdist_group("ray")  # one cluster for all Ray tests (scripts/test.sh: --dist loadgroup)

RAY_WAIT = 300  # a guard against hangs only
TOKEN, PASSWORD, KEY = "tok-7c1e9b20aa", "pw-4d82f6c1e0", "key-93b0a5e7d2"



def test_secrets_reach_a_ray_step_but_not_the_jobs_api(workspace, write_scripts, tmp_path, ray_cluster):
    target = ComputeTarget.create(workspace, "cluster", RayCompute.provisioning_configuration(ray_cluster.address))
    src = write_scripts(tmp_path / "src", {"use.py": USE_SECRETS})
    env = Environment("with-token")
    env.python.user_managed_dependencies = True
    env.environment_variables = {"API_TOKEN": TOKEN}
    config = RunConfiguration()
    config.environment = env
    config.environment_variables = {"DB_PASSWORD": PASSWORD, "MODE": "fast"}
    step = PythonScriptStep("use.py", name="use", source_directory=str(src), runconfig=config, compute_target=target,
                            params={"api_key": PipelineParameter("api_key", default_value=KEY)})
    run = submit(workspace, [step], "ray")
    run.wait_for_completion(raise_on_error=False, timeout_seconds=RAY_WAIT)

    assert run.get_status() == "Completed", run.get_details().get("error")
    use = steps_by_name(run)["use"]
    log = use.get_log_text()
    for name, value in (("API_TOKEN", TOKEN), ("DB_PASSWORD", PASSWORD), ("AML_PARAMETER_api_key", KEY)):
        assert f"{name} sha256 {sha(value)} value ***" in log  # the step got it; its log shows a mask
    assert "mode fast" in log

    with urllib.request.urlopen(f"{ray_cluster.address}/api/jobs/", timeout=10) as r:
        (listed,) = [j for j in json.load(r) if (j.get("metadata") or {}).get("mlpipe.run_id") == use.id]
    with urllib.request.urlopen(f"{ray_cluster.address}/api/jobs/{listed['submission_id']}", timeout=10) as r:
        record = r.read().decode()
    assert json.loads(record)["runtime_env"]["env_vars"]["MODE"] == "fast"  # other variables still travel there
    for value in (TOKEN, PASSWORD, KEY):
        assert value not in record and value not in json.dumps(listed)
    assert not list(workspace.folder.rglob("secret-env-*"))  # the file that carried them is gone
