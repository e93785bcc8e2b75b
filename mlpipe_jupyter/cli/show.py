"""``mlpipe show RUN``: a run's steps, why each was reused or rerun, errors, outputs and metrics."""
from __future__ import annotations

from mlpipe_jupyter.cli.common import get_run, out, workspace
from mlpipe_jupyter.sdk.run import PipelineRun
from mlpipe_jupyter.tracking.report import compact, run_text


def _local_path(output) -> str:
    return str(output.get_port_data_reference().path)


def main(args) -> int:
    ws = workspace(args)
    run = get_run(ws, args.run_id)
    out(run_text(ws._store, run.id))
    steps = run.steps_in_plan_order() if isinstance(run, PipelineRun) else [run]
    details = []
    for s in steps:
        parts = []
        outputs = s.get_outputs() if hasattr(s, "get_outputs") else {}
        if outputs:  # where each output is on this machine: what a user opens next
            parts.append("outputs: " + ", ".join(f"{name} -> {_local_path(o)}" for name, o in outputs.items()))
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
