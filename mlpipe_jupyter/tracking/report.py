"""Plain-text and HTML summaries of a run, for the CLI, notebooks and terminals."""
from __future__ import annotations

import html
import time


def _duration(row):
    if not row["started"]:
        return ""
    return f"{(row['ended'] or time.time()) - row['started']:.1f}s"


def run_text(run, reasons=True) -> str:
    row = run._row
    lines = [f"Run {row['id']}  experiment={row['experiment']}  kind={row['kind']}  status={row['status']}  "
             f"duration={_duration(row)}"]
    if row["error"]:
        lines.append(f"  error: {row['error']}")
    params = row["details"].get("parameters")
    if params:
        lines.append("  parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if row["kind"] == "pipeline":
        for s in run._store.child_runs(run.id):
            flag = " (reused)" if s["reused_from"] else ""
            lines.append(f"  - {s['name']:<20} {s['status']:<10}{flag:<9} {_duration(s):>7}  {s['id']}")
            if reasons and s["reuse_reason"]:
                lines.append(f"      why: {s['reuse_reason']}")
            if s["error"] and s["status"] == "Failed":
                lines.append(f"      error: {s['error']}")
    return "\n".join(lines)


def run_html(run) -> str:
    row = run._row
    out = [f"<b>Run</b> <code>{html.escape(row['id'])}</code> &middot; {html.escape(row['experiment'])} &middot; "
           f"<b>{html.escape(row['status'])}</b>"]
    if row["kind"] == "pipeline":
        out.append("<table><tr><th>step</th><th>status</th><th>duration</th><th>why</th></tr>")
        for s in run._store.child_runs(run.id):
            status = s["status"] + (" (reused)" if s["reused_from"] else "")
            out.append(f"<tr><td>{html.escape(s['name'])}</td><td>{html.escape(status)}</td>"
                       f"<td>{_duration(s)}</td><td>{html.escape(s['reuse_reason'] or '')}</td></tr>")
        out.append("</table>")
    if row["error"]:
        out.append(f"<pre style='color:#b00'>{html.escape(row['error'])}</pre>")
    return "".join(out)
