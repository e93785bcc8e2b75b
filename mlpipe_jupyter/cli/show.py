"""``mlpipe show RUN``: a run's steps, why each was reused or rerun, errors, outputs and metrics."""
from __future__ import annotations

from mlpipe_jupyter.cli.common import get_run, out, workspace
from mlpipe_jupyter.sdk.run import PipelineRun
from mlpipe_jupyter.tracking.report import compact, run_text


def main(args) -> int:
    ws = workspace(args)
    run = get_run(ws, args.run_id)
    out(run_text(ws._store, run.id))
    steps = run.steps_in_plan_order() if isinstance(run, PipelineRun) else [run]
    details = []
    for s in steps:
        parts = []
        outputs = list(s.get_outputs()) if hasattr(s, "get_outputs") else []
        if outputs:
            parts.append("outputs: " + ", ".join(outputs))
        metrics = s.get_metrics()
        if metrics:
            parts.append("metrics: " + ", ".join(f"{k}={compact(v)}" for k, v in metrics.items()))
        if parts:
            details.append(f"  {s.name}: " + "; ".join(parts))
    if details:
        out("Outputs and metrics:")
        for line in details:
            out(line)
    return 0
