"""What every ``mlpipe`` command shares: printing, exit codes, finding the workspace and a run."""
from __future__ import annotations

import os

from mlpipe_jupyter.errors import UserError, WorkspaceNotFoundError
from mlpipe_jupyter.sdk.run import Run
from mlpipe_jupyter.sdk.workspace import Workspace

from mlpipe_jupyter.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE  # noqa: F401 - for the commands


def out(text: str = "") -> None:
    print(text, flush=True)


def workspace(args) -> Workspace:
    try:
        return Workspace.from_config(args.workspace)
    except WorkspaceNotFoundError:
        where = os.path.abspath(args.workspace or os.getcwd())
        raise UserError(f"No workspace found in '{where}' or any folder above it. Create one with "
                        "`mlpipe init NAME`, or point to one with --workspace PATH.") from None


def get_run(ws, run_id) -> Run:
    return Run.get(ws, run_id)
