"""``mlpipe _trigger KIND ID BODY`` (hidden): the background process a REST call to a published pipeline
or endpoint starts. It prints the run id, then lives until the run ends, so the server that started it
stays free and may restart without ending the run."""
from __future__ import annotations

import json
import os

from mlpipe_jupyter.cli.common import EXIT_FAILED, out, workspace
from mlpipe_jupyter.running.control import active_execution
from mlpipe_jupyter.sdk.published import run_trigger
from mlpipe_jupyter.status import Status


def main(args) -> int:
    ws = workspace(args)
    override = None if args.continue_on_step_failure is None else args.continue_on_step_failure == "true"
    run = run_trigger(ws, args.kind, args.target_id, json.loads(args.body), args.triggered_by, override)
    out(run.id)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    execution = active_execution(run.id)
    run.wait_for_completion(raise_on_error=False)
    if execution is not None:
        execution.done.wait()
    return 0 if run.get_status() == Status.COMPLETED else EXIT_FAILED
