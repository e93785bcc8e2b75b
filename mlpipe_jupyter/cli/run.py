"""``mlpipe run FILE``: run a saved pipeline (YAML/JSON) or a notebook's recorded pipeline, printing its
log lines and step statuses as they come; Ctrl-C cancels; ``--detach`` runs it in the background."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from mlpipe_jupyter.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, out, workspace
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.notebook.notebook_meta import load_notebook_pipeline
from mlpipe_jupyter.running.control import active_execution
from mlpipe_jupyter.sdk.experiment import Experiment
from mlpipe_jupyter.sdk.parameters import parse_assignments
from mlpipe_jupyter.sdk.pipeline import Pipeline
from mlpipe_jupyter.status import FINAL_STATUSES, Status
from mlpipe_jupyter.tracking.follower import POLL_SECONDS, RunFollower
from mlpipe_jupyter.tracking.report import event_text, run_text


def _experiment_name(args) -> str:
    if args.experiment:
        return args.experiment
    stem = os.path.splitext(os.path.basename(args.pipeline_file))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).lstrip("-_.") or "default"


def _load_pipeline(ws, path):
    if str(path).endswith(".ipynb"):  # the pipeline a notebook records with %%step cells
        return load_notebook_pipeline(ws, path)
    try:
        return Pipeline.load(ws, path)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise UserError(f"Pipeline file '{path}' does not describe a valid pipeline: {type(e).__name__}: {e}") from None


def _printer():
    lock = threading.Lock()

    def show(event):
        text = event_text(event)
        if text is not None:
            with lock:
                out(text)

    return show


def main(args) -> int:
    params = parse_assignments(args.param)
    ws = workspace(args)
    experiment_name = _experiment_name(args)
    if args.detach:
        return _run_detached(ws, args, experiment_name)
    pipeline = _load_pipeline(ws, args.pipeline_file)
    run = Experiment(ws, experiment_name).submit(pipeline, regenerate_outputs=args.regenerate,
                                                 pipeline_parameters=params)
    follower = None
    if args.detached_child:
        out(run.id)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    else:
        out(f"Run {run.id} (experiment '{experiment_name}') started; Ctrl-C cancels it.")
        follower = RunFollower(ws._store, run.id, _printer()).start()  # replays what happened already
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even when the shell ignores SIGINT
    execution = active_execution(run.id)
    try:
        run.wait_for_completion(raise_on_error=False)
    except KeyboardInterrupt:
        _cancel_interactively(run, execution)
        if follower is not None:
            follower.stop()
        out("\n" + run_text(ws._store, run.id))
        return EXIT_INTERRUPTED
    if execution is not None:
        execution.done.wait()
    if follower is not None:
        follower.done.wait()
    if execution is not None and execution.record_error:  # a full disk: the history does not know the end
        raise UserError(f"Run {run.id} ended {execution.outcome[0]}; {execution.record_error}")
    out("\n" + run_text(ws._store, run.id))
    out(f"Details: mlpipe show {run.id}    logs: mlpipe logs {run.id}")
    return 0 if run.get_status() == Status.COMPLETED else EXIT_FAILED


def _cancel_interactively(run, execution):
    print(f"\nCanceling run {run.id} (press Ctrl-C again to quit without waiting)...", file=sys.stderr, flush=True)
    try:
        run.cancel()
        while run.get_status() not in FINAL_STATUSES or (execution is not None and not execution.done.is_set()):
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        # steps die with this process (PDEATHSIG); the run is marked Failed the next time the workspace opens
        sys.stdout.flush()
        os._exit(EXIT_INTERRUPTED)


def _run_detached(ws, args, experiment_name) -> int:
    """Run the pipeline in a new background process that outlives this one; print its run id."""
    cmd = [sys.executable, "-m", "mlpipe_jupyter.cli", "--workspace", str(ws.path), "run",
           os.path.abspath(args.pipeline_file), "--experiment", experiment_name, "--detached-child"]
    for item in args.param or []:
        cmd += ["--param", item]
    if args.regenerate:
        cmd.append("--regenerate")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    with proc.stdout, proc.stderr:
        run_id = proc.stdout.readline().decode().strip()
        if not run_id:  # the background process refused the pipeline; pass its error on
            err = proc.stderr.read().decode(errors="replace")
            code = proc.wait()
            sys.stderr.write(err)
            return code or EXIT_USAGE
    out(f"Submitted run {run_id} (experiment '{experiment_name}'), running in the background.")
    out(f"Follow it with: mlpipe logs {run_id} --follow    cancel it with: mlpipe cancel {run_id}")
    return 0
