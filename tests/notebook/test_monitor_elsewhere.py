"""A monitor of a run that another process executes: no events reach it, so it follows the store and
the run's log files (statuses, log lines), shows the end and then lets go of its threads."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

from mlpipe_jupyter.notebook.monitor import RunMonitor
from mlpipe_jupyter.running.events import bus
from mlpipe_jupyter.sdk.run import run_from_row

DRIVER = '''
import sys
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace

ws = Workspace(sys.argv[1])
step = PythonScriptStep("hold.py", name="hold", source_directory=sys.argv[2])
run = Experiment(ws, "elsewhere").submit(Pipeline(ws, [step]))
print(run.id, flush=True)
run.wait_for_completion()
'''

HOLD = '''
import os, time
while not os.path.exists({go!r}):  # holds the step until the test says go
    time.sleep(0.05)
print("released")
'''


def test_monitor_of_a_run_in_another_process_ends_and_lets_go(workspace, write_scripts, tmp_path):
    go = tmp_path / "go"
    src = write_scripts(tmp_path / "src", {"hold.py": HOLD.format(go=str(go))})
    driver = write_scripts(tmp_path, {"driver.py": DRIVER}) / "driver.py"
    proc = subprocess.Popen([sys.executable, str(driver), str(tmp_path), str(src)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read()
        run = run_from_row(workspace, workspace._store.get_run(run_id))
        subscribers = len(bus._subs)
        monitor = RunMonitor(run)
        assert run.get_status() not in ("Completed", "Failed", "Canceled")
        assert len(bus._subs) == subscribers  # nothing of this process would come on the bus
        go.touch()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not monitor._stopped.is_set():
        time.sleep(0.05)
    assert monitor.statuses() == {"hold": "completed"}
    assert "completed" in monitor.run_status.value and monitor.cancel_button.disabled
    assert "released" in monitor.rows["hold"].lines  # the log line, read from the other process's log
    assert len(bus._subs) == subscribers
    flusher = [t for t in threading.enumerate() if t.name in (f"monitor-{run.id[-8:]}", f"follow-{run.id[-8:]}")]
    for t in flusher:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in flusher)
