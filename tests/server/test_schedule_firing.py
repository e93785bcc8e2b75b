"""Schedules fired by real servers: a Minute schedule (its minute shortened by the test-only setting
MlpipeServer.schedule_minute_seconds) on both kinds of server, with the REST list, enable and disable;
one run after downtime, never a burst; two servers on one workspace firing each slot once; and a
datastore schedule giving one run, with the folder as its DataPath parameter, for a multi-file upload."""
import json
import time

import pytest
from helpers import start_jupyter_server, start_mlpipe_serve

from mlpipe_jupyter import (DataPath, DataPathComputeBinding, Datastore, Pipeline, PipelineParameter,
                            PythonScriptStep, Workspace)
from mlpipe_jupyter.sdk.published import TRIGGERED_BY
from mlpipe_jupyter.sdk.schedule import Schedule, ScheduleRecurrence

STARTS = {"mlpipe serve": start_mlpipe_serve, "jupyter server": start_jupyter_server}


def make_workspace(tmp_path):
    """A workspace with a published one-step pipeline taking a DataPath parameter ``folder``."""
    ws = Workspace.create("sched", path=tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "show.py").write_text("import sys\nprint('folder is', sys.argv[-1])\n")
    Datastore.register_local(ws, "drop", tmp_path / "incoming")
    folder = (PipelineParameter("folder", DataPath(Datastore(ws, "drop"), "batch")), DataPathComputeBinding())
    step = PythonScriptStep("show.py", name="show", arguments=[folder], inputs=[folder], source_directory=str(src),
                            allow_reuse=False)
    return ws, Pipeline(ws, [step]).publish(name="show")


def serve(kind, ws, tmp, **settings):
    """A server of ``kind`` whose MlpipeServer settings (ticks, the test-only time knobs) come from its config."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config").mkdir(exist_ok=True)
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps({"MlpipeServer": settings}))
    return STARTS[kind](ws, tmp)


def wait_for(predicate, timeout=60, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def runs_of(schedule):
    return Schedule.get(schedule._workspace, schedule.id).get_pipeline_runs()


@pytest.mark.parametrize("kind", ["mlpipe serve", "jupyter server"])
def test_minute_schedule_fires_until_disabled_over_rest(kind, tmp_path):
    ws, published = make_workspace(tmp_path)
    schedule = Schedule.create(ws, "often", published.id, "scheduled", recurrence=ScheduleRecurrence("Minute", 1))
    server = serve(kind, ws, tmp_path / "server", schedule_tick_seconds=0.2, schedule_minute_seconds=2)
    try:
        run = wait_for(lambda: Schedule.get(ws, schedule.id).get_last_pipeline_run(), what="a first run")
        run.wait_for_completion(raise_on_error=True)
        assert run.get_properties()[TRIGGERED_BY] == f"schedule:{schedule.id}"
        assert "folder is" in run.get_steps()[0].get_log_text()
        wait_for(lambda: len(runs_of(schedule)) >= 2, what="a second run")

        listed = server.get("schedules").json()["Value"]
        assert [s["Id"] for s in listed] == [schedule.id]
        assert listed[0]["Status"] == "Active" and listed[0]["Recurrence"]["Frequency"] == "Minute"
        assert listed[0]["LastRunId"] in {r.id for r in runs_of(schedule)} and listed[0]["LastError"] is None

        answer = server.post(f"schedules/{schedule.id}/disable")
        assert answer.status_code == 200 and answer.json()["Status"] == "Disabled"
        time.sleep(1.5)  # a firing claimed just before the disable may still be starting its run
        count = len(runs_of(schedule))
        time.sleep(5)  # two and a half slots
        assert len(runs_of(schedule)) == count
        assert server.post("schedules/nope/enable").status_code == 404
        answer = server.post(f"schedules/{schedule.id}/enable")
        assert answer.status_code == 200 and answer.json()["Status"] == "Active"
        wait_for(lambda: len(runs_of(schedule)) > count, what="a run after enable")
    finally:
        Schedule.get(ws, schedule.id).disable()
        server.stop()


def test_a_schedule_due_during_downtime_fires_once_at_start(tmp_path):
    ws, published = make_workspace(tmp_path)
    schedule = Schedule.create(ws, "hourly", published.id, "scheduled", recurrence=ScheduleRecurrence("Hour", 1))
    ws._store.update_schedule(schedule.id, next_due=time.time() - 3 * 86400)  # no server for three days
    server = serve("mlpipe serve", ws, tmp_path / "server", schedule_tick_seconds=0.2)
    try:
        wait_for(lambda: runs_of(schedule), what="the run of the missed slots")
        time.sleep(3)
        assert len(runs_of(schedule)) == 1
        assert Schedule.get(ws, schedule.id).next_run_time > time.time()
    finally:
        server.stop()


def test_two_servers_on_one_workspace_fire_each_slot_once(tmp_path):
    ws, published = make_workspace(tmp_path)
    slot = 3.0
    servers = [serve("mlpipe serve", ws, tmp_path / f"server{i}", schedule_tick_seconds=0.1,
                     schedule_minute_seconds=slot) for i in range(2)]
    try:
        schedule = Schedule.create(ws, "often", published.id, "scheduled", recurrence=ScheduleRecurrence("Minute", 1))
        time.sleep(4 * slot)
        schedule.disable()
        time.sleep(1.5)
        created = sorted(ws._store.get_run(r.id)["created"] for r in runs_of(schedule))
        assert 4 <= len(created) <= 6, created
        gaps = [b - a for a, b in zip(created, created[1:])]
        assert min(gaps) > slot / 2, gaps  # a slot fired twice would give two runs moments apart
        assert all(s.proc.poll() is None for s in servers)
    finally:
        for s in servers:
            s.stop()


def test_datastore_schedule_runs_once_for_a_multi_file_upload(tmp_path):
    ws, published = make_workspace(tmp_path)
    batch = tmp_path / "incoming" / "batch"
    batch.mkdir(parents=True)
    schedule = Schedule.create(ws, "on upload", published.id, "scheduled", datastore=Datastore(ws, "drop"),
                               path_on_datastore="batch", data_path_parameter_name="folder", polling_interval=1)
    server = serve("mlpipe serve", ws, tmp_path / "server", schedule_tick_seconds=0.1, schedule_poll_seconds=0.5)
    try:
        time.sleep(2)
        assert runs_of(schedule) == []  # nothing new yet
        for i in range(4):
            (batch / f"part{i}.csv").write_text(f"{i}\n")
            time.sleep(0.2)
        run = wait_for(lambda: Schedule.get(ws, schedule.id).get_last_pipeline_run(), what="the upload's run")
        time.sleep(3)
        assert [r.id for r in runs_of(schedule)] == [run.id]
        run.wait_for_completion(raise_on_error=True)
        assert str(batch) in run.get_steps()[0].get_log_text()
        listed = server.get("schedules").json()["Value"][0]
        assert (listed["Recurrence"], listed["DataStoreName"], listed["PathOnDatastore"], listed["PollingInterval"]) \
            == (None, "drop", "batch", 1)
    finally:
        server.stop()
