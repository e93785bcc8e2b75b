"""Helpers for the end-to-end tests that run real pipelines in subprocesses."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mlpipe_jupyter import Experiment, Pipeline, Workspace

# A guard against hangs only; no test asserts on how long anything took.
WAIT_SECONDS = 60


def submit(ws, steps, experiment="e2e", **kwargs):
    return Experiment(ws, experiment).submit(Pipeline(ws, steps), **kwargs)


def run_pipeline(ws, steps, experiment="e2e", **kwargs):
    """Submit, wait for the end without raising, and return the run."""
    run = submit(ws, steps, experiment, **kwargs)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    return run


def steps_by_name(run) -> dict:
    return {s.name: s for s in run.get_steps()}


def statuses(run) -> dict:
    return {s.name: s.get_status() for s in run.get_steps()}


def reused(run) -> dict:
    return {s.name: s.reused for s in run.get_steps()}


def wait_until(predicate, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}")


def labelled_containers(client, label: str) -> list[dict]:
    """Containers (running or not) carrying ``label``, as the engine lists them. Not
    ``containers.list()``: it inspects each one after listing and fails on one removed in between."""
    return client.api.containers(all=True, filters={"label": label})


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def pids_with(marker, where: str = "cmdline") -> list[int]:
    """Live processes whose command line mentions ``marker`` (say, a file path a step got as argument),
    or, with ``where="environ"``, whose variables as they started do.

    A local step runs in a PID namespace of its own, so what it reports as its pid means nothing out
    here; its command line is how a test finds it. A warm step's command line and starting variables
    are its helper's (it is forked from it): a variable the runner was started with, which the helper
    inherits, finds it."""
    marker = str(marker).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / where).read_bytes()
        except OSError:
            continue
        if marker in text and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def working_in(pids: set[int], folder: Path) -> set[int]:
    """Those of ``pids`` whose working folder is below ``folder``: a warm step's are (it moves into its
    working copy), its helper's and the processes between them are not."""
    found = set()
    for pid in pids:
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(folder):
                found.add(pid)
        except OSError:
            pass
    return found


def read_json(path):
    return json.loads(Path(path).read_text())


# A three-step chain, each step in its own source directory: prep -> train -> evaluate.
# Every script appends its name to a trace file, so a test can tell which steps really ran.
CHAIN_SCRIPTS = {
    "prep/prep.py": """
        import argparse, os
        p = argparse.ArgumentParser()
        p.add_argument("--out"); p.add_argument("--n", type=int); p.add_argument("--trace")
        a = p.parse_args()
        open(a.trace, "a").write("prep\\n")
        with open(os.path.join(a.out, "numbers.txt"), "w") as f:
            f.write("\\n".join(str(i) for i in range(a.n)))
        print("prep wrote", a.n, "numbers")
    """,
    "train/train.py": """
        import argparse, json, os
        from helper import transform
        from mlpipe_jupyter import Run
        p = argparse.ArgumentParser()
        p.add_argument("--data"); p.add_argument("--model"); p.add_argument("--trace")
        a = p.parse_args()
        open(a.trace, "a").write("train\\n")
        numbers = [int(x) for x in open(os.path.join(a.data, "numbers.txt")).read().split()]
        total = sum(transform(x) for x in numbers)
        with open(os.path.join(a.model, "model.json"), "w") as f:
            json.dump({"total": total}, f)
        Run.get_context().log("total", total)
        print("train total", total)
    """,
    "train/helper.py": """
        def transform(x):
            return x * 10
    """,
    "evaluate/evaluate.py": """
        import argparse, json, os
        from mlpipe_jupyter import Run
        p = argparse.ArgumentParser()
        p.add_argument("--model"); p.add_argument("--trace")
        a = p.parse_args()
        open(a.trace, "a").write("evaluate\\n")
        total = json.load(open(os.path.join(a.model, "model.json")))["total"]
        os.makedirs("outputs", exist_ok=True)
        open("outputs/report.txt", "w").write(f"score={total / 100}\\n")
        Run.get_context().log("score", total / 100)
        print("evaluate score", total / 100)
    """,
}


def chain_steps(root, trace, n=4, **prep_kwargs):
    """(prep, train, evaluate) reading and writing the scripts written from CHAIN_SCRIPTS under ``root``."""
    from mlpipe_jupyter import PipelineData, PythonScriptStep

    root = Path(root)
    data, model = PipelineData("data"), PipelineData("model")
    prep = PythonScriptStep("prep.py", name="prep", source_directory=str(root / "prep"), outputs=[data],
                            arguments=["--out", data, "--n", n, "--trace", str(trace)], **prep_kwargs)
    train = PythonScriptStep("train.py", name="train",
                             source_directory=str(root / "train"), inputs=[data], outputs=[model],
                             arguments=["--data", data, "--model", model, "--trace", str(trace)])
    evaluate = PythonScriptStep("evaluate.py", name="evaluate", source_directory=str(root / "evaluate"), inputs=[model],
                                arguments=["--model", model, "--trace", str(trace)])
    return prep, train, evaluate


def trace_lines(trace) -> list[str]:
    path = Path(trace)
    return path.read_text().split() if path.exists() else []


def remove_tree(path):
    """Delete a folder even when it was committed read-only."""
    import shutil

    path = Path(path)
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o700)
    shutil.rmtree(path)


