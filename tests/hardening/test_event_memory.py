"""The event bus keeps a run's events for late subscribers within a byte budget, and lets them go when
the run ends: a kernel that runs chatty pipelines must not grow by every line they ever printed."""
from helpers import WAIT_SECONDS, wait_until
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, ScriptRunConfig
from mlpipe_jupyter.running.events import Event, EventBus, bus

LINE = "x" * 10_000  # 10 kB log lines, as in the report of an 842 MB kernel
CHATTY = """
import sys
for i in range(int(sys.argv[1])):
    print(f"line {i:06d} " + "y" * 9_000)
"""


def _replayed(events_bus, run_id):
    seen = []
    events_bus.subscribe(seen.append, run_id, replay=True)()
    return seen


def test_a_chatty_run_keeps_a_bounded_history_with_every_status():
    b = EventBus()
    b.publish(Event("run_status", "r", data={"status": "Running"}))
    statuses = 0
    for i in range(5_000):  # 50 MB of log lines
        if i % 500 == 0:
            b.publish(Event("step_status", "r", f"s{i}", f"step_{i}", data={"status": "Running"}))
            statuses += 1
        b.publish(Event("log", "r", "s", "step_1", data={"line": f"{i:06d}{LINE}"}))
        assert b.history_bytes("r") <= b.KEEP_BYTES_PER_RUN
    past = _replayed(b, "r")
    assert [e.kind for e in past].count("step_status") == statuses
    assert past[0].kind == "run_status"
    lines = [e.data["line"] for e in past if e.kind == "log"]
    assert 0 < sum(map(len, lines)) <= b.KEEP_BYTES_PER_RUN
    assert lines[-1].startswith("004999")  # the newest lines are the ones kept
    assert [line[:6] for line in lines] == sorted(line[:6] for line in lines)


def test_all_runs_together_stay_under_the_global_budget():
    b = EventBus()
    for i in range(2_000):  # 20 MB for each of 5 runs, none of them ended
        for run in range(5):
            b.publish(Event("log", f"r{run}", "s", data={"line": LINE}))
    assert b.history_bytes() <= b.KEEP_BYTES
    assert b.history_bytes("r4") > 0  # the newest run still has its recent lines


def test_a_run_lets_its_history_go_when_it_ends():
    b = EventBus()
    for status in ("Running", "Completed"):
        b.publish(Event("step_status", "r", "s", "step_1", data={"status": status}))
    b.publish(Event("log", "r", "s", "step_1", data={"line": LINE}))
    assert b.history_bytes("r") > 0  # a step's end is not the run's end
    seen = []
    b.subscribe(seen.append, "r")
    b.publish(Event("run_status", "r", data={"status": "Failed", "error": "boom"}))
    assert b.history_bytes("r") == 0 and b.history_bytes() == 0
    assert [e.kind for e in seen] == ["run_status"]  # the listener got the last event before it went
    assert _replayed(b, "r") == []


def test_a_single_script_run_ends_with_its_own_step_status():
    b = EventBus()
    b.publish(Event("log", "run_1", "train", "run_1", data={"line": LINE}))
    b.publish(Event("step_status", "run_1", "train", "run_1", data={"status": "Completed"}))
    assert b.history_bytes("run_1") == 0


def test_a_real_run_leaves_nothing_on_the_bus_and_show_output_reads_the_log_file(workspace, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "chatty.py").write_text(CHATTY)
    lines = 1_000  # 9 MB: more than the bus keeps for one run, so the first lines come from the file
    step = PythonScriptStep("chatty.py", name="chatty", source_directory=str(src), arguments=[lines])
    run = Experiment(workspace, "chatty").submit(Pipeline(workspace, [step]))
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    # the run's last event comes just after the store says Completed
    wait_until(lambda: bus.history_bytes(run.id) == 0, "the run's events to be let go")

    capsys.readouterr()
    run.wait_for_completion(show_output=True)
    out = capsys.readouterr().out.splitlines()
    printed = [line for line in out if line.startswith("[chatty] line ")]
    assert len(printed) == lines
    assert printed[0].startswith("[chatty] line 000000 yyy") and printed[-1].startswith("[chatty] line 000999 yyy")
    assert "==> chatty: Completed" in out

    capsys.readouterr()
    run.get_steps()[0].wait_for_completion(show_output=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("line 000000 ") and sum(line.startswith("line ") for line in out) == lines

    script = Experiment(workspace, "chatty").submit(
        ScriptRunConfig(source_directory=str(src), script="chatty.py", arguments=[10]))
    script.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    wait_until(lambda: bus.history_bytes(script.id) == 0, "the script run's events to be let go")
