"""Where a workspace's server is: ``.mlpipe/server.json`` ({url, pid}) while it lives, and its token in
``.mlpipe/server.token`` readable by this user only. Published pipelines' ``endpoint`` and the azureml
layer's authentication header read them; ``mlpipe serve`` and a Jupyter server with the extension both
write them through here."""
from __future__ import annotations

import json
import os
from pathlib import Path

RECORD, TOKEN_FILE = "server.json", "server.token"


def write_record(folder, url: str, token: str | None) -> None:
    """Record this process as the workspace's server. With no token (a server without token
    authentication) no token file is left: one there was another server's."""
    folder = Path(folder)
    token_path = folder / TOKEN_FILE
    if token:
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # it may have existed with wider rights
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    else:
        token_path.unlink(missing_ok=True)
    tmp = folder / f".{RECORD}.{os.getpid()}"
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(tmp, folder / RECORD)


def remove_record(folder) -> None:
    """Remove the record (and token) only if they are still this process's: another server may have
    taken the workspace over since."""
    folder = Path(folder)
    try:
        if json.loads((folder / RECORD).read_text()).get("pid") != os.getpid():
            return
    except (OSError, ValueError, AttributeError):
        return
    for name in (RECORD, TOKEN_FILE):
        (folder / name).unlink(missing_ok=True)
