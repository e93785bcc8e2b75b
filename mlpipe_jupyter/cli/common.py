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
    """A run by its id, a unique beginning of it, or ``latest`` (the newest pipeline or script run)."""
    store = ws._store
    if run_id == "latest":
        rows = store.list_runs(limit=1)
        if not rows:
            raise UserError(f"There is no run yet in workspace '{ws.name}': 'latest' names none.")
        return Run.get(ws, rows[0]["id"])
    if store.get_run(run_id) is not None:
        return Run.get(ws, run_id)
    matches = store.run_ids_starting_with(run_id) if run_id else []
    if len(matches) == 1:
        return Run.get(ws, matches[0])
    if matches:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise UserError(f"Run id '{run_id}' is the beginning of several runs ({shown}): give more of it.")
    return Run.get(ws, run_id)  # says that no such run exists
