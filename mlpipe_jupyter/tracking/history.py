"""The run history as rows to tabulate and compare: one summary per top-level run, with its parameters
and the last value of each scalar metric, and a metric's series for charts.

A pipeline run's metrics are its own and its steps' (read where they were logged: a reused step's
are its original run's), so a history table shows what the steps measured. A name logged by more
than one place is kept apart as ``step/name``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.status import Status

_STATUS_NAMES = {s.value.lower(): s.value for s in Status}


@dataclass
class RunSummary:
    id: str
    experiment: str
    kind: str
    name: str
    status: str
    created: float
    started: float | None
    ended: float | None
    error: str | None
    parameters: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # name -> last scalar value
    properties: dict = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds it ran (until now while it runs); None before it started."""
        return None if not self.started else (self.ended or time.time()) - self.started


def check_status(status: str | None) -> str | None:
    """An Azure status name in any case (``failed``, ``Failed``), as the store has it; None for any."""
    if status is None:
        return None
    found = _STATUS_NAMES.get(str(status).replace(" ", "").lower())
    if found is None:
        raise UserError(f"Unknown run status {status!r}: give one of {', '.join(s.value for s in Status)}.")
    return found


def _scalar_records(store, row) -> list[tuple[str, dict]]:
    """(place, record) of every scalar metric a run logged, its steps' after its own, in plan order."""
    places = [("", row)]
    if row["kind"] == "pipeline":
        places += [(child["name"], child) for child in store.child_runs(row["id"])]
    out = []
    for place, r in places:
        for rec in store.get_metric_records(r["reused_from"] or r["id"]):
            if rec["kind"] == "scalar":
                out.append((place, rec))
    return out


def _by_name(records) -> dict[str, list]:
    """Metric name -> values in order; a name logged in more than one place becomes ``place/name``."""
    places: dict[str, set] = {}
    for place, rec in records:
        places.setdefault(rec["name"], set()).add(place)
    out: dict[str, list] = {}
    for place, rec in records:
        name = rec["name"] if len(places[rec["name"]]) == 1 else f"{place or 'run'}/{rec['name']}"
        out.setdefault(name, []).append(rec["value"])
    return out


def summarize(store, row) -> RunSummary:
    d = row["details"]
    series = _by_name(_scalar_records(store, row))
    return RunSummary(id=row["id"], experiment=row["experiment"], kind=row["kind"], name=row["name"],
                      status=row["status"], created=row["created"], started=row["started"], ended=row["ended"],
                      error=row["error"], parameters=dict(d.get("parameters") or {}),
                      metrics={name: values[-1] for name, values in series.items()},
                      properties=dict(d.get("properties") or {}))


def run_history(store, experiment: str | None = None, limit: int | None = None,
                status: str | None = None) -> list[RunSummary]:
    """Top-level runs, newest first (as ``Experiment.get_runs``), of one experiment or all."""
    status = check_status(status)
    rows = store.list_runs(experiment, limit=None if status else limit)
    if status:
        rows = [r for r in rows if r["status"] == status][:limit]
    return [summarize(store, r) for r in rows]


def metric_series(store, run_id: str, name: str) -> list:
    """The values a run (and its steps) logged under ``name`` as ``summarize`` names it, in order."""
    return _by_name(_scalar_records(store, store.get_run(run_id))).get(name, [])


def key_metric_names(summaries, count: int) -> list[str]:
    """The ``count`` metric names most runs have (ties: first seen first)."""
    seen: dict[str, int] = {}
    for s in summaries:
        for name in s.metrics:
            seen[name] = seen.get(name, 0) + 1
    return sorted(seen, key=lambda n: -seen[n])[:count]


def parameter_names(summaries) -> list[str]:
    names: dict[str, None] = {}
    for s in summaries:
        names.update(dict.fromkeys(s.parameters))
    return list(names)
