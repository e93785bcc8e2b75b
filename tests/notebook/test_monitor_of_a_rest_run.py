"""A run triggered over REST, watched from a notebook: the monitor in a real kernel attaches while the run
may still be queued, then shows the step's log lines and metric values live, while the process the
server's dispatcher started runs it."""
from __future__ import annotations

import json

from helpers import start_mlpipe_serve
from nbhelpers import execute, make_notebook, stream
from test_monitor_of_a_cli_run import FINISH, TALK, WATCH

from mlpipe_jupyter import Pipeline, PythonScriptStep


def test_the_notebook_monitor_shows_a_rest_run_live(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "talk.py").write_text(TALK)
    gate = tmp_path / "gate"
    step = PythonScriptStep("talk.py", name="talk", arguments=[str(gate)], source_directory=str(src),
                            allow_reuse=False)
    published = Pipeline(workspace, [step]).publish(name="talk")
    server = start_mlpipe_serve(workspace, tmp_path)
    try:
        answer = server.post(f"pipelines/{published.id}", json={"ExperimentName": "from-rest"})
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["Id"]
        nb = tmp_path / "watch.ipynb"
        make_notebook(nb, [WATCH.format(workspace=str(workspace.path), run_id=run_id, gate=str(gate)), FINISH])
        executed = execute(nb)
        live = json.loads(stream(executed.cells[0]).splitlines()[-1])
        end = json.loads(stream(executed.cells[1]).splitlines()[-1])
        final = server.get(f"runs/{run_id}").json()
    finally:
        server.stop()
    assert live, "the monitor never showed the lines and metrics while the step ran"
    assert live["status"] == "Running" and live["monitor"] == {"talk": "running"}
    assert [f"line {i}" for i in range(5)] == [ln for ln in live["lines"] if ln.startswith("line")]
    assert live["losses"] == [1.0, 0.5, 1.0 / 3, 0.25, 0.2] and live["plot"]
    assert end["monitor"] == {"talk": "completed"} and "done" in end["lines"]
    assert final["Status"] == "Completed" and final["TriggeredBy"] == "rest"
