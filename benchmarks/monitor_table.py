"""What the monitor's table, graph and mapped errors cost, against the monitor before them (loose rows).

A 50-step pipeline (five layers of ten steps, each reading one step of the layer before) runs once; then,
in this process (the ipywidgets models, no browser):
- open: building the monitor of that finished run from the store (what ``display(run)`` does);
- status change: one step's status event applied to the monitor (its row, its icon, and now the graph's
  SVG redrawn), the work done on the runner's thread for every status change;
- failed step: the same for a failure (now also reading the step's stored traceback).
The old monitor is the module as it was before the table (git ``708c86a``), loaded from git.

    python benchmarks/monitor_table.py
"""
from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD_COMMIT = "708c86a"
LAYERS, WIDTH = 5, 10
REPEAT = 10


def old_monitor_module(folder: Path):
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:mlpipe_jupyter/notebook/monitor.py"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    path = folder / "old_monitor.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_monitor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fifty_steps(ws, src):
    from mlpipe_jupyter import PipelineData, PythonScriptStep

    (src / "step.py").write_text("import sys\nprint('step', sys.argv[1:])\n")
    steps, previous = [], []
    for layer in range(LAYERS):
        current = []
        for i in range(WIDTH):
            out = PipelineData(f"d{layer}_{i}")
            args, inputs = ["--out", out], []
            if previous:
                args += ["--in", previous[i]]
                inputs = [previous[i]]
            steps.append(PythonScriptStep("step.py", name=f"s{layer}_{i}", arguments=args, inputs=inputs,
                                          outputs=[out], source_directory=str(src)))
            current.append(out)
        previous = current
    return steps


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    from mlpipe_jupyter import Experiment, Pipeline, Workspace
    from mlpipe_jupyter.notebook import monitor as new
    from mlpipe_jupyter.running.events import Event, EventKind
    from mlpipe_jupyter.status import Status

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old = old_monitor_module(folder)
        ws = Workspace.create("bench", path=folder, exist_ok=True)
        src = folder / "src"
        src.mkdir()
        run = Experiment(ws, "bench").submit(Pipeline(ws, fifty_steps(ws, src)))
        run.wait_for_completion()
        names = [s.name for s in run.steps_in_plan_order()]
        modules = (("before (loose rows)", old), ("table + graph", new))
        samples = {label: ([], [], []) for label, _ in modules}
        for _ in range(REPEAT):  # interleaved, so both meet the same load of a shared machine
            for label, module in modules:
                opened, per_status, per_failure = samples[label]
                opened.append(timed(lambda: module.RunMonitor(run), 1))
                monitor = module.RunMonitor(run)
                # each event changes a status (completed -> running -> completed), as a run's events do
                for status in (Status.RUNNING, Status.COMPLETED):
                    events = [Event(EventKind.STEP_STATUS, run.id, name, data={"status": status}) for name in names]
                    per_status.append(timed(lambda: [monitor._apply(e) for e in events], 1) / len(events))
                failed = Event(EventKind.STEP_STATUS, run.id, names[-1],
                               data={"status": Status.FAILED, "error": "Step 's4_9' exited with code 1: E: e"})
                per_failure.append(timed(lambda: monitor._apply(failed), 1))
        rows = [(label, *(statistics.median(v) for v in samples[label])) for label, _ in modules]
    base = rows[0]
    print(f"50 steps; medians of {REPEAT} in ms (ratio to before)")
    print(f"{'monitor':<22} {'open':>16} {'status change':>18} {'failed step':>16}")
    for label, opened, status, failure in rows:
        print(f"{label:<22} {opened:>8.1f} ({opened / base[1]:.2f}x) {status:>9.3f} ({status / base[2]:.2f}x) "
              f"{failure:>8.3f} ({failure / base[3]:.2f}x)")


if __name__ == "__main__":
    sys.exit(main())
