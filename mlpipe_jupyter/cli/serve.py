"""``mlpipe serve``: the REST API alone, in a headless Jupyter Server (no notebook UI), bound to this
machine unless told otherwise. While it lives, the extension records where it is and its token in the
workspace (mlpipe_jupyter.server.record), as any Jupyter server with the extension does."""
from __future__ import annotations

import os
import secrets

from mlpipe_jupyter.cli.common import out, workspace
from mlpipe_jupyter.server.app import MlpipeServer
from mlpipe_jupyter.server.record import remove_record


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
        f"--ServerApp.allow_root={args.allow_root}", f"--MlpipeServer.unknown_parameters={args.unknown_parameters}"])
    url = serverapp.connection_url
    try:
        out(f"mlpipe serve: workspace '{ws.name}' at {url}mlpipe/api/ (OpenAPI: {url}mlpipe/api/openapi.json)")
        out(f"  token: {token}" if generated else "  token: the one in JUPYTER_TOKEN")
        out("  send it as the header 'Authorization: token <token>'; stop with Ctrl+C.")
        serverapp.start()
    finally:
        remove_record(ws.folder)  # also when the server stopped before its extension did
    return 0

