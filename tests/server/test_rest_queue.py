"""The run queue on a real ``mlpipe serve``: REST triggers answer Queued runs, the server runs at most
``max_concurrent_runs`` at once, a queued run reads and cancels over REST, a server stopping never ends a
running run, and what is still queued starts with the next server."""
import json
import time

import pytest

from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace

from helpers import start_mlpipe_serve

FINAL = ("Completed", "Failed", "Canceled")


def with_limit(tmp, limit):
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    (tmp / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"MlpipeServer": {"max_concurrent_runs": limit}}))
    return tmp


def wait_for(predicate, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_queued_runs_wait_for_a_slot_cancel_and_outlive_the_server(tmp_path, write_scripts):
    ws = Workspace.create("queue", path=tmp_path / "ws")
    write_scripts(tmp_path / "src", {"step.py": "import time\ntime.sleep(3)\nprint('done')\n"})
    step = PythonScriptStep("step.py", name="nap", source_directory=str(tmp_path / "src"), allow_reuse=False)
    published = Pipeline(ws, [step]).publish(name="nap")
    server = start_mlpipe_serve(ws, with_limit(tmp_path / "one", 1))
    try:
        answers = [server.post(f"pipelines/{published.id}", json={"ExperimentName": "q"}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200] * 3
        assert [a.json()["Status"] for a in answers] == ["Queued"] * 3
        first, second, third = (a.json()["Id"] for a in answers)
        third_now = server.get(f"runs/{third}").json()
        assert (third_now["Status"], third_now["Steps"]) == ("Queued", [])
        assert server.post(f"runs/{third}/cancel").json() == {"Id": third, "Status": "Canceled"}
        wait_for(lambda: ws._store.get_run(first)["status"] == "Running", "the first run to run")
        time.sleep(1)
        assert ws._store.get_run(second)["status"] == "Queued"  # one slot, taken
    finally:
        server.stop()
    wait_for(lambda: ws._store.get_run(first)["status"] in FINAL, "the first run to end without its server")
    assert ws._store.get_run(first)["status"] == "Completed"
    assert ws._store.get_run(second)["status"] == "Queued"
    server = start_mlpipe_serve(ws, with_limit(tmp_path / "two", 1))
    try:
        wait_for(lambda: ws._store.get_run(second)["status"] in FINAL, "the queued run to run on the next server")
        assert server.get(f"runs/{second}").json()["Status"] == "Completed"
        assert server.get(f"runs/{third}").json()["Status"] == "Canceled"
    finally:
        server.stop()
    assert ws._store.child_runs(third) == []
