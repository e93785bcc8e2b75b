"""Secret-looking values reach the step and nowhere else: not the database, the run files, a saved
pipeline, the environment registry, notebook metadata or the step's log. Reuse still notices that a
secret changed. The workspace is private to its user whatever the umask."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from helpers import USE_SECRETS, sha, run_pipeline, steps_by_name
from mlpipe_jupyter import Environment, Pipeline, PipelineParameter, PythonScriptStep, RunConfiguration

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TOKEN, PASSWORD, KEY = "tok-3f9a1c77e2", "pw-81d0b5aa4c", "key-5e2c90d1b3"



def secret_step(src, password=PASSWORD):
    env = Environment("with-token")
    env.environment_variables = {"API_TOKEN": TOKEN}
    config = RunConfiguration()
    config.environment = env
    config.environment_variables = {"DB_PASSWORD": password, "MODE": "fast"}
    return PythonScriptStep("use.py", name="use", source_directory=str(src), runconfig=config,
                            params={"api_key": PipelineParameter("api_key", default_value=KEY)})


def everything_written(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_secrets_reach_the_step_and_are_stored_nowhere(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"use.py": USE_SECRETS})
    step = secret_step(src)
    step.runconfig.environment.register(workspace)
    run = run_pipeline(workspace, [step])
    assert run.get_status() == "Completed", run.get_details().get("error")
    log = steps_by_name(run)["use"].get_log_text()
    for name, value in (("API_TOKEN", TOKEN), ("DB_PASSWORD", PASSWORD), ("AML_PARAMETER_api_key", KEY)):
        assert f"{name} sha256 {sha(value)} value ***" in log  # the step got it; its log shows a mask
    assert "mode fast" in log

    saved = tmp_path / "pipeline.yaml"
    Pipeline(workspace, [step]).save(saved)
    written = everything_written(workspace.folder) + saved.read_bytes()
    for value in (TOKEN, PASSWORD, KEY):
        assert value.encode() not in written
    assert b"DB_PASSWORD" in saved.read_bytes()  # the name is kept, so a later run knows what to ask for

    assert Environment.get(workspace, "with-token").environment_variables["API_TOKEN"] == TOKEN  # this process
    other = subprocess.run([sys.executable, "-c", "import sys\nfrom mlpipe_jupyter import Environment, Workspace\n"
                            "print(Environment.get(Workspace(sys.argv[1]), 'with-token').environment_variables)",
                            str(workspace.path)], env=ENV, capture_output=True, text=True, timeout=60)
    assert "'API_TOKEN': '***'" in other.stdout, other.stderr


def test_reuse_notices_a_changed_secret_without_showing_it(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"use.py": USE_SECRETS})
    run_pipeline(workspace, [secret_step(src)])
    same = steps_by_name(run_pipeline(workspace, [secret_step(src)]))["use"]
    assert same.reused
    changed = steps_by_name(run_pipeline(workspace, [secret_step(src, password="pw-other-value-77")]))["use"]
    assert not changed.reused
    reason = changed.get_details()["reuse_reason"]
    assert "DB_PASSWORD" in reason and "values not shown" in reason
    assert PASSWORD not in reason and "pw-other-value-77" not in reason


def test_a_saved_pipeline_gets_its_secrets_from_the_runners_environment(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"use.py": USE_SECRETS})
    saved = tmp_path / "pipeline.yaml"
    Pipeline(workspace, [secret_step(src)]).save(saved)
    cli = [sys.executable, "-m", "mlpipe_jupyter.cli", "--workspace", str(workspace.path), "run", str(saved)]
    without = subprocess.run(cli, env=ENV, capture_output=True, text=True, timeout=60)
    assert without.returncode == 2 and "API_TOKEN" in without.stderr and "Traceback" not in without.stderr
    assert workspace._store.list_runs() == []  # refused before anything ran
    given = {**ENV, "API_TOKEN": "tok-from-env", "DB_PASSWORD": "pw-from-env", "api_key": "key-from-env"}
    ran = subprocess.run(cli, env=given, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"API_TOKEN sha256 {sha('tok-from-env')}" in ran.stdout
    assert f"DB_PASSWORD sha256 {sha('pw-from-env')}" in ran.stdout


def test_notebook_metadata_keeps_a_secret_parameters_name_only(workspace, tmp_path):
    from mlpipe_jupyter.notebook.cell_steps import CellSpec
    from mlpipe_jupyter.notebook.state import NotebookPipeline

    state = NotebookPipeline(workspace, tmp_path, "nb.ipynb")
    state.record(CellSpec("train", "print(params['api_key'])\n", params={"api_key": KEY, "lr": 0.1}))
    meta = state.to_metadata()
    assert KEY not in repr(meta) and meta["steps"][0]["cell"]["params"] == {"api_key": "***", "lr": 0.1}


PRIVATE = """
import os, sys
os.umask(0)
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace.create("private", path=sys.argv[1])
open(os.path.join(sys.argv[1], "s.py"), "w").write("print('hi')\\n")
run = Experiment(ws, "e").submit(Pipeline(ws, [PythonScriptStep("s.py", source_directory=sys.argv[1])]))
run.wait_for_completion()
ws._store.secret_digest("make the key")
folder = os.path.join(sys.argv[1], ".mlpipe")
for name in sorted(os.listdir(folder)):  # while the database is open, its -wal and -shm files exist
    print(name, oct(os.stat(os.path.join(folder, name)).st_mode & 0o777))
"""


def test_the_workspace_is_private_whatever_the_umask(tmp_path):
    r = subprocess.run([sys.executable, "-c", PRIVATE, str(tmp_path)], env=ENV, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    modes = dict(line.split() for line in r.stdout.splitlines())
    assert stat.S_IMODE((tmp_path / ".mlpipe").stat().st_mode) == 0o700
    for sub in ("objects", "data", "runs", "tmp"):
        assert modes[sub] == "0o700", sub
    for name in ("mlpipe.db", "mlpipe.db-wal", "mlpipe.db-shm", "config.json", "secret.key"):
        assert modes[name] == "0o600", name
