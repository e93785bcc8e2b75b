"""Exact pins written for an older Python (msgpack==1.0.0 has wheels for CPython 3.6 to 3.8 only) move to
the nearest version with a wheel for the interpreter in use; real builds against the package index."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from packaging.version import Version

from mlpipe_jupyter import CondaDependencies, Environment, PythonScriptStep, RunConfiguration
from mlpipe_jupyter.compute import envbuild
from tests.helpers import run_pipeline, steps_by_name

OLD_PIN = "msgpack==1.0.0"
HERE = f"Python {sys.version_info[0]}.{sys.version_info[1]}"
SHOW = """
    import msgpack
    print("msgpack", ".".join(map(str, msgpack.version)))
"""


def path_with_uv(monkeypatch, uv: bool):
    """PATH with the uv installed beside this interpreter first, or with no uv at all."""
    keep = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "uv").exists()]
    folder = Path(sys.executable).parent
    assert (folder / "uv").exists(), "uv is part of the test dependencies"
    monkeypatch.setenv("PATH", os.pathsep.join(([str(folder)] if uv else []) + keep))
    if not uv:  # a machine without uv: not on PATH, nor beside the interpreter
        from mlpipe_jupyter.compute import envbuild

        monkeypatch.setattr(envbuild, "find_uv", lambda: None)


def run_step(workspace, write_scripts, tmp_path, env):
    rc = RunConfiguration()
    rc.environment = env
    src = write_scripts(tmp_path / "src", {"show.py": SHOW})
    run = run_pipeline(workspace, [PythonScriptStep("show.py", name="show", source_directory=str(src), runconfig=rc,
                                                    allow_reuse=False)])
    return steps_by_name(run)["show"]


def test_an_old_pin_takes_the_nearest_version_with_a_wheel(workspace, write_scripts, tmp_path, monkeypatch):
    path_with_uv(monkeypatch, uv=True)
    kept = "six==1.17.0"  # a wheel for any Python 3: installed as written
    env = Environment("old-pins")  # no Python named: written for Azure's default Python
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[OLD_PIN, kept])
    before = env.content_hash
    step = run_step(workspace, write_scripts, tmp_path, env)
    assert step.get_status() == "Completed", step.get_details().get("error")

    build = (envbuild.venv_dir(workspace, env) / "build.log").read_text()
    replaced = [ln for ln in build.splitlines() if "has no build for" in ln]
    assert len(replaced) == 1 and replaced[0].startswith(f"mlpipe: {OLD_PIN} has no build for {HERE}; using "), build
    used = replaced[0].split("; using ")[1].split(",")[0]
    assert Version(used) > Version("1.0.0")
    record = json.loads((envbuild.venv_dir(workspace, env) / envbuild.BUILD_RECORD).read_text())
    assert f"msgpack=={used}" in record["pip_freeze"] and kept in record["pip_freeze"]
    assert f"msgpack {used}" in (workspace._store.run_dir(step.id) / "logs" / "std_log.txt").read_text()
    # the definition is what was written: same hash, same pins, and the build is reused
    assert env.content_hash == before == Environment.from_dict(env.to_dict()).content_hash
    assert OLD_PIN in record["environment"]["python"]["conda_dependencies"]["pip_packages"]
    again = run_step(workspace, write_scripts, tmp_path, Environment.from_dict(env.to_dict()))
    assert workspace._store.get_run(again.id)["details"]["environment_build"]["built"] is False


def test_pins_for_the_python_in_use_are_kept(workspace, write_scripts, tmp_path, monkeypatch):
    """An environment naming the Python in use meant its pins for it: msgpack==1.0.0 is built from its
    sdist, as written, and nothing is replaced."""
    path_with_uv(monkeypatch, uv=True)
    env = Environment("pins-for-this-python")
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=[OLD_PIN], python_version=f"{sys.version_info[0]}.{sys.version_info[1]}")
    step = run_step(workspace, write_scripts, tmp_path, env)
    assert step.get_status() == "Completed", step.get_details().get("error")
    log = (workspace._store.run_dir(step.id) / "logs" / "std_log.txt").read_text()
    assert "has no build for" not in log and "with uv" in log and "msgpack 1.0.0" in log


def test_without_uv_a_failed_build_says_what_to_do(workspace, write_scripts, tmp_path, monkeypatch):
    path_with_uv(monkeypatch, uv=False)
    monkeypatch.setenv("PIP_ONLY_BINARY", ":all:")  # pip fails on the pin at once instead of building its sdist
    env = Environment("old-pins-no-uv")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[OLD_PIN])
    step = run_step(workspace, write_scripts, tmp_path, env)
    assert step.get_status() == "Failed"
    error = step.get_details()["error"]["message"]
    assert f"exact pin ({OLD_PIN})" in error and "Put uv on PATH" in error and HERE in error, error