# -- real servers on free ports of 127.0.0.1: ``mlpipe serve`` and ``jupyter server`` with the extension enabled by
# the config file the wheel installs. Each gets its own Jupyter config and runtime folders, so the user's Jupyter
# setup is neither seen nor changed.
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process and how to talk to it."""

    def __init__(self, kind, proc, url, token, workspace, output: Path):
        self.kind, self.proc, self.url, self.token, self.workspace, self.output = \
            kind, proc, url, token, workspace, output

    def request(self, method, path, token="default", **kwargs):
        headers = kwargs.pop("headers", {})
        token = self.token if token == "default" else token
        if token:  # "" for a server without token authentication
            headers["Authorization"] = f"token {token}"
        return requests.request(method, f"{self.url}mlpipe/api/{path}", headers=headers, timeout=60, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _isolated_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for name in ("config", "runtime", "data"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTER_PLATFORM_DIRS="1")
    return env


def _wait_until_serving(server: Server) -> Server:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"{server.kind} exited ({server.proc.returncode}):\n{server.output.read_text()}")
        try:
            if server.token is not None and server.get("openapi.json").status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"{server.kind} did not answer within {START_TIMEOUT}s:\n{server.output.read_text()}")


def _root_flag() -> list:
    return ["--allow-root"] if os.geteuid() == 0 else []


def start_mlpipe_serve(workspace: Workspace, tmp: Path, token: str | None = None, args=()) -> Server:
    """``mlpipe serve [args]``; its token is the one it prints (or ``token``, given as JUPYTER_TOKEN)."""
    port = free_port()
    output = tmp / "serve.out"
    env = {**_isolated_env(tmp), **({"JUPYTER_TOKEN": token} if token else {})}
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe_jupyter.cli", "serve", "--workspace", str(workspace.path),
                             "--port", str(port), *_root_flag(), *args],
                            cwd=tmp, env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    server = Server("mlpipe serve", proc, f"http://127.0.0.1:{port}/", token, workspace, output)
    deadline = time.monotonic() + START_TIMEOUT
    while server.token is None and time.monotonic() < deadline and proc.poll() is None:
        for line in output.read_text().splitlines():
            if line.strip().startswith("token: "):
                server.token = line.split("token: ", 1)[1].strip()
        time.sleep(0.1)
    return _wait_until_serving(server)


def start_jupyter_server(workspace: Workspace | None, tmp: Path, cwd: Path | None = None,
                         token: str | None = None) -> Server:
    """``jupyter server`` started in the workspace folder (or ``cwd``), the extension enabled only by the
    repository's jupyter-config file (what the wheel installs into etc/jupyter); ``token`` "" runs it
    without token authentication (default: a fresh token)."""
    port, token = free_port(), secrets.token_hex(16) if token is None else token
    output = tmp / "jupyter.out"
    env = {**_isolated_env(tmp), "JUPYTER_CONFIG_PATH": str(REPO / "jupyter-config")}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
                             "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
                             f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True"],
                            cwd=cwd or workspace.path, env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    return _wait_until_serving(Server("jupyter server", proc, f"http://127.0.0.1:{port}/", token, workspace, output))


def write_notebook(root: Path, name: str, cells: list[str]) -> Path:
    """A notebook of code cells (markdown when the source starts with ``#md``) for the python3 kernel."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell(src[3:].lstrip()) if src.startswith("#md")
                      else nbformat.v4.new_code_cell(src) for src in cells]
    path = root / name
    nbformat.write(notebook, path)
    return path


def skip_or_fail(reason: str):
    """Skip on a machine that cannot set the engine up; fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a real engine that cannot be set up fails the run)", pytrace=False)
    pytest.skip(reason)


def leftover_containers(client, run) -> list:
    """Containers of any step of ``run``, running or not: there must be none once it ended."""
    ids = [run.id] + [s.id for s in run.get_steps()] if hasattr(run, "get_steps") else [run.id]
    out = []
    for run_id in ids:
        out += labelled_containers(client, f"mlpipe.run_id={run_id}")
    return out


def dangling_images(client) -> list:
    return client.images.list(filters={"dangling": True, "label": "mlpipe.managed"})


# A step that uses three secrets: it prints a digest of each (what a test compares) and, carelessly,
# each value (what must be masked in its log).
USE_SECRETS = """
import hashlib, os
for name in ("API_TOKEN", "DB_PASSWORD", "AML_PARAMETER_api_key"):
    value = os.environ[name]
    print(name, "sha256", hashlib.sha256(value.encode()).hexdigest()[:16], "value", value)
print("mode", os.environ["MODE"])
"""


def sha(value: str) -> str:
    """The digest USE_SECRETS prints of a value."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


# Logs a metric, then waits until the file named by its argument exists before it logs the last value.
LIVE_METRIC = """
import os, sys, time
from mlpipe_jupyter import Run
Run.get_context().log("progress", 0.5)
print("logged", flush=True)
for _ in range(600):  # until the test has seen the metric in the run history
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.1)
Run.get_context().log("progress", 1.0)
"""


def metrics_arrive_while_the_step_runs(ws, step, go: Path, timeout: float) -> None:
    """``step`` runs LIVE_METRIC with ``go`` as its argument: its first value must reach the run history
    while it still runs (it goes on only once the test saw it), its last by the end."""
    run = submit(ws, [step])
    live = wait_until(lambda: steps_by_name(run).get(step.name), "the step to start", timeout)
    wait_until(lambda: live.get_metrics().get("progress") == 0.5, "the metric to reach the run history", timeout)
    assert live.get_status() == "Running"
    go.write_text("")
    run.wait_for_completion(raise_on_error=False, timeout_seconds=timeout)
    assert run.get_status() == "Completed"
    assert live.get_metrics() == {"progress": [0.5, 1.0]}


@contextlib.contextmanager
def runner_process(cmd: list[str], **popen_kwargs):
    """A process running a pipeline, for a test that kills it (``kill_hard``): never left running after
    the test, its pipes closed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **popen_kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def kill_hard(proc: subprocess.Popen) -> None:
    """kill -9, as a kernel restart or the OOM killer ends a runner."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
