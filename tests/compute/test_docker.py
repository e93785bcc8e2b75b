"""Docker compute against a real engine: builds reused by hash, data between targets, logs and metrics
from inside the container, and nothing left behind however a step ends."""
from __future__ import annotations

import time

import pytest

from mlpipe_jupyter import (ComputeTarget, CondaDependencies, DockerCompute, Environment, Experiment, PipelineData,
                            PythonScriptStep, RunConfiguration, ScriptRunConfig, UserError)
from helpers import (dangling_images, labelled_containers, leftover_containers, run_pipeline, steps_by_name, submit,
                     wait_until)

pytestmark = pytest.mark.usefixtures("docker_engine")


def pip_env(name, *packages, docker=True):
    env = Environment(name)
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=list(packages))
    env.docker.enabled = docker
    return env


def runconfig(env=None, timeout=None):
    rc = RunConfiguration()
    if env is not None:
        rc.environment = env
    rc.max_run_duration_seconds = timeout
    return rc


def build_record(ws, step):
    return ws._store.get_run(step.id)["details"]["environment_build"]


def std_log(ws, step) -> str:
    return (ws._store.run_dir(step.id) / "logs" / "std_log.txt").read_text()


def test_environment_image_is_built_once_and_reused(workspace, write_scripts, tmp_path, docker_engine):
    env = pip_env("tomli-env", "tomli")
    first = env.build(workspace, show_output=False)
    assert first.artifact == f"mlpipe/env:{env.content_hash}"
    assert any(p.startswith("tomli==") for p in first.pip_freeze)
    src = write_scripts(tmp_path / "src", {"s.py": "import tomli; print('tomli', tomli.loads('a = 1'))\n"})
    since = int(time.time()) + 1  # engine events count whole seconds: start after the first build's last one
    time.sleep(since - time.time())
    run = run_pipeline(workspace, [PythonScriptStep("s.py", name="s", source_directory=str(src),
                                                    compute_target="docker", runconfig=runconfig(env))])
    step = steps_by_name(run)["s"]
    assert step.get_status() == "Completed", step.get_details().get("error")
    record = build_record(workspace, step)
    assert record["built"] is False and record["image_id"] == docker_engine.images.get(first.artifact).id
    builds = docker_engine.events(since=since, until=int(time.time()) + 1, decode=True,
                                  filters={"label": "mlpipe.managed=build", "type": "container"})
    assert [e for e in builds if e["Actor"]["Attributes"].get("mlpipe.env_hash") == env.content_hash] == []
    assert "tomli {'a': 1}" in std_log(workspace, step)
    assert env.build(workspace, show_output=False).built is False


def test_three_targets_pass_data_and_log_from_the_container(workspace, write_scripts, tmp_path, docker_engine):
    """Docker (built image with six) -> local cached venv (tomli) -> user-managed, one data chain."""
    src = write_scripts(tmp_path / "src", {
        "make.py": """
            import os, sys, six
            from mlpipe_jupyter import Run
            run = Run.get_context()
            out = sys.argv[sys.argv.index("--out") + 1]
            print("in container as", os.getuid(), "cwd", os.getcwd(), "six", six.__version__)
            for i in range(3):
                run.log("loss", 1.0 / (i + 1))
            run.tag("where", "docker")
            open(os.path.join(out, "n.txt"), "w").write("21")
            open("outputs/report.txt", "w").write("made")
        """,
        "double.py": """
            import os, sys, tomli
            data, out = sys.argv[2], sys.argv[4]
            n = int(open(os.path.join(data, "n.txt")).read())
            open(os.path.join(out, "n.txt"), "w").write(str(2 * n))
        """,
        "report.py": """
            import os, sys
            from mlpipe_jupyter import Run
            n = int(open(os.path.join(sys.argv[2], "n.txt")).read())
            Run.get_context().log("answer", n)
            print("answer", n)
        """,
    })
    made, doubled = PipelineData("made"), PipelineData("doubled")
    make = PythonScriptStep("make.py", name="make", source_directory=str(src), arguments=["--out", made],
                            outputs=[made], compute_target="docker", runconfig=runconfig(pip_env("six-docker", "six")))
    double = PythonScriptStep("double.py", name="double", source_directory=str(src),
                              arguments=["--in", made, "--out", doubled], inputs=[made], outputs=[doubled],
                              compute_target="local",
                              runconfig=runconfig(pip_env("tomli-local", "tomli", docker=False)))
    report = PythonScriptStep("report.py", name="report", source_directory=str(src), arguments=["--in", doubled],
                              inputs=[doubled])
    run = run_pipeline(workspace, [make, double, report])
    steps = steps_by_name(run)
    assert {n: s.get_status() for n, s in steps.items()} == {"make": "Completed", "double": "Completed",
                                                            "report": "Completed"}, run.get_details().get("error")
    assert steps["report"].get_metrics()["answer"] == 42
    assert steps["make"].get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]
    assert steps["make"].get_tags()["where"] == "docker"
    assert "in container as" in std_log(workspace, steps["make"])
    assert "cwd /mlpipe/wd" in std_log(workspace, steps["make"])
    assert (workspace._store.run_dir(steps["make"].id) / "outputs" / "report.txt").read_text() == "made"
    assert build_record(workspace, steps["make"])["artifact"].startswith("mlpipe/env:")
    assert build_record(workspace, steps["double"])["kind"] == "venv"
    assert steps["make"].get_environment().name == "six-docker"
    assert leftover_containers(docker_engine, run) == []
    assert dangling_images(docker_engine) == []


