"""Environments written for Azure ML run here: packages installed by default, conda specs through pip,
azureml-* packages and old Python pins handled, Azure's curated names, and the Docker settings."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mlpipe_jupyter import (DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE, CondaDependencies, ContainerRegistry,
                            DockerConfiguration, Environment, Experiment, PythonScriptStep, RunConfiguration,
                            ScriptRunConfig, UserError)
from mlpipe_jupyter.compute import envbuild
from mlpipe_jupyter.model.packages import conda_to_pip, install_plan, resolve_python
from tests.helpers import WAIT_SECONDS, run_pipeline, steps_by_name

SHOW = """
    import sys
    from mlpipe_jupyter import Run
    Run.get_context().log("executable", sys.executable)
    try:
        import six
        print("six", six.__version__)
    except ImportError:
        print("no six")
"""


FIND_UV = envbuild.find_uv


def without_uv_or_conda(monkeypatch):
    """PATH without uv, conda, mamba or micromamba, whatever this machine has."""
    tools = ("uv", "conda", "mamba", "micromamba")
    keep = [d for d in os.environ["PATH"].split(os.pathsep) if not any((Path(d) / t).exists() for t in tools)]
    monkeypatch.setenv("PATH", os.pathsep.join(keep))
    monkeypatch.setattr(envbuild, "find_uv", lambda: None)  # nor the uv beside this interpreter


def one_step(workspace, src, env, name="show"):
    rc = RunConfiguration()
    rc.environment = env
    run = run_pipeline(workspace, [PythonScriptStep("show.py", name=name, source_directory=str(src), runconfig=rc,
                                                    allow_reuse=False)])
    step = steps_by_name(run)[name]
    assert step.get_status() == "Completed", step.get_details().get("error")
    return step, (workspace._store.run_dir(step.id) / "logs" / "std_log.txt").read_text()


def test_new_environments_install_their_packages_and_an_empty_one_builds_nothing(workspace, write_scripts, tmp_path):
    assert Environment("x").python.user_managed_dependencies is False
    assert RunConfiguration().environment.python.user_managed_dependencies is True
    src = write_scripts(tmp_path / "src", {"show.py": SHOW})
    # Azure's usual spec: only azureml packages and an old Python; nothing is left to install here
    env = Environment("azure-style")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["azureml-defaults", "azureml-dataprep[pandas,fuse]>=1.1"], python_version="3.6.2")
    if resolve_python("3.6.2")[0] != (getattr(sys, "_base_executable", None) or sys.executable):
        env.python.conda_dependencies.set_python_version(f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert env.needs_build is False
    step, log = one_step(workspace, src, env)
    assert step.get_metrics()["executable"] == sys.executable and "Building" not in log
    assert "environment_build" not in workspace._store.get_run(step.id)["details"]
    assert not (workspace.folder / "environments").exists()
    again = Environment.from_dict(env.to_dict())
    assert again.content_hash == env.content_hash and again.needs_build is False


def test_conda_packages_go_through_pip_without_conda(workspace, write_scripts, tmp_path, monkeypatch):
    without_uv_or_conda(monkeypatch)
    src = write_scripts(tmp_path / "src", {"show.py": SHOW})
    env = Environment("conda-spec")
    env.python.conda_dependencies = CondaDependencies.create(
        conda_packages=["six=1.16", "cudatoolkit=11.0"], pip_packages=["azureml-core"], python_version="3.6.2")
    assert env.needs_build is True
    step, log = one_step(workspace, src, env)
    assert "six 1.16." in log and step.get_metrics()["executable"] != sys.executable
    build = (envbuild.venv_dir(workspace, env) / "build.log").read_text()
    assert "with venv and pip" in build
    assert "Not installing azureml-core" in build
    assert "installed with pip as six==1.16.*" in build
    assert "Skipping cudatoolkit=11.0" in build
    if resolve_python("3.6.2")[1]:  # no Python 3.6 here: the nearest one, said so
        assert "Python 3.6.2 is not on this machine" in build


def test_uv_builds_the_virtualenv_when_it_is_on_path(workspace, write_scripts, tmp_path, monkeypatch):
    uv_folder = Path(sys.executable).parent  # the test extra installs uv beside this interpreter
    assert (uv_folder / "uv").exists(), "uv is part of the test dependencies"
    without_uv_or_conda(monkeypatch)
    monkeypatch.setattr(envbuild, "find_uv", FIND_UV)
    monkeypatch.setenv("PATH", f"{uv_folder}{os.pathsep}{os.environ['PATH']}")
    src = write_scripts(tmp_path / "src", {"show.py": SHOW})
    env = Environment("with-uv")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
    step, log = one_step(workspace, src, env)
    assert "six 1." in log and "with uv" in log
    record = workspace._store.get_run(step.id)["details"]["environment_build"]
    assert record["built"] is True and any(p.startswith("six==") for p in record["pip_freeze"])
    assert (Path(record["artifact"]).parent / "pip").exists()  # seeded: scripts that call pip still can


def test_conda_specs_as_pip_requirements():
    assert [conda_to_pip(s) for s in ["numpy", "numpy=1.21", "numpy=1.21.2=py38_0", "numpy==1.21.2",
                                      "conda-forge::pytorch=1.10", "py-xgboost>=1.5", "scikit-learn 0.24.*",
                                      "tensorflow-gpu=2.3", "pandas >=1.3"]] == [
        "numpy", "numpy==1.21.*", "numpy==1.21.2", "numpy==1.21.2", "torch==1.10.*", "xgboost>=1.5",
        "scikit-learn==0.24.*", "tensorflow==2.3.*", "pandas>=1.3"]
    deps = CondaDependencies.create(conda_packages=["python=3.8", "pip", "mkl", "openmpi", "r-base"],
                                    pip_packages=["azureml-sdk", "six"])
    plan = install_plan(deps, with_conda=False)
    assert (plan.pip, plan.impossible) == (["six"], ["openmpi", "r-base"])
    assert install_plan(deps, with_conda=True).conda == ["mkl", "openmpi", "r-base"]


def test_an_unavailable_python_takes_the_nearest_that_starts(tmp_path, monkeypatch):
    here = getattr(sys, "_base_executable", None) or sys.executable
    major, minor = sys.version_info[:2]
    shim = tmp_path / f"python{major}.{minor + 7}"  # on PATH, but does not start (a pyenv shim, say)
    shim.write_text("#!/bin/sh\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    python, notice = resolve_python(f"{major}.{minor + 7}.1")
    assert python == here and f"Python {major}.{minor + 7}.1 is not on this machine" in notice
    (tmp_path / f"python{major}.{minor + 9}").symlink_to(sys.executable)
    python, notice = resolve_python(f"{major}.{minor + 9}")
    assert python == str(tmp_path / f"python{major}.{minor + 9}") and notice is None


def test_azure_curated_names(workspace):
    minimal = Environment.get(workspace, "AzureML-Minimal")
    assert minimal.name == "AzureML-Minimal" and minimal.python.conda_dependencies.pip_packages == []
    for name in ("AzureML-sklearn-0.24-ubuntu18.04-py37-cpu", "AzureML-Tutorial",
                 "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu"):
        assert any(p.startswith("scikit-learn==") for p in
                   Environment.get(workspace, name).python.conda_dependencies.pip_packages), name
    assert "torch" in str(Environment.get(workspace, "AzureML-PyTorch-1.6-GPU").python.conda_dependencies.pip_packages)
    listed = Environment.list(workspace)
    assert {"AzureML-Minimal", "AzureML-Tutorial", "MLPipe-Minimal"} <= set(listed)
    with pytest.raises(UserError, match="'AzureML-Nope-1.0' is not one of .*AzureML-Minimal"):
        Environment.get(workspace, "AzureML-Nope-1.0")
    with pytest.raises(UserError, match="reserved"):
        Environment("AzureML-Mine").register(workspace)


def test_docker_and_spark_sections_keep_azure_settings(workspace):
    env = Environment("sections")
    plain_hash = env.content_hash
    assert Environment.from_dict({"name": "sections", "python": env.python.to_dict(),
                                  "docker": {"enabled": False, "base_image": None, "base_dockerfile": None},
                                  "environment_variables": {}}).content_hash == plain_hash  # old definitions
    env.docker.base_image = DEFAULT_CPU_IMAGE
    env.docker.shm_size = "1g"
    env.docker.arguments = ["--ipc=host"]
    env.docker.base_image_registry = ContainerRegistry("myacr.azurecr.io", "me", "pa55-word")
    env.spark.packages = [{"group": "com.microsoft.ml.spark", "artifact": "mmlspark_2.11", "version": "0.15"}]
    stored = env.to_dict()
    assert stored["docker"]["base_image_registry"]["password"] == "***" and "pa55-word" not in str(stored)
    env.register(workspace)
    assert "pa55-word" not in str(workspace._store.environment_definition("sections", 1))
    back = Environment.get(workspace, "sections")
    assert (back.docker.shm_size, back.docker.arguments, back.spark.packages, back.content_hash) == \
        ("1g", ["--ipc=host"], env.spark.packages, env.content_hash)
    assert back.docker.base_image_registry.password == "pa55-word"  # this process set it
    assert set(workspace.environments) == {"sections"} and workspace.environments["sections"].version == "1"
    assert DEFAULT_GPU_IMAGE.startswith("mcr.microsoft.com/azureml/")
    assert envbuild.base_image_of(env) == envbuild.DEFAULT_BASE_IMAGE  # nothing can be pulled here


def test_script_run_config_command_and_docker_configuration(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"train.py": "import sys\nprint('args', sys.argv[1:])\n"})
    config = ScriptRunConfig(str(src), command=["python", "train.py", "--epochs", 3], compute_target="local")
    run = Experiment(workspace, "cmd").submit(config)
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    assert "args ['--epochs', '3']" in run.get_log_text()
    assert ScriptRunConfig(str(src), command="python -u train.py --x 1").arguments == ["--x", "1"]
    with pytest.raises(UserError, match="'python <script>.py"):
        ScriptRunConfig(str(src), command="bash run.sh && echo done")
    with pytest.raises(UserError, match="distributed_job_config must be"):
        ScriptRunConfig(str(src), "train.py", distributed_job_config=object())
    rc = RunConfiguration()
    rc.target = "cpu-cluster"
    assert ScriptRunConfig(str(src), "train.py", run_config=rc, compute_target=None).run_config.target == "cpu-cluster"
    env = Environment("mine")
    docker = ScriptRunConfig(str(src), "train.py", environment=env,
                             docker_runtime_config=DockerConfiguration(use_docker=True, shm_size="256m"))
    assert (docker.compute_target, docker.run_config.target) == ("docker", "docker")
    assert docker.environment.docker.shm_size == "256m" and env.docker.shm_size is None


@pytest.mark.usefixtures("docker_engine")
def test_docker_honours_shm_size_on_azures_default_image(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"shm.py": """
        import os
        s = os.statvfs("/dev/shm")
        print("shm MiB", s.f_blocks * s.f_frsize // 2**20)
    """})
    env = Environment("azure-image")
    env.docker.enabled = True
    env.docker.base_image = DEFAULT_CPU_IMAGE
    config = ScriptRunConfig(str(src), "shm.py", environment=env,
                             docker_runtime_config=DockerConfiguration(use_docker=True, shm_size="96m"))
    run = Experiment(workspace, "shm").submit(config)
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS, raise_on_error=False)
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert "shm MiB 96" in run.get_log_text()


def test_dropped_azureml_packages_keep_the_pandas_1_they_would_have_brought(workspace, write_scripts, tmp_path):
    """azureml-sdk[automl] is not installed, but SDK v1 code relies on the pandas<2 it pulls in
    (the NYC taxi sample calls DataFrame.append); another spec without it gets today's pandas."""
    plan = install_plan(CondaDependencies.create(pip_packages=["azureml-sdk[automl]", "pandas"]), with_conda=False)
    assert plan.pip == ["pandas"] and plan.constraints == ["pandas<2", "numpy<2"]
    assert install_plan(CondaDependencies.create(pip_packages=["azureml-defaults", "pandas"]),
                        with_conda=False).constraints == []
    src = write_scripts(tmp_path / "src", {"show.py": "import pandas\nprint('pandas', pandas.__version__)\n"})
    rc = RunConfiguration()  # edited in place, as the samples do: it is recorded, not taken for the default
    rc.environment.python.user_managed_dependencies = False
    rc.environment.python.conda_dependencies = CondaDependencies.create(
        conda_packages=["pandas"], pip_packages=["azureml-sdk[automl]"])
    run = run_pipeline(workspace, [PythonScriptStep("show.py", name="show", source_directory=str(src), runconfig=rc)])
    step = steps_by_name(run)["show"]
    assert step.get_status() == "Completed", step.get_details().get("error")
    log = (workspace._store.run_dir(step.id) / "logs" / "std_log.txt").read_text()
    assert "Keeping pandas<2 and numpy<2" in log
    version = log.split("pandas ", 1)[1].split()[0]
    assert int(version.split(".")[0]) == 1, log
