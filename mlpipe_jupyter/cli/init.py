"""``mlpipe init``: create a workspace (a ``.mlpipe/`` folder)."""
from __future__ import annotations

import os

from mlpipe_jupyter.cli.common import out
from mlpipe_jupyter.sdk.workspace import Workspace


def main(args) -> int:
    root = os.path.abspath(args.path)
    name = args.name or os.path.basename(root) or "workspace"
    ws = Workspace.create(name, path=root)
    out(f"Created workspace '{ws.name}' in {ws.folder}")
    return 0
