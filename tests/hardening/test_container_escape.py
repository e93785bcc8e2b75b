"""A step is untrusted: what it leaves in its folders (links, FIFOs, devices) never makes the runner
write or read a host path, and a container gets no privileges. Against a real Docker engine (and the
same cases on local compute where they apply)."""
from __future__ import annotations

import pytest

from helpers import WAIT_SECONDS, run_pipeline, steps_by_name, submit, wait_until
from mlpipe_jupyter import ComputeTarget, DockerCompute, PipelineData, PythonScriptStep, RunConfiguration
from helpers import leftover_containers

REPLACE_RUN_FOLDER = """
import os, sys
victim = sys.argv[1]
run_folder = os.environ["MLPIPE_RUN_DIR"]
# the run folder's outputs/ becomes a link to a host folder; the step leaves a file in ./outputs
os.symlink(victim, os.path.join(run_folder, "outputs"))
os.symlink(victim, os.path.join(run_folder, "logs"))
os.makedirs("outputs", exist_ok=True)
open("outputs/evil.txt", "w").write("written through a link")
os.makedirs("logs", exist_ok=True)
open("logs/evil.log", "w").write("written through a link")
print("planted")
"""


@pytest.mark.parametrize("target", ["docker", "local"])
def test_links_in_the_run_folder_never_lead_the_runner_to_write_on_the_host(workspace, write_scripts, tmp_path,
                                                                           target, request):
    if target == "docker":
        request.getfixturevalue("docker_engine")
    victim = tmp_path / "victim"
    victim.mkdir()
    src = write_scripts(tmp_path / "src", {"plant.py": REPLACE_RUN_FOLDER})
    run = run_pipeline(workspace, [PythonScriptStep("plant.py", name="plant", source_directory=str(src),
                                                    compute_target=target, arguments=[str(victim)])])
    step = steps_by_name(run)["plant"]
    assert step.get_status() == "Completed", step.get_details().get("error")
    assert list(victim.iterdir()) == []  # nothing was written through the links
    files = step.get_file_names()
    assert "outputs/evil.txt" in files and "logs/evil.log" in files  # kept in the run's own folder
    run_folder = workspace._store.run_dir(step.id)
    assert not (run_folder / "outputs").is_symlink() and not (run_folder / "logs").is_symlink()
    assert "planted" in step.get_log_text()


LINK_TO_HOST = """
import os, sys
out = sys.argv[1]
open(os.path.join(out, "real.txt"), "w").write("fine")
os.symlink("real.txt", os.path.join(out, "alias.txt"))      # stays inside: kept as a link
os.symlink(sys.argv[2], os.path.join(out, "host_secret"))   # leads to a host file
"""
READ_INPUT = """
import os, sys
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    print(name, "->", open(path).read() if os.path.isfile(path) else "(not a file)")
"""


def test_a_link_leaving_an_output_is_refused_and_never_copied_into_a_container(workspace, write_scripts,
                                                                              tmp_path, docker_engine):
    secret = tmp_path / "host_secret.txt"
    secret.write_text("TOP-SECRET-ON-THE-HOST")
    src = write_scripts(tmp_path / "src", {"make.py": LINK_TO_HOST, "read.py": READ_INPUT})
    data = PipelineData("data")
    make = PythonScriptStep("make.py", name="make", source_directory=str(src), outputs=[data],
                            arguments=[data, str(secret)], compute_target="docker")
    copy = data.as_download()
    read = PythonScriptStep("read.py", name="read", source_directory=str(src), inputs=[copy], arguments=[copy],
                            compute_target="docker")
    run = run_pipeline(workspace, [make, read])
    steps = steps_by_name(run)
    assert steps["make"].get_status() == "Failed"
    error = steps["make"].get_details()["error"]["message"]
    assert "host_secret" in error and "outside the output" in error
    assert steps["read"].get_status() == "Canceled"
    assert "TOP-SECRET-ON-THE-HOST" not in steps["read"].get_log_text()
    assert not list((workspace.folder / "data").rglob("host_secret"))  # nothing of it was committed
    assert leftover_containers(docker_engine, run) == []


INTERNAL_LINK = """
import os, sys
out = sys.argv[1]
os.makedirs(os.path.join(out, "v1"))
open(os.path.join(out, "v1", "model.txt"), "w").write("weights")
os.symlink("v1", os.path.join(out, "latest"))
"""


