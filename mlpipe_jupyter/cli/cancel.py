"""``mlpipe cancel RUN``: stop a run, whichever process runs it, and wait until it has stopped."""
from __future__ import annotations

from mlpipe_jupyter.cli.common import EXIT_FAILED, get_run, out, workspace
from mlpipe_jupyter.running.control import wait_until_final
from mlpipe_jupyter.status import FINAL_STATUSES


def main(args) -> int:
    ws = workspace(args)
    run = get_run(ws, args.run_id)
    top = run.parent or run
    status = top.get_status()
    if status in FINAL_STATUSES:
        out(f"Run {top.id} has already ended ({status}); nothing to cancel.")
        return 0
    top.cancel()
    out(f"Cancel requested for run {top.id}.")
    if args.no_wait:
        return 0
    status = wait_until_final(ws._store, top.id, timeout=args.timeout)
    if status not in FINAL_STATUSES:
        out(f"Run {top.id} is still stopping (status {status}).")
        return EXIT_FAILED
    out(f"Run {top.id}: {status}")
    return 0
