"""``mlpipe serve``: the token it prints once, the record and token file it keeps only while it lives, and
the azureml authentication header that carries that token."""
import json
import stat
import subprocess
import sys

import requests
from helpers import start_jupyter_server, start_mlpipe_serve

from mlpipe_jupyter import Workspace
from mlpipe_jupyter.compat.cloud import InteractiveLoginAuthentication


def test_record_and_token_live_as_long_as_the_server(tmp_path, monkeypatch):
    ws = Workspace.create("served", path=tmp_path / "ws")
    server = start_mlpipe_serve(ws, tmp_path)
    record, token_file = ws.folder / "server.json", ws.folder / "server.token"
    try:
        assert json.loads(record.read_text()) == {"url": server.url, "pid": server.proc.pid}
        assert token_file.read_text().strip() == server.token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert server.output.read_text().count(server.token) == 1  # printed once, and nowhere else

        monkeypatch.chdir(ws.path)  # the azureml layer's credentials are the server's token
        header = InteractiveLoginAuthentication().get_authentication_header()
        answer = server.request("GET", "pipelines", token=None, headers=header)
        assert answer.status_code == 200 and answer.json() == {"Value": []}
    finally:
        returncode = server.stop()
    assert returncode == 0, server.output.read_text()
    assert not record.exists() and not token_file.exists()


def test_a_configured_token_is_used_and_not_printed(tmp_path):
    ws = Workspace.create("served", path=tmp_path / "ws")
    server = start_mlpipe_serve(ws, tmp_path, token="configured-token-123")
    try:
        assert (ws.folder / "server.token").read_text().strip() == "configured-token-123"
        assert "configured-token-123" not in server.output.read_text()
        assert server.get("openapi.json", token="another").status_code in (401, 403)
    finally:
        server.stop()


def test_without_a_workspace_it_says_so_and_serves_nothing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mlpipe_jupyter.cli", "serve", "--workspace", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "No workspace found" in done.stderr and str(tmp_path) in done.stderr


def test_jupyter_server_outside_a_workspace_still_serves_and_says_what_is_missing(tmp_path):
    elsewhere = tmp_path / "no-workspace-here"
    elsewhere.mkdir()
    server = start_jupyter_server(None, tmp_path, cwd=elsewhere)
    try:
        answer = server.get("pipelines")
        assert answer.status_code == 503
        message = answer.json()["error"]["message"]
        assert str(elsewhere) in message and "c.MlpipeServer.workspace" in message
        assert requests.get(f"{server.url}api/status", headers={"Authorization": f"token {server.token}"},
                            timeout=30).status_code == 200
    finally:
        server.stop()
