"""Schedules in the SDK: Azure's checks of a recurrence and of a schedule, the next fire times on a fake
clock, and the scheduler's tick (claim once, skip missed slots, record failures) on real runs."""
import datetime as dt

import pytest

from mlpipe_jupyter import DataPath, DataPathComputeBinding, Datastore, Pipeline, PipelineParameter, PythonScriptStep
from mlpipe_jupyter.errors import NotFoundError, UserError
from mlpipe_jupyter.sdk.published import TRIGGERED_BY, PipelineEndpoint
from mlpipe_jupyter.sdk.schedule import Schedule, ScheduleRecurrence, TimeZone
from mlpipe_jupyter.server.dispatcher import Dispatcher
from mlpipe_jupyter.server.scheduler import Scheduler


def utc(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


@pytest.fixture(autouse=True)
def dispatcher(workspace):
    """What a server does beside its scheduler: start the runs the schedules queue."""
    d = Dispatcher(str(workspace.path), max_concurrent=2, tick_seconds=0.1)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def published(workspace, tmp_path, write_scripts):
    write_scripts(tmp_path / "src", {"step.py": """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--n", type=int)
        p.add_argument("--folder")
        a = p.parse_args()
        print("n is", a.n, "folder", a.folder)
    """})
    (tmp_path / "incoming").mkdir()
    Datastore.register_local(workspace, "drop", tmp_path / "incoming")
    folder = (PipelineParameter("folder", DataPath(Datastore(workspace, "drop"), "batch")),
              DataPathComputeBinding(mode="mount"))
    step = PythonScriptStep("step.py", name="count", arguments=["--n", PipelineParameter("n", 2), "--folder", folder],
                            inputs=[folder], source_directory=str(tmp_path / "src"), allow_reuse=False)
    return Pipeline(workspace, [step]).publish(name="counting")


# -- recurrence checks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, culprit", [
    (dict(frequency="Second", interval=1), "frequency 'Second'"),
    (dict(frequency="Day", interval=0), "interval 0"),
    (dict(frequency="Day", interval=1.5), "interval 1.5"),
    (dict(frequency="Hour", interval=1, hours=[3]), "not 'Hour'"),
    (dict(frequency="Month", interval=1, minutes=[3]), "not 'Month'"),
    (dict(frequency="Day", interval=1, week_days=["Monday"]), "week_days apply only"),
    (dict(frequency="Day", interval=1, hours=[24]), "hours must be"),
    (dict(frequency="Week", interval=1, minutes=[60]), "minutes must be"),
    (dict(frequency="Week", interval=1, week_days=["Funday"]), "week_days must be"),
    (dict(frequency="Day", interval=1, time_of_day="25:00"), "time_of_day must be"),
    (dict(frequency="Day", interval=1, time_of_day="10:00", hours=[3]), "either time_of_day or hours"),
    (dict(frequency="Day", interval=1, start_time="tomorrow"), "start_time 'tomorrow'"),
    (dict(frequency="Day", interval=1, start_time=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)), "tzinfo"),
    (dict(frequency="Day", interval=1, time_zone="Mars Standard Time"), "time_zone 'Mars Standard Time'"),
])
def test_bad_recurrence_is_one_clear_error_at_create(workspace, published, kwargs, culprit):
    with pytest.raises(UserError, match="ScheduleRecurrence") as e:
        Schedule.create(workspace, "s", published.id, "exp", recurrence=ScheduleRecurrence(**kwargs))
    assert culprit in str(e.value) and "\n" not in str(e.value)
    assert Schedule.list(workspace, active_only=False) == []


def test_time_zones_are_azures_windows_names():
    assert TimeZone.UTC.value == "UTC"
    assert TimeZone.PacificStandardTime.value == "Pacific Standard Time"
    assert TimeZone.WEuropeStandardTime.value == "W. Europe Standard Time"