def test_outputs_belong_to_the_host_user_even_when_the_image_says_otherwise(workspace, write_scripts, tmp_path,
                                                                             docker_engine):
    import os

    from mlpipe_jupyter.compute.docker import step_user
    from mlpipe_jupyter.compute.envbuild import DEFAULT_BASE_IMAGE

    env = Environment("nobody-image")
    env.docker.enabled = True
    env.docker.base_dockerfile = f"FROM {DEFAULT_BASE_IMAGE}\nUSER 65534:65534\n"
    src = write_scripts(tmp_path / "src", {"w.py": """
        import os, sys
        open(os.path.join(sys.argv[1], "file.txt"), "w").write(str(os.getuid()))
    """})
    out = PipelineData("out")
    run = run_pipeline(workspace, [PythonScriptStep("w.py", name="w", source_directory=str(src), arguments=[out],
                                                    outputs=[out], compute_target="docker", runconfig=runconfig(env))])
    step = steps_by_name(run)["w"]
    assert step.get_status() == "Completed", step.get_details().get("error")
    folder = workspace._store.data_path(workspace._store.get_outputs(step.id)["out"]) / "out"
    written = folder / "file.txt"
    # the step runs as the host user, or unprivileged when the host user is root; its files are the host user's
    assert written.read_text() == str((step_user() or (os.getuid(),))[0])
    assert (written.stat().st_uid, written.stat().st_gid) == (os.getuid(), os.getgid())


SLEEPER = """
    import time
    print("started", flush=True)
    time.sleep(120)
"""


def test_failure_cancel_and_time_limit_leave_no_container(workspace, write_scripts, tmp_path, docker_engine):
    src = write_scripts(tmp_path / "src", {"fail.py": "import sys\nprint('bad input')\nsys.exit(3)\n",
                                           "sleep.py": SLEEPER})
    failed = run_pipeline(workspace, [PythonScriptStep("fail.py", name="fail", source_directory=str(src),
                                                       compute_target="docker")])
    step = steps_by_name(failed)["fail"]
    assert step.get_status() == "Failed"
    assert "code 3" in step.get_details()["error"]["message"]
    assert leftover_containers(docker_engine, failed) == []

    limited = run_pipeline(workspace, [PythonScriptStep("sleep.py", name="sleep", source_directory=str(src),
                                                        compute_target="docker", runconfig=runconfig(timeout=2),
                                                        allow_reuse=False)])
    step = steps_by_name(limited)["sleep"]
    assert step.get_status() == "Canceled"
    assert "max_run_duration_seconds" in step.get_details()["error"]["message"]
    assert leftover_containers(docker_engine, limited) == []

    run = submit(workspace, [PythonScriptStep("sleep.py", source_directory=str(src), compute_target="docker",
                                              allow_reuse=False)])
    step = list(run.get_steps())[0]
    wait_until(lambda: "started" in (std_log(workspace, step) if (workspace._store.run_dir(step.id) / "logs" /
                                                                   "std_log.txt").exists() else ""), "the step to start")
    assert len(leftover_containers(docker_engine, run)) == 1  # it is there while it runs
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert run.get_status() == "Canceled"
    assert leftover_containers(docker_engine, run) == []
    assert dangling_images(docker_engine) == []


