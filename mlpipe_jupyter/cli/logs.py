"""``mlpipe logs RUN [--step NAME] [--follow]``: a run's log, streamed as bytes (a log may be larger than
memory), each line prefixed with its step for a pipeline run; ``--follow`` keeps printing until the
run ends, wherever it runs."""
from __future__ import annotations

import sys

from mlpipe_jupyter.cli.common import get_run, workspace
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.running.control import wait_until_final
from mlpipe_jupyter.tracking.follower import LogTail, log_path


class _Printer:
    """Writes what a LogTail reads, each line with its prefix (at most a chunk and a line held)."""

    def __init__(self, prefix: str):
        self.prefix = prefix.encode()
        self.tail = LogTail()
        self.at_line_start = True  # False after a too long line was printed in part

    def drain(self, path, final=False) -> None:
        for data in self.tail.read(path, final):
            self._write(data)
        if final and not self.at_line_start:  # the log ended without a newline
            self._write_raw(b"\n")

    def _write(self, data: bytes) -> None:
        if self.prefix:
            last = len(data) - 1 if data.endswith(b"\n") else len(data)
            data = ((self.prefix if self.at_line_start else b"")
                    + data[:last].replace(b"\n", b"\n" + self.prefix) + data[last:])
        self._write_raw(data)

    def _write_raw(self, data: bytes) -> None:
        self.at_line_start = data.endswith(b"\n")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def main(args) -> int:
    ws = workspace(args)
    store = ws._store
    run = get_run(ws, args.run_id)
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

    printers: dict[str, _Printer] = {}
    sys.stdout.flush()  # the log goes to sys.stdout.buffer, after anything printed before

    def drain_all(final):
        for r in current_rows():
            printer = printers.setdefault(r["id"], _Printer(f"[{r['name']}] " if prefixed else ""))
            printer.drain(log_path(store, r), final)

    if not args.follow:
        drain_all(final=True)
        return 0
    status = wait_until_final(store, watched, each_poll=lambda: drain_all(final=False))
    drain_all(final=True)
    print(f"--- run {watched} {status}", file=sys.stderr, flush=True)
    return 0
