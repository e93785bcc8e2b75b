"""``mlpipe _trigger RUN_ID`` (hidden): the background process a server starts for a queued run of a
published pipeline or endpoint. It lives until the run ends, in a session of its own, so the server that
started it stays free and may restart without ending the run."""
from __future__ import annotations

from mlpipe_jupyter.cli.common import EXIT_FAILED, workspace
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.running.control import active_execution
from mlpipe_jupyter.sdk.published import start_queued
from mlpipe_jupyter.status import Status


def main(args) -> int:
    ws = workspace(args)
    try:
        run = start_queued(ws, args.run_id)
    except UserError:  # recorded on the run
        return EXIT_FAILED
    if run is None:  # canceled while it waited
        return EXIT_FAILED
    execution = active_execution(run.id)
    run.wait_for_completion(raise_on_error=False)
    if execution is not None:
        execution.done.wait()
    return 0 if run.get_status() == Status.COMPLETED else EXIT_FAILED
