"""A cancel asked through the store reaches a run that is still going and never reopens one that ended."""
from mlpipe_jupyter import Experiment, Run, Workspace


def _top_run(ws, status):
    store = ws._store
    store.ensure_experiment("e")
    run_id = f"run_{status}"
    store.insert_runs([dict(id=run_id, experiment="e", kind="pipeline", parent_id=None, name="p", status=status)])
    return Run(Experiment(ws, "e"), run_id)


def test_cancel_of_an_ended_run_keeps_its_status(tmp_path):
    ws = Workspace.create("w", path=tmp_path)
    for status in ("Completed", "Failed", "Canceled"):
        run = _top_run(ws, status)
        assert ws._store.request_cancel(run.id) is False
        run.cancel()  # no runner in this process: goes through the store
        assert run.get_status() == status
        assert "cancel_requested" not in ws._store.get_run(run.id)["details"]


def test_cancel_of_a_running_run_from_elsewhere_is_recorded_for_its_runner(tmp_path):
    ws = Workspace.create("w", path=tmp_path)
    run = _top_run(ws, "Running")
    run.cancel()
    row = ws._store.get_run(run.id)
    assert row["status"] == "CancelRequested"
    assert row["details"]["cancel_requested"] is True
