"""A run started by ``mlpipe run`` in a terminal, watched from a notebook: the monitor in a real kernel
shows the step's log lines and metric values while the other process still runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from nbhelpers import execute, make_notebook, stream

REPO = Path(__file__).resolve().parents[2]

TALK = """
import os, sys, time
from mlpipe_jupyter import Run
run = Run.get_context()
while not os.path.exists(sys.argv[1] + ".start"):  # the notebook's monitor is there before anything is said
    time.sleep(0.05)
for i in range(5):
    print("line", i, flush=True)
    run.log("loss", 1.0 / (i + 1))
    time.sleep(0.1)
while not os.path.exists(sys.argv[1]):  # held until the notebook has seen the lines: the run is live
    time.sleep(0.05)
print("done", flush=True)
"""

WATCH = '''
import json, time
from pathlib import Path
from mlpipe_jupyter import Run, Workspace
from mlpipe_jupyter.notebook.monitor import RunMonitor
ws = Workspace({workspace!r})
run = Run.get(ws, {run_id!r})
monitor = RunMonitor(run)
Path({gate!r} + ".start").touch()
deadline = time.monotonic() + 60
seen = {{}}
while time.monotonic() < deadline:
    row = monitor.rows.get("talk")
    lines = list(row.lines) if row else []
    losses = list(row.metrics_panel.scalars.get("loss", [])) if row else []
    if "line 4" in lines and len(losses) == 5:
        seen = {{"lines": lines, "losses": losses, "status": run.get_step("talk").get_status(),
                 "monitor": monitor.statuses(), "plot": "loss" in row.metrics_panel.chart_of}}
        break
    time.sleep(0.05)
Path({gate!r}).touch()  # only now may the step end
print(json.dumps(seen))
'''

FINISH = '''
import json, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not monitor._stopped.is_set():
    time.sleep(0.05)
print(json.dumps({"monitor": monitor.statuses(), "lines": list(monitor.rows["talk"].lines)}))
'''


def test_the_notebook_monitor_shows_a_cli_run_live(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "talk.py").write_text(textwrap.dedent(TALK))
    gate = tmp_path / "gate"
    pipeline = tmp_path / "talk.yaml"
    pipeline.write_text(f"steps: [{{name: talk, script: talk.py, source_directory: {src}, arguments: ['{gate}']}}]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = subprocess.Popen([sys.executable, "-m", "mlpipe_jupyter.cli", "--workspace", str(workspace.path), "run",
                            str(pipeline)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = cli.stdout.readline()
        assert first.startswith("Run run_"), first + cli.stderr.read()
        run_id = first.split()[1]
        nb = tmp_path / "watch.ipynb"
        make_notebook(nb, [WATCH.format(workspace=str(workspace.path), run_id=run_id, gate=str(gate)), FINISH])
        executed = execute(nb)
        live = json.loads(stream(executed.cells[0]).splitlines()[-1])
        end = json.loads(stream(executed.cells[1]).splitlines()[-1])
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, out + err
    assert live, "the monitor never showed the lines and metrics while the step ran"
    assert live["status"] == "Running" and live["monitor"] == {"talk": "running"}
    assert [f"line {i}" for i in range(5)] == [ln for ln in live["lines"] if ln.startswith("line")]
    assert live["losses"] == [1.0, 0.5, 1.0 / 3, 0.25, 0.2] and live["plot"]
    assert end["monitor"] == {"talk": "completed"} and "done" in end["lines"]
