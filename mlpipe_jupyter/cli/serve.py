"""``mlpipe serve``: the REST API alone, in a headless Jupyter Server (no notebook UI), bound to this
machine unless told otherwise. While it lives, ``.mlpipe/server.json`` says where it is (published
pipelines' ``endpoint``) and ``.mlpipe/server.token`` holds its token (the azureml layer's authentication
header), readable by this user only."""
from __future__ import annotations

import json
import os
import secrets

from mlpipe_jupyter.cli.common import out, workspace
from mlpipe_jupyter.server.app import MlpipeServer

RECORD, TOKEN_FILE = "server.json", "server.token"


def main(args) -> int:
    ws = workspace(args)
    token = os.environ.get("JUPYTER_TOKEN")
    generated = not token
    if generated:
        token = secrets.token_urlsafe(32)
    serverapp = MlpipeServer.initialize_server(argv=[
        f"--ServerApp.ip={args.ip}", f"--ServerApp.port={args.port}", "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False", f"--IdentityProvider.token={token}",
        f"--MlpipeServer.workspace={ws.path}", f"--ServerApp.log_level={args.log_level}",
        f"--ServerApp.allow_root={args.allow_root}"])
    url = serverapp.connection_url
    _write_record(ws.folder, url, token)
    try:
        out(f"mlpipe serve: workspace '{ws.name}' at {url}mlpipe/api/ (OpenAPI: {url}mlpipe/api/openapi.json)")
        out(f"  token: {token}" if generated else "  token: the one in JUPYTER_TOKEN")
        out("  send it as the header 'Authorization: token <token>'; stop with Ctrl+C.")
        serverapp.start()
    finally:
        _remove_record(ws.folder)
    return 0


def _write_record(folder, url, token) -> None:
    token_path = folder / TOKEN_FILE
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # it may have existed with wider rights
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    tmp = folder / f".{RECORD}.{os.getpid()}"
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, folder / RECORD)


def _remove_record(folder) -> None:
    """Remove the record (and token) only if they are still this process's: another server may have
    taken the workspace over since."""
    try:
        if json.loads((folder / RECORD).read_text()).get("pid") != os.getpid():
            return
    except (OSError, ValueError):
        return
    for name in (RECORD, TOKEN_FILE):
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass
