"""The ``mlpipe`` command: create a workspace, run saved pipelines, and look at the run history.

Heavy modules (planning, the runner, YAML, fsspec) are imported inside the commands that need them,
so ``mlpipe runs`` or ``mlpipe show`` start quickly.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time

from mlpipe_jupyter.errors import MlpipeError, UserError, WorkspaceNotFoundError
from mlpipe_jupyter.status import FINAL_STATUSES as FINAL
POLL_SECONDS = 0.2
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


# -- helpers ------------------------------------------------------------------------------------------------
def _out(text: str = "") -> None:
    print(text, flush=True)


def _workspace(args):
    from mlpipe_jupyter.sdk.workspace import Workspace

    try:
        return Workspace.from_config(args.workspace)
    except WorkspaceNotFoundError:
        where = os.path.abspath(args.workspace or os.getcwd())
        raise UserError(f"No workspace found in '{where}' or any folder above it. Create one with "
                        "`mlpipe init NAME`, or point to one with --workspace PATH.") from None


def _get_run(ws, run_id):
    from mlpipe_jupyter.sdk.run import Run

    return Run.get(ws, run_id)


def _when(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _duration(row) -> str:
    if not row["started"]:
        return "-"
    seconds = (row["ended"] or time.time()) - row["started"]
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _compact(value, width=40) -> str:
    """One metric value in a few characters: scalars as they are, series by length and last value."""
    if isinstance(value, list):
        text = f"[{len(value)} values, last {_compact(value[-1], 16)}]" if value else "[]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(str(k) for k in value) + "}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _wait_until_final(store, run_id, timeout=None, each_poll=None) -> str:
    """Poll the store (works for runs of other processes); a dead runner's run is marked Failed on the way.
    ``each_poll()`` is called while the run is still going, before each pause."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_recovery = time.monotonic()
    while True:
        status = store.get_run(run_id)["status"]
        if status in FINAL or (deadline is not None and time.monotonic() > deadline):
            return status
        if each_poll is not None:
            each_poll()
        time.sleep(POLL_SECONDS)
        if time.monotonic() - last_recovery > 1.0:
            store.recover_orphans()
            last_recovery = time.monotonic()


# -- init -----------------------------------------------------------------------------------------------------
def cmd_init(args) -> int:
    from mlpipe_jupyter.sdk.workspace import Workspace

    root = os.path.abspath(args.path)
    name = args.name or os.path.basename(root) or "workspace"
    ws = Workspace.create(name, path=root)
    _out(f"Created workspace '{ws.name}' in {ws.folder}")
    return 0


# -- run ------------------------------------------------------------------------------------------------------
def _experiment_name(args) -> str:
    if args.experiment:
        return args.experiment
    stem = os.path.splitext(os.path.basename(args.pipeline_file))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).lstrip("-_.") or "default"


def _load_pipeline(ws, path):
    from mlpipe_jupyter.sdk.pipeline import Pipeline

    if str(path).endswith(".ipynb"):  # the pipeline a notebook records with %%step cells
        from mlpipe_jupyter.notebook.notebook_meta import load_notebook_pipeline

        return load_notebook_pipeline(ws, path)
    try:
        return Pipeline.load(ws, path)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise UserError(f"Pipeline file '{path}' does not describe a valid pipeline: {type(e).__name__}: {e}") from None


def _print_event(event, lock):
    with lock:
        if event.kind == "log":
            _out(f"[{event.step}] {event.data['line']}")
        elif event.kind == "step_status" and event.data.get("status") != "Queued":
            extra = " (reused)" if event.data.get("reused") else ""
            _out(f"==> {event.step}: {event.data['status']}{extra}")
        elif event.kind == "metric" and event.data.get("kind", "scalar") == "scalar":
            _out(f"[{event.step}] metric {event.data['name']} = {_compact(event.data['value'])}")


def cmd_run(args) -> int:
    from mlpipe_jupyter.sdk.parameters import parse_assignments

    params = parse_assignments(args.param)
    ws = _workspace(args)
    experiment_name = _experiment_name(args)
    if args.detach:
        return _run_detached(ws, args, experiment_name)

    from mlpipe_jupyter.running.events import bus
    from mlpipe_jupyter.running.control import active_execution
    from mlpipe_jupyter.sdk.experiment import Experiment
    from mlpipe_jupyter.tracking.report import run_text

    pipeline = _load_pipeline(ws, args.pipeline_file)
    experiment = Experiment(ws, experiment_name)
    unsubscribe = None
    if not args.detached_child:
        # subscribe before submitting: the first steps may start (or be reused) before submit returns
        unsubscribe = bus.subscribe(lambda e, lock=threading.Lock(): _print_event(e, lock))
    run = experiment.submit(pipeline, regenerate_outputs=args.regenerate, pipeline_parameters=params)
    if args.detached_child:
        _out(run.id)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    else:
        _out(f"Run {run.id} (experiment '{experiment_name}') started; Ctrl-C cancels it.")
    execution = active_execution(run.id)
    if not args.detached_child:  # Ctrl-C cancels even when started from a shell that ignores SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run.wait_for_completion(raise_on_error=False)
    except KeyboardInterrupt:
        _cancel_interactively(run, execution)
        if unsubscribe:
            unsubscribe()
        _out("\n" + run_text(run))
        return EXIT_INTERRUPTED
    if unsubscribe:
        unsubscribe()
    if execution is not None:
        execution.done.wait()
        if execution.record_error:  # a full disk: the history does not know how the run ended
            raise UserError(f"Run {run.id} ended {execution.outcome[0]}; {execution.record_error}")
    _out("\n" + run_text(run))
    _out(f"Details: mlpipe show {run.id}    logs: mlpipe logs {run.id}")
    return 0 if run.get_status() == "Completed" else EXIT_FAILED


def _cancel_interactively(run, execution):
    print(f"\nCanceling run {run.id} (press Ctrl-C again to quit without waiting)...", file=sys.stderr, flush=True)
    try:
        run.cancel()
        while run.get_status() not in FINAL or (execution is not None and not execution.done.is_set()):
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        # steps die with this process (PDEATHSIG); the run is marked Failed the next time the workspace opens
        sys.stdout.flush()
        os._exit(EXIT_INTERRUPTED)


def _run_detached(ws, args, experiment_name) -> int:
    """Run the pipeline in a new background process that outlives this one; print its run id."""
    import subprocess

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
    _out(f"Submitted run {run_id} (experiment '{experiment_name}'), running in the background.")
    _out(f"Follow it with: mlpipe logs {run_id} --follow    cancel it with: mlpipe cancel {run_id}")
    return 0


# -- runs -----------------------------------------------------------------------------------------------------
def cmd_runs(args) -> int:
    ws = _workspace(args)
    store = ws._store
    rows = store.list_runs(args.experiment, limit=args.limit)
    if not rows:
        where = f"experiment '{args.experiment}'" if args.experiment else f"workspace '{ws.name}'"
        _out(f"No runs in {where} yet.")
        return 0
    table = [("ID", "EXPERIMENT", "STATUS", "STARTED", "DURATION", "REUSED", "RAN")]
    for r in rows:
        if r["kind"] == "pipeline":
            steps = store.child_runs(r["id"])
            reused = str(sum(1 for s in steps if s["reused_from"]))
            ran = str(sum(1 for s in steps if not s["reused_from"] and s["started"]))
        else:
            reused, ran = "-", "1" if r["started"] else "0"
        table.append((r["id"], r["experiment"], r["status"], _when(r["started"] or r["created"]), _duration(r),
                      reused, ran))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        _out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


# -- show -----------------------------------------------------------------------------------------------------
def cmd_show(args) -> int:
    from mlpipe_jupyter.tracking.report import run_text
    from mlpipe_jupyter.sdk.run import PipelineRun

    ws = _workspace(args)
    run = _get_run(ws, args.run_id)
    _out(run_text(run))
    steps = run.get_steps() if isinstance(run, PipelineRun) else [run]
    details = []
    for s in steps:
        parts = []
        outputs = list(s.get_outputs()) if hasattr(s, "get_outputs") else []
        if outputs:
            parts.append("outputs: " + ", ".join(outputs))
        metrics = s.get_metrics()
        if metrics:
            parts.append("metrics: " + ", ".join(f"{k}={_compact(v)}" for k, v in metrics.items()))
        if parts:
            details.append(f"  {s.name}: " + "; ".join(parts))
    if details:
        _out("Outputs and metrics:")
        for line in details:
            _out(line)
    return 0


# -- logs -----------------------------------------------------------------------------------------------------
class _LogTail:
    """Streams a step's log file from where it last stopped, a chunk at a time, as bytes: a log may be
    larger than memory. Holds at most a chunk and one partial line (itself at most a chunk)."""

    CHUNK = 1 << 20

    def __init__(self, prefix: str):
        self.prefix = prefix.encode()
        self.path = None
        self.offset = 0
        self.at_line_start = True  # False after a too long line was printed in part

    def drain(self, path, final=False) -> None:
        """Print the whole lines written since the last call; with ``final``, the unfinished last one too."""
        if path != self.path:  # a step decided to reuse an earlier run: its log lives there
            self.path, self.offset, self.at_line_start = path, 0, True
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return
        with f:
            if os.fstat(f.fileno()).st_size < self.offset:
                self.offset, self.at_line_start = 0, True
            f.seek(self.offset)
            partial = b""
            while chunk := f.read(self.CHUNK):
                data = partial + chunk
                end = data.rfind(b"\n") + 1
                if end == 0 and len(data) > self.CHUNK:  # no end in sight: print the line in parts
                    end = len(data)
                if end:
                    self._write(data[:end])
                partial = data[end:]
            if final and partial:
                self._write(partial)
        if final and not self.at_line_start:  # the log ended without a newline
            self._write_raw(b"\n")

    def _write(self, data: bytes) -> None:
        """Print ``data`` (whole lines, or the head of a long one), each line prefixed, and move past it."""
        self.offset += len(data)
        if self.prefix:
            last = len(data) - 1 if data.endswith(b"\n") else len(data)
            data = ((self.prefix if self.at_line_start else b"")
                    + data[:last].replace(b"\n", b"\n" + self.prefix) + data[last:])
        self._write_raw(data)

    def _write_raw(self, data: bytes) -> None:
        self.at_line_start = data.endswith(b"\n")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _log_path(store, row):
    return store.run_dir(row["reused_from"] or row["id"]) / "logs" / "std_log.txt"


def cmd_logs(args) -> int:
    ws = _workspace(args)
    store = ws._store
    run = _get_run(ws, args.run_id)
    row = run._row
    if row["kind"] == "pipeline":
        if args.step:
            watched, prefixed = run.get_step(args.step).id, False  # an unknown name is a clear error
        else:
            watched, prefixed = run.id, True
    else:
        if args.step and args.step != row["name"]:
            raise UserError(f"Run {run.id} is a single run of '{row['name']}'; it has no step '{args.step}'.")
        watched, prefixed = run.id, False

    def current_rows():
        if watched == row["id"] and row["kind"] == "pipeline":
            return store.child_runs(watched)
        return [store.get_run(watched)]

    tails: dict[str, _LogTail] = {}
    sys.stdout.flush()  # the log goes to sys.stdout.buffer, after anything printed before

    def drain_all(final):
        for r in current_rows():
            tail = tails.setdefault(r["id"], _LogTail(f"[{r['name']}] " if prefixed else ""))
            tail.drain(_log_path(store, r), final)

    if not args.follow:
        drain_all(final=True)
        return 0
    status = _wait_until_final(store, watched, each_poll=lambda: drain_all(final=False))
    drain_all(final=True)
    print(f"--- run {watched} {status}", file=sys.stderr, flush=True)
    return 0


# -- cancel ---------------------------------------------------------------------------------------------------
def cmd_cancel(args) -> int:
    ws = _workspace(args)
    run = _get_run(ws, args.run_id)
    top = run.parent or run
    status = top.get_status()
    if status in FINAL:
        _out(f"Run {top.id} has already ended ({status}); nothing to cancel.")
        return 0
    top.cancel()
    _out(f"Cancel requested for run {top.id}.")
    if args.no_wait:
        return 0
    status = _wait_until_final(ws._store, top.id, timeout=args.timeout)
    if status not in FINAL:
        _out(f"Run {top.id} is still stopping (status {status}).")
        return EXIT_FAILED
    _out(f"Run {top.id}: {status}")
    return 0


# -- argument parsing -------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other user error."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"mlpipe: error: {message} (see `{self.prog} --help`).\n")


def build_parser() -> argparse.ArgumentParser:
    from mlpipe_jupyter import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", "-w", metavar="PATH", default=argparse.SUPPRESS,
                        help="a folder at or below the workspace (default: the current directory)")
    parser = _Parser(prog="mlpipe", description="Run Azure ML style pipelines on this machine and browse their runs.")
    parser.add_argument("--workspace", "-w", metavar="PATH", default=None,
                        help="a folder at or below the workspace (default: the current directory)")
    parser.add_argument("--version", action="version", version=f"mlpipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("init", help="create a workspace", description="Create a workspace (.mlpipe/ folder).")
    p.add_argument("name", nargs="?", help="workspace name (default: the folder's name)")
    p.add_argument("--path", default=".", help="folder to create it in (default: the current directory)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", parents=[common], help="run a saved pipeline file",
                       description="Run a pipeline saved with Pipeline.save (YAML or JSON), streaming its logs.")
    p.add_argument("pipeline_file")
    p.add_argument("--experiment", "-e", help="experiment name (default: the file's name without extension)")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="set a pipeline parameter (repeatable)")
    p.add_argument("--regenerate", action="store_true", help="rerun every step instead of reusing earlier results")
    p.add_argument("--detach", "-d", action="store_true", help="run in the background and return at once")
    p.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("runs", parents=[common], help="list runs, newest first")
    p.add_argument("--experiment", "-e")
    p.add_argument("--limit", "-n", type=int, default=20, help="how many runs (default 20)")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", parents=[common], help="a run's steps, reuse reasons, errors, metrics and outputs")
    p.add_argument("run_id")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("logs", parents=[common], help="print a run's log")
    p.add_argument("run_id")
    p.add_argument("--step", "-s", help="only this step of a pipeline run")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the run ends")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("cancel", parents=[common], help="cancel a running run (from any process)")
    p.add_argument("run_id")
    p.add_argument("--no-wait", action="store_true", help="return without waiting for the run to stop")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to stop (default 60)")
    p.set_defaults(func=cmd_cancel)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MlpipeError as e:
        print(f"mlpipe: error: {e}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mlpipe logs ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