def test_bad_environments_give_one_clear_error(workspace, write_scripts, tmp_path, docker_engine, monkeypatch):
    src = write_scripts(tmp_path / "src", {"s.py": "print('never')\n"})
    bad = pip_env("broken-docker", "mlpipe-no-such-package-zz9")
    run = run_pipeline(workspace, [PythonScriptStep("s.py", name="s", source_directory=str(src),
                                                    compute_target="docker", runconfig=runconfig(bad))])
    step = steps_by_name(run)["s"]
    assert step.get_status() == "Failed"
    error = step.get_details()["error"]["message"]
    assert "'broken-docker'" in error and "'s'" in error and "mlpipe-no-such-package-zz9" in error
    assert "Traceback" not in error
    assert leftover_containers(docker_engine, run) == []
    assert labelled_containers(docker_engine, f"mlpipe.env_hash={bad.content_hash}") == []

    missing = pip_env("no-image", "six")
    missing.docker.base_image = "mlpipe/absent-image:never"
    with pytest.raises(UserError, match="(?s)'s'.*'no-image'.*mlpipe/absent-image:never"):
        Experiment(workspace, "e").submit(ScriptRunConfig(str(src), "s.py", compute_target="docker",
                                                          environment=missing))

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    from mlpipe_jupyter.compute import envbuild

    monkeypatch.setattr(envbuild._clients, "client", None)
    with pytest.raises(UserError, match="(?s)'s'.*no Docker engine answers"):
        Experiment(workspace, "e").submit(ScriptRunConfig(str(src), "s.py", compute_target="docker"))


def test_a_target_with_its_own_image_limits_and_mounts(workspace, write_scripts, tmp_path, docker_engine):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host")
    ComputeTarget.create(workspace, "small", DockerCompute.provisioning_configuration(
        cpu_count=1, memory_gb=0.5, mounts=[f"{shared}:/shared:ro"]))
    src = write_scripts(tmp_path / "src", {"m.py": """
        import os, socket
        print(open("/shared/hello.txt").read())
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=1)
            print("network: yes")
        except OSError:
            print("network: no")
    """})
    run = run_pipeline(workspace, [PythonScriptStep("m.py", name="m", source_directory=str(src),
                                                    compute_target="small")])
    step = steps_by_name(run)["m"]
    assert step.get_status() == "Completed", step.get_details().get("error")
    assert "from the host" in std_log(workspace, step) and "network: no" in std_log(workspace, step)


def test_containers_of_a_dead_runner_are_swept(docker_engine):
    """A runner killed mid-step (a kernel restart) leaves its container; the next Docker run removes it."""
    import subprocess
    import sys

    from mlpipe_jupyter.compute.docker import sweep_orphans
    from mlpipe_jupyter.compute.envbuild import DEFAULT_BASE_IMAGE
    from mlpipe_jupyter.store import hostname

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    container = docker_engine.containers.run(
        DEFAULT_BASE_IMAGE, ["sleep", "60"], detach=True, init=True, network_mode="none",
        labels={"mlpipe.managed": "step", "mlpipe.run_id": "orphan-test", "mlpipe.runner_host": hostname(),
                "mlpipe.runner_pid": str(dead.pid), "mlpipe.runner_start": "gone"})
    try:
        # every process that opens a workspace sweeps too (tests on the other worker do): whoever comes
        # first removes it, and if sweeping were broken nobody would
        sweep_orphans()
        wait_until(lambda: labelled_containers(docker_engine, "mlpipe.run_id=orphan-test") == [],
                   "the orphan to be removed (another sweep may have its removal in progress)", 30)
    finally:
        import contextlib

        with contextlib.suppress(Exception):
            container.remove(force=True)
