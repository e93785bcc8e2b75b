"""ScriptRunConfig runs, metrics in Azure's shapes, and log lines streamed as events while a step runs."""
import threading

from helpers import WAIT_SECONDS, run_pipeline, steps_by_name
from mlpipe_jupyter import Experiment, PythonScriptStep, Run, ScriptRunConfig
from mlpipe_jupyter.running.events import bus

TRAIN = """
    import argparse, os
    from mlpipe_jupyter import Run
    p = argparse.ArgumentParser(); p.add_argument("--lr", type=float); p.add_argument("--epochs", type=int)
    a = p.parse_args()
    run = Run.get_context()
    for epoch in range(a.epochs):
        run.log("loss", 1.0 / (epoch + 1))
    run.log("lr", a.lr)
    run.log_list("accuracies", [0.5, 0.75, 0.9])
    run.log_row("curve", x=1, y=0.4)
    run.log_row("curve", x=2, y=0.6)
    run.log_table("table", {"a": [1, 2], "b": [3, 4]})
    run.tag("kind", "demo")
    os.makedirs("outputs/model", exist_ok=True)
    open("outputs/model/weights.txt", "w").write(str(a.lr))
    print("trained for", a.epochs, "epochs")
"""


def test_script_run_config(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"train.py": TRAIN})
    config = ScriptRunConfig(source_directory=str(src), script="train.py", arguments=["--lr", 0.1, "--epochs", 3])
    run = Experiment(workspace, "scripts").submit(config)
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)

    assert run.get_status() == "Completed"
    assert run.get_metrics() == {
        "loss": [1.0, 0.5, 1.0 / 3],
        "lr": 0.1,
        "accuracies": [0.5, 0.75, 0.9],
        "curve": {"x": [1, 2], "y": [0.4, 0.6]},
        "table": {"a": [1, 2], "b": [3, 4]},
    }
    assert run.get_metrics("lr") == {"lr": 0.1}
    assert run.get_tags()["kind"] == "demo"
    names = run.get_file_names()
    assert "outputs/model/weights.txt" in names and "logs/std_log.txt" in names
    target = run.download_file("outputs/model/weights.txt", str(tmp_path / "w.txt"))
    assert open(target).read() == "0.1"
    assert "trained for 3 epochs" in run.get_log_text()

    again = Run.get(workspace, run.id)
    assert type(again) is Run and again.id == run.id and again.get_status() == "Completed"
    assert again.get_metrics()["lr"] == 0.1
    assert again.type == "azureml.scriptrun"
    assert [r.id for r in Experiment(workspace, "scripts").get_runs()] == [run.id]


def test_script_run_is_never_reused(workspace, tmp_path, write_scripts):
    trace = tmp_path / "trace.txt"
    src = write_scripts(tmp_path / "src", {"hello.py": "import sys\nopen(sys.argv[1], 'a').write('ran\\n')\n"})
    for _ in range(2):
        run = Experiment(workspace, "scripts").submit(
            ScriptRunConfig(source_directory=str(src), script="hello.py", arguments=[str(trace)]))
        run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    assert trace.read_text() == "ran\nran\n"


PING = '''
    """Prints a line, then waits (bounded) until the test has seen it as an event and answered."""
    import os, sys, time
    print("ping", flush=True)
    for _ in range(400):
        if os.path.exists(sys.argv[1]):
            print("got pong")
            sys.exit(0)
        time.sleep(0.05)
    print("no pong: the log line did not arrive while the step ran")
    sys.exit(1)
'''


def test_log_lines_arrive_as_events_while_the_step_runs(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"ping.py": PING})
    pong = tmp_path / "pong"
    events = []
    lock = threading.Lock()

    def collect(event):
        with lock:
            events.append(event)
        if event.kind == "log" and event.data["line"] == "ping":
            pong.touch()

    unsubscribe = bus.subscribe(collect)
    try:
        step = PythonScriptStep("ping.py", name="ping", source_directory=str(src), arguments=[str(pong)])
        run = run_pipeline(workspace, [step])
    finally:
        unsubscribe()

    assert run.get_status() == "Completed", run.get_details().get("error")
    mine = [e for e in events if e.run_id == run.id]
    logs = [e.data["line"] for e in mine if e.kind == "log"]
    assert logs == ["ping", "got pong"]
    step_run = steps_by_name(run)["ping"]
    assert all(e.step == "ping" and e.step_run_id == step_run.id for e in mine if e.kind == "log")
    step_statuses = [e.data["status"] for e in mine if e.kind == "step_status"]
    assert step_statuses == ["Queued", "Running", "Completed"]
    run_statuses = [e.data["status"] for e in mine if e.kind == "run_status"]
    assert run_statuses == ["Running", "Completed"]


def test_metric_events(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"train.py": TRAIN})
    events = []
    unsubscribe = bus.subscribe(events.append)
    try:
        step = PythonScriptStep("train.py", name="train",
                                source_directory=str(src), arguments=["--lr", 0.5, "--epochs", 2])
        run = run_pipeline(workspace, [step])
    finally:
        unsubscribe()
    metrics = [(e.data["name"], e.data["value"]) for e in events if e.kind == "metric" and e.run_id == run.id]
    assert ("loss", 1.0) in metrics and ("loss", 0.5) in metrics and ("lr", 0.5) in metrics
    assert steps_by_name(run)["train"].get_metrics()["curve"] == {"x": [1, 2], "y": [0.4, 0.6]}
    assert run.get_metrics(recursive=True)[steps_by_name(run)["train"].id]["lr"] == 0.5
