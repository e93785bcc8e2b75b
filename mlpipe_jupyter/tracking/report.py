"""One vocabulary for runs in text: status words, durations, compact metric values, event lines, and
the plain-text and HTML summaries of a run (the CLI, notebooks, terminals and the monitor use these).

Summaries take store rows (``store.get_run``/``child_runs``), so they read a run in any process.
"""
from __future__ import annotations

import html
import time

from mlpipe_jupyter.running.events import EventKind
from mlpipe_jupyter.status import Status

STATUS_WORDS = ("queued", "running", "completed", "reused", "failed", "canceled", "not started")
_WORD = {Status.NOT_STARTED: "not started", Status.QUEUED: "queued", Status.PREPARING: "queued",
         Status.RUNNING: "running", Status.FINALIZING: "running", Status.CANCEL_REQUESTED: "running",
         Status.COMPLETED: "completed", Status.FAILED: "failed", Status.CANCELED: "canceled"}


def status_word(status: str, reused: bool = False) -> str:
    """The word a person reads for a status ("reused" for a completed step that was reused)."""
    if status == Status.COMPLETED and reused:
        return "reused"
    return _WORD.get(status, "running")


def format_duration(seconds: float | None) -> str:
    """``4.1s``, ``3m07s``, ``2h05m``; empty when there is nothing to time."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def duration(started, ended) -> str:
    """How long something ran (until now, while it runs)."""
    return format_duration(None if not started else (ended or time.time()) - started)


def row_duration(row) -> str:
    return duration(row["started"], row["ended"])


def when(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def compact(value, width=40) -> str:
    """One metric value in a few characters: scalars as they are, series by length and last value."""
    if isinstance(value, list):
        text = f"[{len(value)} values, last {compact(value[-1], 16)}]" if value else "[]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(str(k) for k in value) + "}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def event_text(event, prefix: bool = True, progress: str = "") -> str | None:
    """The line a terminal prints for a runner event, or None for one it does not print:
    ``[step] a log line``, ``[step] metric loss = 0.25``, ``==> step: Completed (reused) [2/3 done]``.
    The CLI, ``wait_for_completion(show_output=True)`` and the text monitor all print these."""
    head = f"[{event.step}] " if prefix and event.step else ""
    d = event.data
    if event.kind == EventKind.LOG:
        return head + d["line"]
    if event.kind == EventKind.METRIC and d.get("kind", "scalar") == "scalar":
        return f"{head}metric {d['name']} = {compact(d['value'])}"
    if event.kind == EventKind.STEP_STATUS and d.get("status") not in (Status.QUEUED, Status.NOT_STARTED):
        text = f"==> {event.step}: {d['status']}" + (" (reused)" if d.get("reused") else "")
        if d.get("error") and d["status"] == Status.FAILED:
            text += f" - {d['error']}"
        return text + (f" {progress}" if progress else "")
    return None


def run_text(store, run_id: str, reasons=True) -> str:
    row = store.get_run(run_id)
    lines = [f"Run {row['id']}  experiment={row['experiment']}  kind={row['kind']}  status={row['status']}  "
             f"duration={row_duration(row)}"]
    if row["error"]:
        lines.append(f"  error: {row['error']}")
    params = row["details"].get("parameters")
    if params:
        lines.append("  parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if row["kind"] == "pipeline":
        for s in store.child_runs(run_id):
            flag = " (reused)" if s["reused_from"] else ""
            lines.append(f"  - {s['name']:<20} {s['status']:<10}{flag:<9} {row_duration(s):>7}  {s['id']}")
            if reasons and s["reuse_reason"]:
                lines.append(f"      why: {s['reuse_reason']}")
            if s["error"] and s["status"] == Status.FAILED:
                lines.append(f"      error: {s['error']}")
                trace = (s["details"] or {}).get("traceback")
                if trace:  # mapped to the user's files and cells when it was recorded
                    lines.extend("        " + ln for ln in trace.splitlines())
    return "\n".join(lines)


def run_html(store, run_id: str) -> str:
    row = store.get_run(run_id)
    out = [f"<b>Run</b> <code>{html.escape(row['id'])}</code> &middot; {html.escape(row['experiment'])} &middot; "
           f"<b>{html.escape(row['status'])}</b>"]
    if row["kind"] == "pipeline":
        out.append("<table><tr><th>step</th><th>status</th><th>duration</th><th>why</th></tr>")
        for s in store.child_runs(run_id):
            status = s["status"] + (" (reused)" if s["reused_from"] else "")
            out.append(f"<tr><td>{html.escape(s['name'])}</td><td>{html.escape(status)}</td>"
                       f"<td>{row_duration(s)}</td><td>{html.escape(s['reuse_reason'] or '')}</td></tr>")
        out.append("</table>")
    if row["error"]:
        out.append(f"<pre style='color:#b00'>{html.escape(row['error'])}</pre>")
    return "".join(out)
