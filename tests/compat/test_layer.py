"""The azureml compatibility layer itself: its import paths, how it is enabled, how it steps aside for
the real SDK, and the local meaning of Azure's cloud-only calls."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlpipe_jupyter import compat
from mlpipe_jupyter.compat.exports import EXPORTS, resolve
from mlpipe_jupyter.errors import NotAvailableLocallyError

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def run_driver(folder, source, *args, env=None, timeout=180):
    """Run ``source`` as a driver script with `mlpipe python` in ``folder``; (returncode, stdout, stderr)."""
    folder = Path(folder)
    (folder / "driver.py").write_text(textwrap.dedent(source).lstrip())
    r = subprocess.run([MLPIPE, "python", "driver.py", *args], cwd=folder, capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})})
    return r.returncode, r.stdout, r.stderr


def test_every_module_of_the_table_is_a_file_and_every_name_resolves():
    root = Path(compat.IMPORT_ROOT)
    for module, names in EXPORTS.items():
        parts = module.split(".")
        assert (root.joinpath(*parts, "__init__.py").is_file() or root.joinpath(*parts[:-1], parts[-1] + ".py").is_file()), module
        for name in names:
            assert resolve(module, name) is not None, f"{module}.{name}"
    files = {p.relative_to(root).with_suffix("").as_posix().replace("/__init__", "").replace("/", ".")
             for p in root.rglob("*.py")}
    assert files == set(EXPORTS), "a module file without a table entry, or the other way round"


def test_the_names_samples_import_come_from_the_engine(tmp_path):
    code = """
        from azureml.core import Workspace, Experiment, Run, ScriptRunConfig, Environment, Dataset, Datastore, VERSION
        from azureml.core.runconfig import RunConfiguration
        from azureml.core.conda_dependencies import CondaDependencies
        from azureml.core.compute import ComputeTarget, AmlCompute
        from azureml.core.compute_target import ComputeTargetException
        from azureml.data.data_reference import DataReference
        from azureml.data import OutputFileDatasetConfig
        from azureml.pipeline.core import Pipeline, PipelineData, PipelineParameter, PipelineRun, StepRun
        from azureml.pipeline.core.graph import PipelineParameter as GraphParameter
        from azureml.pipeline.steps import PythonScriptStep
        from azureml.widgets import RunDetails
        from azureml.exceptions import UserErrorException, ActivityFailedException
        import mlpipe_jupyter as m
        assert Experiment is m.Experiment and Run is m.Run and Pipeline is m.Pipeline and PythonScriptStep is m.PythonScriptStep
        assert GraphParameter is PipelineParameter and issubclass(Workspace, m.Workspace)
        assert issubclass(m.UserError, UserErrorException) and issubclass(m.ActivityFailedError, ActivityFailedException)
        import azureml.core
        assert "Workspace" in dir(azureml.core) and VERSION.count(".") == 2
        print("ok")
    """
    rc, out, err = run_driver(tmp_path, code)
    assert rc == 0 and out.strip() == "ok", out + err


def test_a_step_script_written_for_azure_runs_unchanged_with_nothing_enabled(workspace, write_scripts, tmp_path):
    """The driver uses the plain API (no layer enabled in this process); the step imports azureml."""
    from mlpipe_jupyter import Experiment, PipelineParameter, Pipeline, PythonScriptStep

    src = write_scripts(tmp_path / "src", {"score.py": """
        import argparse
        from azureml.core import Run
        from azureml.core.run import Run as SameRun
        assert Run is SameRun
        parser = argparse.ArgumentParser()
        parser.add_argument("--factor", type=float)
        args = parser.parse_args()
        run = Run.get_context()
        run.log("score", 2 * args.factor)
    """})
    factor = PipelineParameter("factor", default_value=1.5)
    step = PythonScriptStep("score.py", name="score", source_directory=src, arguments=["--factor", factor])
    run = Experiment(workspace, "azure-step").submit(Pipeline(workspace, [step]))
    run.wait_for_completion()
    assert run.find_step_run("score")[0].get_metrics() == {"score": 3.0}


def _fake_real_sdk(folder: Path) -> Path:
    """A site folder holding an ``azureml`` package the way azureml-core installs it (a namespace
    package with ``core`` inside), whose Run says it is the real one."""
    core = folder / "azureml" / "core"
    core.mkdir(parents=True)
    (core / "__init__.py").write_text("REAL = True\nclass Run:\n    origin = 'real sdk'\n")
    return folder


def test_the_layer_steps_aside_for_an_installed_sdk_and_says_so_once(tmp_path):
    site = _fake_real_sdk(tmp_path / "site")
    code = """
        import azureml.core
        from azureml.core import Run
        print(Run.origin)
    """
    rc, out, err = run_driver(tmp_path, code, env={"PYTHONPATH": str(site)})
    assert rc == 0, out + err
    assert out.strip() == "real sdk"
    assert err.count("steps aside") == 1, err


def test_in_a_step_the_installed_sdk_wins_too(tmp_path):
    """The step's PYTHONPATH carries the layer last; an SDK installed in the step's environment is used."""
    site = _fake_real_sdk(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), compat.IMPORT_ROOT])}
    r = subprocess.run([sys.executable, "-c", "from azureml.core import Run; print(Run.origin)"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "real sdk", r.stderr
    assert "steps aside" in r.stderr


def test_mlpipe_python_passes_arguments_exit_codes_and_one_line_errors(tmp_path):
    rc, out, err = run_driver(tmp_path, "import sys; print(sys.argv[1:]); sys.exit(3)", "--alpha", "0.1")
    assert (rc, out.strip()) == (3, "['--alpha', '0.1']"), err
    rc, out, err = run_driver(tmp_path, """
        from azureml.train.automl import AutoMLConfig
        AutoMLConfig(task="classification")
    """)
    assert rc == 1 and "Traceback" not in err
    assert "AutoMLConfig" in err and "driver.py:2" in err and "cannot run it on this machine" in err


def test_workspace_by_subscription_opens_or_creates_the_local_workspace_of_that_name(tmp_path, monkeypatch):
    from mlpipe_jupyter.compat.cloud import Workspace

    monkeypatch.chdir(tmp_path)
    ws = Workspace(subscription_id="1234", resource_group="rg-ml", workspace_name="team-ws")
    assert (ws.name, ws.subscription_id, ws.resource_group, ws.path) == ("team-ws", "1234", "rg-ml", tmp_path)
    again = Workspace.get("team-ws", subscription_id="1234", resource_group="rg-ml")
    assert again.path == ws.path and again.location == "local"
    other = Workspace.get("other-ws")  # here already holds 'team-ws'
    assert other.name == "other-ws" and other.path == tmp_path / "other-ws"
    written = Workspace.from_config().write_config(path=tmp_path / "copy")
    assert json.loads(Path(written).read_text())["workspace_name"] == "team-ws"


def test_from_config_reads_azures_config_json(tmp_path, monkeypatch):
    from mlpipe_jupyter.compat.cloud import Workspace

    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "sub-9", "resource_group": "rg-9", "workspace_name": "from-azure"}))
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    ws = Workspace.from_config()
    assert (ws.name, ws.subscription_id, ws.path) == ("from-azure", "sub-9", tmp_path)
    assert sorted(ws.datastores) >= ["workspaceblobstore"]


def test_an_aml_cluster_runs_where_the_workspace_maps_its_name(workspace):
    from mlpipe_jupyter.compat.cloud import AmlCompute, ComputeTarget

    cfg = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=3)
    local = ComputeTarget.create(workspace, "cpu-cluster", cfg)
    assert local.type == "local" and local.config["max_concurrency"] == 3
    assert local.get_status() == "Succeeded" and local.get_status().serialize()["provisioningState"] == "Succeeded"
    assert [n["nodeId"] for n in local.list_nodes()] == ["local"]
    local.update(max_nodes=2, idle_seconds_before_scaledown=300)
    again = ComputeTarget(workspace, "cpu-cluster")
    assert again.config["max_concurrency"] == 2 and again.config["cloud"]["idle_seconds_before_scaledown"] == 300
    config = workspace.folder / "config.json"
    doc = json.loads(config.read_text())
    doc["compute_targets"] = {"gpu-cluster": {"kind": "docker", "network": False}}
    config.write_text(json.dumps(doc))
    from mlpipe_jupyter import Workspace

    reopened = Workspace(workspace.path)
    mapped = ComputeTarget.create(reopened, "gpu-cluster", cfg)
    assert mapped.type == "docker" and mapped.config["network"] is False


@pytest.mark.parametrize("module, name", [("azureml.train.automl", "AutoMLConfig"),
                                          ("azureml.pipeline.steps", "DatabricksStep"),
                                          ("azureml.core.compute", "DatabricksCompute"),
                                          ("azureml.train.hyperdrive", "HyperDriveConfig")])
def test_what_has_no_local_meaning_fails_in_one_sentence_naming_the_call(module, name):
    cls = resolve(module, name)
    with pytest.raises(NotAvailableLocallyError) as e:
        cls(task="classification")
    text = str(e.value)
    assert text.startswith(name) and "\n" not in text


def test_the_authentication_header_is_the_servers_token(monkeypatch):
    from mlpipe_jupyter.compat.cloud import InteractiveLoginAuthentication

    monkeypatch.setenv("JUPYTER_TOKEN", "s3cret")
    assert InteractiveLoginAuthentication().get_authentication_header() == {"Authorization": "token s3cret"}


def test_the_authentication_header_prefers_the_token_the_workspace_server_wrote(monkeypatch, workspace, tmp_path):
    from mlpipe_jupyter.compat.cloud import InteractiveLoginAuthentication

    monkeypatch.setenv("JUPYTER_TOKEN", "s3cret")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # the workspace is found above the current directory
    assert InteractiveLoginAuthentication().get_authentication_header() == {"Authorization": "token s3cret"}
    (workspace.folder / "server.token").write_text("from-server\n")
    assert InteractiveLoginAuthentication().get_authentication_header() == {"Authorization": "token from-server"}


def test_importing_a_step_scripts_azureml_names_stays_light():
    """`from azureml.core import Run` in a step loads the run context, not the runner, Docker or IPython."""
    code = ("import sys; from azureml.core import Run; Run.get_context();"
            "heavy = [m for m in ('docker', 'IPython', 'mlpipe_jupyter.running.runner', 'mlpipe_jupyter.planning.planner')"
            " if m in sys.modules]; print(heavy)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(compat.__file__).parents[2]), compat.IMPORT_ROOT])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