def test_relative_links_inside_an_output_are_kept_as_links(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"make.py": INTERNAL_LINK,
                                           "read.py": "import os, sys\nprint(open(os.path.join(sys.argv[1], "
                                                      "'latest', 'model.txt')).read())\n"})
    data = PipelineData("data")
    make = PythonScriptStep("make.py", name="make", source_directory=str(src), outputs=[data], arguments=[data])
    copy = data.as_download()
    read = PythonScriptStep("read.py", name="read", source_directory=str(src), inputs=[copy], arguments=[copy])
    run = run_pipeline(workspace, [make, read])
    steps = steps_by_name(run)
    assert run.get_status() == "Completed", run.get_details().get("error")
    committed = steps["make"].get_output_data("data").path
    assert (committed / "latest").is_symlink() and (committed / "latest").readlink().as_posix() == "v1"
    assert "weights" in steps["read"].get_log_text()


SPECIAL_METRICS_FILE = """
import os, sys
path = os.path.join(os.environ["MLPIPE_RUN_DIR"], ".metrics.jsonl")
if sys.argv[1] == "fifo":
    os.mkfifo(path)
else:
    os.symlink("/dev/zero", path)
os.makedirs("outputs", exist_ok=True)
os.mkfifo("outputs/pipe")
os.symlink("/dev/zero", "outputs/zeros")
print("left a", sys.argv[1])
"""


@pytest.mark.parametrize("target", ["docker", "local"])
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_special_files_in_the_run_folder_neither_hang_nor_flood_the_runner(workspace, write_scripts, tmp_path,
                                                                          target, kind, request):
    if target == "docker":
        request.getfixturevalue("docker_engine")
    src = write_scripts(tmp_path / "src", {"special.py": SPECIAL_METRICS_FILE})
    config = RunConfiguration()
    config.max_run_duration_seconds = 20
    run = run_pipeline(workspace, [PythonScriptStep("special.py", name="special", source_directory=str(src),
                                                    compute_target=target, arguments=[kind.split()[0]],
                                                    runconfig=config)])
    assert run.get_status() == "Completed", run.get_details().get("error")  # within the wait, not hung
    step = steps_by_name(run)["special"]
    log = step.get_log_text()
    assert ".metrics.jsonl is not a regular file" in log
    assert "outputs/pipe (a FIFO)" in log and "outputs/zeros (a symbolic link, not followed)" in log
    assert step.get_metrics() == {}
    assert "outputs/pipe" not in step.get_file_names()


PRIVILEGES = """
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print("uid", os.getuid(), "gid", os.getgid())
print("CapEff", status["CapEff"].strip(), "CapBnd", status["CapBnd"].strip())
print("NoNewPrivs", status["NoNewPrivs"].strip())
"""


def test_a_container_step_runs_unprivileged(workspace, write_scripts, tmp_path, docker_engine):
    src = write_scripts(tmp_path / "src", {"who.py": PRIVILEGES})
    run = run_pipeline(workspace, [PythonScriptStep("who.py", name="who", source_directory=str(src),
                                                    compute_target="docker")])
    log = steps_by_name(run)["who"].get_log_text()
    assert run.get_status() == "Completed", run.get_details().get("error")
    uid = int(log.split("uid ")[1].split()[0])
    assert uid != 0  # not root, even when the host user is
    assert "CapEff 0000000000000000 CapBnd 0000000000000000" in log  # a setuid binary gains nothing
    assert "NoNewPrivs 1" in log


def test_the_container_gets_a_pids_limit_and_only_its_mounts(workspace, write_scripts, tmp_path, docker_engine):
    src = write_scripts(tmp_path / "src", {"hold.py": "import time\nprint('up', flush=True)\ntime.sleep(30)\n"})
    ComputeTarget.create(workspace, "small", DockerCompute.provisioning_configuration(pids_limit=64))
    run = submit(workspace, [PythonScriptStep("hold.py", source_directory=str(src), compute_target="small")])
    try:
        step = run.get_steps()[0]
        container = wait_until(lambda: next(iter(docker_engine.containers.list(
            filters={"label": f"mlpipe.run_id={step.id}"})), None), "the step's container")
        host = container.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
        assert host["PidsLimit"] == 64 and not host["Privileged"]
        sources = {m["Source"] for m in container.attrs["Mounts"]}
        scratch = {s for s in sources if "/tmp/step-" in s}
        package = {s for s in sources if s.endswith("/mlpipe_jupyter")}
        assert sources == scratch | package  # the step's own folder and this package, nothing else
        assert all(m["RW"] is False for m in container.attrs["Mounts"] if m["Source"] in package)
    finally:
        run.cancel()
        run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
