"""The run queue behind REST triggers and schedules: a trigger records a Queued run and starts nothing;
dispatchers (one per server) start queued runs as real background processes, never more than their limit
between them and never one run twice; a queued run reads, waits, shows and cancels like any other."""
import threading
import time

import pytest

from mlpipe_jupyter import Pipeline, PythonScriptStep, Workspace
from mlpipe_jupyter.notebook.monitor import RunMonitor
from mlpipe_jupyter.sdk.published import start_queued, trigger
from mlpipe_jupyter.sdk.run import Run
from mlpipe_jupyter.server.dispatcher import Dispatcher

BODY = {"ExperimentName": "queued"}


@pytest.fixture
def published(workspace, tmp_path, write_scripts):
    write_scripts(tmp_path / "src", {"step.py": "import time\ntime.sleep(1.5)\nprint('slept')\n"})
    step = PythonScriptStep("step.py", name="nap", source_directory=str(tmp_path / "src"), allow_reuse=False)
    return Pipeline(workspace, [step]).publish(name="nap")


def status(workspace, run_id):
    return workspace._store.get_run(run_id)["status"]


def wait_final(workspace, run_ids, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(status(workspace, r) in ("Completed", "Failed", "Canceled") for r in run_ids):
            return
        time.sleep(0.1)
    pytest.fail(f"not ended: {[(r, status(workspace, r)) for r in run_ids]}")


def test_a_queued_run_reads_waits_shows_and_cancels_like_any_run(workspace, published):
    first, second = (trigger(workspace, "pipeline", published.id, BODY) for _ in range(2))
    run = Run.get(workspace, first)
    assert run.get_status() == "Queued"
    assert run.get_details()["status"] == "Queued" and run.get_steps() == []
    assert run.get_properties()["mlpipe.triggeredBy"] == "rest"
    with pytest.raises(TimeoutError, match="Queued"):
        run.wait_for_completion(timeout_seconds=0.5)
    monitor = RunMonitor(run)
    assert "queued" in monitor.run_status.value
    Run.get(workspace, second).cancel()
    assert status(workspace, second) == "Canceled"
    assert Dispatcher(str(workspace.path), max_concurrent=4).tick() == [first]  # the canceled one never starts
    run.wait_for_completion(raise_on_error=True)
    monitor.sync()
    assert "nap" in monitor.rows and "completed" in monitor.rows["nap"].status.value
    assert workspace._store.child_runs(second) == []
    assert Dispatcher(str(workspace.path), max_concurrent=4).tick() == []


def test_dispatchers_share_one_limit_and_never_start_a_run_twice(workspace, published):
    queued = [trigger(workspace, "pipeline", published.id, BODY) for _ in range(5)]
    servers = [Dispatcher(str(workspace.path), max_concurrent=2) for _ in range(3)]
    barrier = threading.Barrier(len(servers))
    claimed = []

    def tick(d):
        barrier.wait()
        claimed.extend(d.tick())

    threads = [threading.Thread(target=tick, args=(d,)) for d in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(queued[:2])  # the two oldest, once each, across all three servers
    assert [status(workspace, r) for r in queued[2:]] == ["Queued"] * 3
    assert servers[0].tick() + servers[1].tick() == []  # no free slot while they run
    started = list(claimed)
    deadline = time.time() + 120
    while len(started) < len(queued) and time.time() < deadline:
        running = [r for r in started if status(workspace, r) not in ("Completed", "Failed", "Canceled")]
        assert len(running) <= 2
        for d in servers:
            started += d.tick()
        time.sleep(0.05)
    assert sorted(started) == sorted(queued)
    wait_final(workspace, queued)
    assert [status(workspace, r) for r in queued] == ["Completed"] * 5
    assert all(len(workspace._store.child_runs(r)) == 1 for r in queued)


def test_a_run_canceled_after_its_claim_never_runs(workspace, published):
    run_id = trigger(workspace, "pipeline", published.id, BODY)
    assert workspace._store.claim_queued_runs(1) == [(run_id, workspace._store.queued_request(run_id))]
    assert status(workspace, run_id) == "Preparing"
    Run.get(workspace, run_id).cancel()
    assert start_queued(Workspace(workspace.path), run_id) is None
    assert status(workspace, run_id) == "Canceled" and workspace._store.child_runs(run_id) == []


def test_a_pipeline_disabled_while_its_run_waited_fails_the_run_saying_so(workspace, published):
    run_id = trigger(workspace, "pipeline", published.id, BODY)
    published.disable()
    assert Dispatcher(str(workspace.path), max_concurrent=1).tick() == [run_id]
    wait_final(workspace, [run_id])
    row = workspace._store.get_run(run_id)
    assert row["status"] == "Failed" and "disabled" in row["error"]


def test_a_starter_that_crashes_leaves_its_run_failed_and_says_why(workspace, published):
    run_id = trigger(workspace, "pipeline", published.id, BODY)
    with workspace._store.tx() as db:  # a request this version cannot read
        db.execute("UPDATE run_requests SET request=? WHERE run_id=?", ('{"kind": "pipeline"}', run_id))
    dispatcher = Dispatcher(str(workspace.path), max_concurrent=1)
    assert dispatcher.tick() == [run_id]
    deadline = time.time() + 60
    while status(workspace, run_id) not in ("Completed", "Failed", "Canceled") and time.time() < deadline:
        dispatcher.tick()
        time.sleep(0.1)
    row = workspace._store.get_run(run_id)
    assert row["status"] == "Failed" and "ended before the run finished" in row["error"]
    assert "KeyError" in (workspace._store.run_dir(run_id) / "starter.log").read_text()
