"""``mlpipe runs``: the run history, newest first, with how many steps each reused and ran."""
from __future__ import annotations

from mlpipe_jupyter.cli.common import out, workspace
from mlpipe_jupyter.tracking.report import row_duration, when


def main(args) -> int:
    ws = workspace(args)
    store = ws._store
    rows = store.list_runs(args.experiment, limit=args.limit)
    if not rows:
        where = f"experiment '{args.experiment}'" if args.experiment else f"workspace '{ws.name}'"
        out(f"No runs in {where} yet.")
        return 0
    table = [("ID", "EXPERIMENT", "STATUS", "STARTED", "DURATION", "REUSED", "RAN")]
    for r in rows:
        if r["kind"] == "pipeline":
            steps = store.child_runs(r["id"])
            reused = str(sum(1 for s in steps if s["reused_from"]))
            ran = str(sum(1 for s in steps if not s["reused_from"] and s["started"]))
        else:
            reused, ran = "-", "1" if r["started"] else "0"
        table.append((r["id"], r["experiment"], r["status"], when(r["started"] or r["created"]),
                      row_duration(r) or "-", reused, ran))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