# -- next fire times ---------------------------------------------------------------------------------------
def times(recurrence, now, count=3):
    recurrence.validate()
    anchor = recurrence.anchor(now)
    found = [recurrence.first_time(now, anchor)]
    while len(found) < count:
        found.append(recurrence.next_time(found[-1], anchor))
    return [iso(t) for t in found]


def test_without_a_start_time_the_first_run_is_at_once():
    now = utc(2030, 3, 4, 10, 7, 30)
    assert times(ScheduleRecurrence("Hour", 2), now) == ["2030-03-04 10:07", "2030-03-04 12:07", "2030-03-04 14:07"]
    assert times(ScheduleRecurrence("Day", 2, hours=[22], minutes=[30]), now) == [
        "2030-03-04 10:07", "2030-03-04 22:30", "2030-03-06 22:30"]


def test_a_past_start_time_runs_first_at_the_next_computed_time():
    now = utc(2030, 3, 4, 10, 7)
    assert times(ScheduleRecurrence("Minute", 15, start_time="2030-03-04T09:00:00"), now) == [
        "2030-03-04 10:15", "2030-03-04 10:30", "2030-03-04 10:45"]


def test_a_future_start_time_is_the_first_run_unless_a_pattern_says_otherwise():
    now = utc(2030, 3, 4, 10, 7)
    assert times(ScheduleRecurrence("Month", 1, start_time="2030-04-30T08:00:00"), now, 2) == [
        "2030-04-30 08:00", "2030-05-30 08:00"]
    # start_time matches the pattern: Azure runs first at the next computed time, not at start_time
    assert times(ScheduleRecurrence("Day", 1, start_time="2030-04-01T08:00:00", time_of_day="08:00"), now, 2) == [
        "2030-04-02 08:00", "2030-04-03 08:00"]


def test_week_days_and_time_zone_follow_the_wall_clock():
    now = utc(2030, 3, 6, 12, 0)  # a Wednesday; US summer time starts on Sunday 10 March 2030
    rec = ScheduleRecurrence("Week", 1, start_time="2030-03-01T00:00:00", time_zone=TimeZone.PacificStandardTime,
                             week_days=["Monday", "Friday"], time_of_day="09:30")
    assert times(rec, now, 3) == ["2030-03-08 17:30", "2030-03-11 16:30", "2030-03-15 16:30"]


def test_minute_seconds_shortens_only_minute_schedules():
    rec = ScheduleRecurrence("Minute", 3)
    assert rec.next_time(95.0, 90.0, minute_seconds=2) == 96.0
    assert rec.next_time(96.0, 90.0, minute_seconds=2) == 102.0
    assert rec.next_time(100.0, 90.0) == 270.0
    assert ScheduleRecurrence("Hour", 1).next_time(100.0, 90.0, minute_seconds=2) == 3690.0


# -- the SDK -----------------------------------------------------------------------------------------------
def test_create_get_list_update_disable_enable(workspace, published):
    rec = ScheduleRecurrence("Day", 2, hours=[22], minutes=[30])
    s = Schedule.create(workspace, "nightly", published.id, "exp", recurrence=rec, description="d",
                        pipeline_parameters={"n": 5}, wait_for_provisioning=True)
    assert (s.name, s.description, s.status, s.pipeline_id, s.pipeline_endpoint_id, s.experiment_name) == \
        ("nightly", "d", "Active", published.id, None, "exp")
    assert s.pipeline_parameters == {"n": 5}
    assert s.recurrence.to_dict() == rec.to_dict()
    assert Schedule.get(workspace, s.id).recurrence.hours == [22]
    assert [x.id for x in Schedule.list(workspace, pipeline_id=published.id)] == [s.id]
    assert [x.id for x in Schedule.get_all(workspace)] == [s.id] and s.provisioning_status == "Completed"
    s.disable(wait_for_provisioning=True)
    assert Schedule.get(workspace, s.id).status == "Disabled"
    assert Schedule.list(workspace) == []
    assert [x.id for x in Schedule.list(workspace, active_only=False)] == [s.id]
    assert [x.id for x in Schedule.get_schedules_for_pipeline_id(workspace, published.id)] == [s.id]
    s.enable()
    s.update(name="renamed", recurrence=ScheduleRecurrence("Hour", 2), status="Active")
    again = Schedule.get(workspace, s.id)
    assert (again.name, again.recurrence.frequency, again.status) == ("renamed", "Hour", "Active")
    with pytest.raises(NotFoundError, match="No schedule with id 'nope'"):
        Schedule.get(workspace, "nope")
    newer = Schedule.create(workspace, "newer", published.id, "exp", recurrence=ScheduleRecurrence("Hour", 1))
    assert [x.name for x in Schedule.list(workspace)] == [newer.name, "renamed"]  # newest first


