"""Environments without Docker: hashing, the registry, curated names, files in, and the local virtualenv."""
from __future__ import annotations

import pytest

from mlpipe_jupyter import (ComputeTarget, CondaDependencies, DockerCompute, Environment, Experiment, LocalCompute,
                            PythonScriptStep, RunConfiguration, ScriptRunConfig, UserError)
from mlpipe_jupyter.compute.envbuild import cached_venv
from tests.helpers import run_pipeline, steps_by_name


def pip_env(name, *packages):
    env = Environment(name)
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(packages))
    return env


def test_hash_follows_the_definition_not_the_name():
    a, b = pip_env("a", "six"), pip_env("b", "six")
    assert a.content_hash == b.content_hash
    b.python.conda_dependencies.add_pip_package("tomli")
    assert a.content_hash != b.content_hash
    c = pip_env("c", "six")
    c.environment_variables["X"] = "1"
    assert c.content_hash != a.content_hash
    d = pip_env("d", "six")
    d.docker.base_image = "other:latest"
    assert d.content_hash != a.content_hash
    assert Environment.from_dict(a.to_dict()).content_hash == a.content_hash


def test_register_makes_a_version_only_when_the_definition_changed(workspace):
    env = pip_env("train-env", "six")
    assert env.register(workspace).version == "1"
    assert pip_env("train-env", "six").register(workspace).version == "1"
    changed = pip_env("train-env", "six", "tomli").register(workspace)
    assert changed.version == "2"
    assert Environment.get(workspace, "train-env").python.conda_dependencies.pip_packages == ["six", "tomli"]
    assert Environment.get(workspace, "train-env", version="1").python.conda_dependencies.pip_packages == ["six"]
    listed = Environment.list(workspace)
    assert listed["train-env"].version == "2"
    with pytest.raises(UserError, match="No environment 'nope'"):
        Environment.get(workspace, "nope")


def test_curated_environments_ship_and_their_prefix_is_reserved(workspace):
    listed = Environment.list(workspace)
    assert {"MLPipe-Minimal", "MLPipe-DataScience"} <= set(listed)
    assert any(p.startswith("pandas") for p in
               Environment.get(workspace, "MLPipe-DataScience").python.conda_dependencies.pip_packages)
    with pytest.raises(UserError, match="reserved"):
        pip_env("MLPipe-Mine", "six").register(workspace)


def test_environments_from_requirement_and_conda_files(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# tools\nsix==1.17.0\n\ntomli  # toml reader\n")
    env = Environment.from_pip_requirements("req", req)
    assert env.python.conda_dependencies.pip_packages == ["six==1.17.0", "tomli"]
    assert env.python.user_managed_dependencies is False
    spec = tmp_path / "env.yml"
    spec.write_text("channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n  - pip\n"
                    "  - pip:\n    - six\n")
    env = Environment.from_conda_specification("conda", spec)
    deps = env.python.conda_dependencies
    assert (deps.python_version, deps.conda_packages, deps.pip_packages, deps.channels) == \
        ("3.11", ["numpy"], ["six"], ["conda-forge"])
    with pytest.raises(UserError, match="missing.txt"):
        Environment.from_pip_requirements("x", tmp_path / "missing.txt")
    with pytest.raises(UserError, match="No conda environment named"):
        Environment.from_existing_conda_environment("x", "no-such-conda-env-here")


def test_compute_targets_by_config(workspace):
    assert {"local", "docker"} <= set(workspace.compute_targets)
    target = ComputeTarget.create(workspace, "box", DockerCompute.provisioning_configuration(
        image="mlpipe/base:bookworm", cpu_count=1, memory_gb=1, mounts=["/tmp:/scratch:ro"], network=True))
    assert (target.type, target.config["cpu_count"], target.config["network"]) == ("docker", 1, True)
    ComputeTarget.attach(workspace, "cpu", LocalCompute.provisioning_configuration())
    assert ComputeTarget(workspace, "cpu").type == "local"
    with pytest.raises(UserError, match="built-in"):
        ComputeTarget.create(workspace, "docker", LocalCompute.provisioning_configuration())
    with pytest.raises(UserError, match="HOST_PATH"):
        DockerCompute.provisioning_configuration(mounts=["relative:/x"])


def test_run_records_the_environment_it_used(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"hi.py": "print('hi')\n"})
    env = Environment("plain")
    env.environment_variables["GREETING"] = "hello"
    env.register(workspace)
    run = Experiment(workspace, "envs").submit(ScriptRunConfig(str(src), "hi.py", environment=env))
    run.wait_for_completion(timeout_seconds=60)
    used = run.get_environment()
    assert (used.name, used.version, used.content_hash) == ("plain", "1", env.content_hash)


def test_local_step_runs_in_a_cached_virtualenv_built_once(workspace, write_scripts, tmp_path):
    """The virtualenv has the environment's packages and not the host's; a second run builds nothing."""
    src = write_scripts(tmp_path / "src", {"check.py": """
        import importlib.util, sys
        from mlpipe_jupyter import Run
        import six
        print("six", six.__version__, "yaml visible:", importlib.util.find_spec("yaml") is not None)
        Run.get_context().log("prefix", sys.prefix)
    """})
    env = pip_env("six-local", "six")
    rc = RunConfiguration()
    rc.environment = env
    step = PythonScriptStep("check.py", name="check", source_directory=str(src), runconfig=rc, allow_reuse=False)
    first = steps_by_name(run_pipeline(workspace, [step]))["check"]
    assert first.get_status() == "Completed", first.get_details().get("error")
    record = workspace._store.get_run(first.id)["details"]["environment_build"]
    assert record["built"] is True and any(p.startswith("six==") for p in record["pip_freeze"])
    done = cached_venv(workspace, env)
    assert done is not None and first.get_metrics()["prefix"] in done.python.replace("/bin/python", "")
    second = steps_by_name(run_pipeline(workspace, [step]))["check"]
    assert second.get_status() == "Completed"
    assert workspace._store.get_run(second.id)["details"]["environment_build"]["built"] is False
    assert env.build_local(workspace, show_output=False).built is False
    text = (workspace._store.run_dir(second.id) / "logs" / "std_log.txt").read_text()
    assert "yaml visible: False" in text and "Building environment" not in text


def test_bad_local_environment_fails_its_step_with_a_clear_error(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"s.py": "print('never')\n"})
    rc = RunConfiguration()
    rc.environment = pip_env("broken", "mlpipe-no-such-package-zz9")
    run = run_pipeline(workspace, [PythonScriptStep("s.py", name="s", source_directory=str(src), runconfig=rc)])
    step = steps_by_name(run)["s"]
    assert step.get_status() == "Failed"
    error = step.get_details()["error"]["message"]
    assert "'broken'" in error and "'s'" in error and "mlpipe-no-such-package-zz9" in error
    assert cached_venv(workspace, rc.environment) is None


def test_conda_programs_without_conda_are_refused_before_running(workspace, write_scripts, tmp_path, monkeypatch):
    """Without conda, conda packages go through pip; one that PyPI does not have stops the run up front."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no conda, mamba or micromamba
    src = write_scripts(tmp_path / "src", {"s.py": "print('never')\n"})
    env = Environment("needs-conda")
    env.python.conda_dependencies = CondaDependencies.create(conda_packages=["six", "openmpi=4.1"])
    rc = RunConfiguration()
    rc.environment = env
    with pytest.raises(UserError, match="needs-conda.*pip cannot install .openmpi=4.1"):
        Experiment(workspace, "e").submit(ScriptRunConfig(str(src), "s.py", run_config=rc))
