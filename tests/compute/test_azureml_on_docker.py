"""An Azure ML driver and step script, unchanged, on Docker: the workspace maps the sample's cluster
name to the Docker engine, and the step imports azureml inside the container with nothing enabled."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import leftover_containers

from mlpipe_jupyter import Workspace

DRIVER = """
from azureml.core import Workspace, Experiment
from azureml.core.compute import ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException
from azureml.pipeline.core import Pipeline, PipelineData
from azureml.pipeline.steps import PythonScriptStep

ws = Workspace.from_config()
try:
    cluster = ComputeTarget(workspace=ws, name="cpu-cluster")
except ComputeTargetException:
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
    cluster = ComputeTarget.create(ws, "cpu-cluster", config)
    cluster.wait_for_completion(show_output=True)
data = PipelineData("data", datastore=ws.get_default_datastore())
write = PythonScriptStep(script_name="write.py", arguments=["--out", data], outputs=[data],
                         compute_target=cluster, source_directory="src")
read = PythonScriptStep(script_name="read.py", arguments=["--data", data], inputs=[data],
                        compute_target=cluster, source_directory="src")
run = Experiment(ws, "on-docker").submit(Pipeline(workspace=ws, steps=[read]))
run.wait_for_completion(show_output=True)
print("RUN", run.id, run.get_status())
"""

WRITE = """
import argparse, os
from azureml.core import Run
p = argparse.ArgumentParser(); p.add_argument("--out"); a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
open(os.path.join(a.out, "n.txt"), "w").write("21")
run = Run.get_context()
run.log("cwd", os.getcwd())
"""

READ = """
import argparse, os
from azureml.core.run import Run
p = argparse.ArgumentParser(); p.add_argument("--data"); a = p.parse_args()
Run.get_context().log("answer", 2 * int(open(os.path.join(a.data, "n.txt")).read()))
"""


def test_an_azure_driver_runs_its_cluster_steps_in_containers(tmp_path, docker_engine):
    ws = Workspace.create("azure-docker", path=tmp_path)
    config = ws.folder / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "compute_targets": {"cpu-cluster": "docker"}}))
    (tmp_path / "src").mkdir()
    for name, source in {"write.py": WRITE, "read.py": READ}.items():
        (tmp_path / "src" / name).write_text(textwrap.dedent(source))
    (tmp_path / "driver.py").write_text(DRIVER)
    r = subprocess.run([str(Path(sys.executable).with_name("mlpipe")), "python", "driver.py"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    run_id = r.stdout.split("RUN ")[1].split()[0]
    from mlpipe_jupyter import Run

    run = Run.get(Workspace(tmp_path), run_id)
    steps = {s.name: s for s in run.get_steps()}
    assert {n: s.get_status() for n, s in steps.items()} == {"write.py": "Completed", "read.py": "Completed"}
    assert steps["write.py"].get_metrics()["cwd"] == "/mlpipe/wd"  # it ran in the container
    assert steps["read.py"].get_metrics()["answer"] == 42
    assert leftover_containers(docker_engine, run) == []