def test_create_checks_everything_before_recording(workspace, published):
    rec = ScheduleRecurrence("Hour", 1)
    cases = [
        (dict(pipeline_id="missing", recurrence=rec), "No published pipeline with id 'missing'"),
        (dict(pipeline_id=published.id), "either a recurrence"),
        (dict(pipeline_id=published.id, recurrence=rec, datastore="drop"), "either a recurrence"),
        (dict(pipeline_id=published.id, recurrence=rec, pipeline_parameters={"m": 1}), "'m' is not a parameter"),
        (dict(pipeline_id=published.id, recurrence=rec, pipeline_parameters={"n": "two"}), "takes an integer"),
        (dict(pipeline_id=published.id, datastore="nowhere"), "No datastore named 'nowhere'"),
        (dict(pipeline_id=published.id, datastore="drop", polling_interval=0), "polling_interval"),
        (dict(pipeline_id=published.id, datastore="drop", path_on_datastore="../x"), "escapes datastore 'drop'"),
        (dict(pipeline_id=published.id, datastore="drop", data_path_parameter_name="nope"), "'nope' is not a param"),
        (dict(pipeline_id=published.id, recurrence=rec, path_on_datastore="x"), "path_on_datastore applies"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message):
            Schedule.create(workspace, "s", experiment_name="exp", **kwargs)
    assert Schedule.list(workspace, active_only=False) == []


def test_endpoint_schedule(workspace, published):
    endpoint = PipelineEndpoint.publish(workspace, "ep", "an endpoint", published)
    s = Schedule.create_for_pipeline_endpoint(workspace, "ep schedule", endpoint.id, "exp",
                                              recurrence=ScheduleRecurrence("Day", 1))
    assert s.pipeline_endpoint_id == endpoint.id and s.pipeline_id is None
    assert [x.id for x in Schedule.get_schedules_for_pipeline_endpoint_id(workspace, endpoint.id)] == [s.id]


# -- the scheduler's tick, on a fake clock ----------------------------------------------------------------
class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_two_schedulers_fire_a_due_slot_once_and_skip_missed_slots(workspace, published):
    s = Schedule.create(workspace, "hourly", published.id, "exp", recurrence=ScheduleRecurrence("Hour", 1))
    created = s.next_run_time
    clock = Clock(created + 3 * 86400 + 60)  # three days without a server: 72 slots missed
    first, second = Scheduler(str(workspace.path), clock=clock), Scheduler(str(workspace.path), clock=clock)
    started = first.tick() + second.tick()
    assert len(started) == 1
    assert Schedule.get(workspace, s.id).next_run_time == created + 73 * 3600  # the first slot after now
    assert first.tick() + second.tick() == []
    run = Schedule.get(workspace, s.id).get_last_pipeline_run()
    assert run.id == started[0]
    run.wait_for_completion(raise_on_error=True)
    assert run.get_properties()[TRIGGERED_BY] == f"schedule:{s.id}"
    assert [r.id for r in s.get_pipeline_runs()] == started


def test_a_disabled_pipeline_is_recorded_on_the_schedule_and_the_loop_goes_on(workspace, published):
    broken = Schedule.create(workspace, "broken", published.id, "exp", recurrence=ScheduleRecurrence("Hour", 1))
    published.disable()
    clock = Clock(broken.next_run_time + 1)
    assert Scheduler(str(workspace.path), clock=clock).tick() == []
    assert "disabled" in Schedule.get(workspace, broken.id).last_error
    published.enable()
    clock.now += 3600
    started = Scheduler(str(workspace.path), clock=clock).tick()
    assert len(started) == 1 and Schedule.get(workspace, broken.id).last_error is None


def test_datastore_schedule_fires_once_for_a_batch_that_held_still(workspace, published, tmp_path):
    incoming = tmp_path / "incoming" / "batch"
    incoming.mkdir()
    (incoming / "old.csv").write_text("already there\n")
    s = Schedule.create(workspace, "on data", published.id, "exp", datastore=Datastore(workspace, "drop"),
                        path_on_datastore="batch", data_path_parameter_name="folder", polling_interval=1)
    clock = Clock(s.next_run_time)
    scheduler = Scheduler(str(workspace.path), clock=clock, poll_seconds=10)

    def poll():
        clock.now += 10
        return scheduler.tick()

    assert poll() == []  # nothing new
    (incoming / "a.csv").write_text("1\n")
    assert poll() == []  # changed: wait until it holds still
    (incoming / "b.csv").write_text("2\n")
    assert poll() == []  # still changing
    started = poll()
    assert len(started) == 1
    assert poll() == [] and poll() == []
    run = Schedule.get(workspace, s.id).get_last_pipeline_run()
    run.wait_for_completion(raise_on_error=True)
    assert "folder" in run.get_steps()[0].get_log_text() and "batch" in run.get_steps()[0].get_log_text()


def test_the_schedules_continue_on_step_failure_overrides_the_pipelines(workspace, tmp_path, write_scripts):
    write_scripts(tmp_path / "two", {"bad.py": "raise SystemExit('bad')\n",
                                     "side.py": "import time\ntime.sleep(2)\nprint('side done')\n"})
    steps = [PythonScriptStep(f"{n}.py", name=n, source_directory=str(tmp_path / "two"), allow_reuse=False)
             for n in ("bad", "side")]
    published = Pipeline(workspace, steps).publish(name="two", continue_on_step_failure=False)
    goes_on = Schedule.create(workspace, "goes on", published.id, "exp", recurrence=ScheduleRecurrence("Day", 1),
                              continue_on_step_failure=True)
    stops = Schedule.create(workspace, "stops", published.id, "exp", recurrence=ScheduleRecurrence("Day", 1))
    clock = Clock(max(goes_on.next_run_time, stops.next_run_time) + 1)
    assert len(Scheduler(str(workspace.path), clock=clock).tick()) == 2
    side = {}
    for s in (goes_on, stops):
        run = Schedule.get(workspace, s.id).get_last_pipeline_run()
        run.wait_for_completion(raise_on_error=False)
        side[s.name] = run.find_step_run("side")[0].get_status()
    assert side == {"goes on": "Completed", "stops": "Canceled"}


def test_a_datastore_that_cannot_be_read_is_recorded_and_the_others_still_fire(workspace, published, tmp_path):
    watched = tmp_path / "incoming" / "watched"
    watched.mkdir()
    watcher = Schedule.create(workspace, "watcher", published.id, "exp", datastore="drop", path_on_datastore="watched")
    hourly = Schedule.create(workspace, "hourly", published.id, "exp", recurrence=ScheduleRecurrence("Hour", 1))
    watched.rmdir()
    watched.symlink_to(tmp_path / "src")  # now leads outside the datastore
    clock = Clock(max(watcher.next_run_time, hourly.next_run_time) + 1)
    started = Scheduler(str(workspace.path), clock=clock).tick()
    assert len(started) == 1 and Schedule.get(workspace, hourly.id).last_run_id == started[0]
    error = Schedule.get(workspace, watcher.id).last_error
    assert error.startswith("Schedule 'watcher' could not be checked:") and "leads outside it" in error
    assert Schedule.get(workspace, watcher.id).next_run_time > clock.now  # polled again later, not every tick
