"""Latency from a step printing a line to that line reaching the run monitor's widget model.

A step prints 200 lines, each carrying ``time.time()`` at print; the monitor (the ipywidgets model,
in this process, no browser) records when each line lands in its log widget. Two cases: lines spread
out (one every 10 ms, a step logging progress) and one burst (a chatty step; lines are coalesced).

    python benchmarks/monitor_latency.py
"""
from __future__ import annotations

import statistics
import tempfile
import textwrap
import time
from pathlib import Path

LINES = 200
STEP = '''
import time
time.sleep(1.0)  # lets the monitor subscribe before the first line
for i in range({lines}):
    print(f"line {{i}} {{time.time():.6f}}", flush=True)
    if {pause}:
        time.sleep({pause})
'''


def measure(folder: Path, pause: float) -> list[float]:
    from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
    from mlpipe_jupyter.notebook.monitor import RunMonitor

    ws = Workspace.create("bench", path=folder, exist_ok=True)
    src = folder / f"src_{pause}"
    src.mkdir()
    (src / "chatty.py").write_text(textwrap.dedent(STEP.format(lines=LINES, pause=pause)))
    step = PythonScriptStep("chatty.py", source_directory=str(src), allow_reuse=False)
    run = Experiment(ws, "bench").submit(Pipeline(ws, [step]))
    arrivals: dict[int, float] = {}
    latencies: list[float] = []
    monitor = RunMonitor(run)

    def on_flush(step_name, lines):
        now = time.time()
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "line":
                arrivals[int(parts[1])] = now
                latencies.append((now - float(parts[2])) * 1000)

    monitor.flush_hooks.append(on_flush)
    run.wait_for_completion(timeout_seconds=120)
    monitor.sync()
    assert len(arrivals) == LINES, f"only {len(arrivals)} of {LINES} lines reached the monitor"
    assert run.get_status() == "Completed"
    return latencies


def p95(values):
    return statistics.quantiles(values, n=100)[94]


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, pause in (("one line every 10 ms", 0.01), ("burst of 200 lines", 0)):
            lat = measure(Path(tmp), pause)
            rows.append((label, statistics.median(lat), p95(lat), max(lat)))
    print(f"{'case':<24} {'lines':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for label, med, p, mx in rows:
        print(f"{label:<24} {LINES:>5} {med:>10.1f} {p:>8.1f} {mx:>8.1f}")


if __name__ == "__main__":
    main()
