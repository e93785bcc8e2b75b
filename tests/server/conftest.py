"""Real servers on free ports of 127.0.0.1: ``mlpipe serve`` and ``jupyter server`` with the extension
enabled by the config file the wheel installs. Each gets its own Jupyter config and runtime folders, so
the user's Jupyter setup is neither seen nor changed."""
from __future__ import annotations

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

from mlpipe_jupyter import Workspace

REPO = Path(__file__).resolve().parents[2]
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
        if token is not None:
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
            if server.token and server.get("openapi.json").status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"{server.kind} did not answer within {START_TIMEOUT}s:\n{server.output.read_text()}")


def _root_flag() -> list:
    return ["--allow-root"] if os.geteuid() == 0 else []


def start_mlpipe_serve(workspace: Workspace, tmp: Path, token: str | None = None) -> Server:
    """``mlpipe serve``; its token is the one it prints (or ``token``, given as JUPYTER_TOKEN)."""
    port = free_port()
    output = tmp / "serve.out"
    env = {**_isolated_env(tmp), **({"JUPYTER_TOKEN": token} if token else {})}
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe_jupyter.cli", "serve", "--workspace", str(workspace.path),
                             "--port", str(port), *_root_flag()],
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


def start_jupyter_server(workspace: Workspace | None, tmp: Path, cwd: Path | None = None) -> Server:
    """``jupyter server`` started in the workspace folder (or ``cwd``), the extension enabled only by the
    repository's jupyter-config file (what the wheel installs into etc/jupyter)."""
    port, token = free_port(), secrets.token_hex(16)
    output = tmp / "jupyter.out"
    env = {**_isolated_env(tmp), "JUPYTER_CONFIG_PATH": str(REPO / "jupyter-config")}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
                             "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
                             f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True"],
                            cwd=cwd or workspace.path, env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    return _wait_until_serving(Server("jupyter server", proc, f"http://127.0.0.1:{port}/", token, workspace, output))


@pytest.fixture(scope="module", params=["mlpipe serve", "jupyter server"])
def server(request, tmp_path_factory):
    """One server of each kind per test module, on a fresh workspace."""
    tmp = tmp_path_factory.mktemp("server")
    workspace = Workspace.create("rest", path=tmp / "ws")
    start = start_mlpipe_serve if request.param == "mlpipe serve" else start_jupyter_server
    server = start(workspace, tmp)
    yield server
    server.stop()
