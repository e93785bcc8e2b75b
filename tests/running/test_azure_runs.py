"""Runs, logs and interactive runs as Azure ML SDK v1 shows them, against real local subprocess steps."""
import getpass
import os
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS, run_pipeline, steps_by_name
from mlpipe_jupyter import Experiment, PipelineData, PythonScriptStep, Run, ScriptRunConfig, UserError
from mlpipe_jupyter.sdk.run import PortDataReference, StepRunOutput

SCRIPTS = {
    "first.py": """
        import os, sys, time
        out = sys.argv[sys.argv.index("--out") + 1]
        open(os.path.join(out, "data.txt"), "w").write("payload")
        print("first to stdout")
        print("first to stderr", file=sys.stderr)
    """,
    "second.py": """
        import sys
        print("second read", open(sys.argv[sys.argv.index("--data") + 1] + "/data.txt").read())
    """,
}


@pytest.fixture
def two_steps(tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", SCRIPTS)
    data = PipelineData("data")
    first = PythonScriptStep("first.py", name="first", source_directory=str(src), outputs=[data],
                             arguments=["--out", data, "--flag", "x"])
    second = PythonScriptStep("second.py", name="second", source_directory=str(src), inputs=[data],
                              arguments=["--data", data])
    return first, second


def test_steps_are_listed_latest_first(workspace, two_steps):
    first, second = two_steps
    run = run_pipeline(workspace, [first, second])
    assert run.get_status() == "Completed"
    assert [s.name for s in run.get_steps()] == ["second", "first"]
    assert [s.name for s in run.get_children()] == ["second", "first"]
    assert [s.name for s in run.steps_in_plan_order()] == ["first", "second"]


def test_step_logs_under_azure_names(workspace, two_steps, tmp_path):
    run = run_pipeline(workspace, list(two_steps))
    step = steps_by_name(run)["first"]
    text = step.get_job_log()
    assert "first to stdout" in text and "first to stderr" in text
    assert step.get_stdout_log() == text and step.get_stderr_log() == text
    logs = step.get_details()["logFiles"]
    assert {"logs/std_log.txt", "user_logs/std_log.txt", "azureml-logs/70_driver_log.txt"} <= set(logs)
    # the same file under each name, linked when the step ended
    inodes = {os.stat(logs[n]).st_ino for n in ("logs/std_log.txt", "user_logs/std_log.txt",
                                                 "azureml-logs/70_driver_log.txt")}
    assert len(inodes) == 1
    with_logs = step.get_details_with_logs()
    assert with_logs["logFiles"]["user_logs/std_log.txt"] == text
    assert "user_logs/std_log.txt" in step.get_file_names()

    written = step.get_all_logs(destination=tmp_path / "logs_out")
    assert sorted(Path(p).relative_to(tmp_path / "logs_out").as_posix() for p in written) == sorted(logs)
    assert Path(written[0]).read_text() == text
    everything = run.get_all_logs(destination=tmp_path / "all")
    assert str(tmp_path / "all" / step.id / "user_logs" / "std_log.txt") in everything


def test_details_carry_azure_fields(workspace, two_steps):
    run = run_pipeline(workspace, list(two_steps))
    steps = steps_by_name(run)
    details = steps["first"].get_details()
    assert details["properties"]["azureml.runsource"] == "azureml.StepRun"
    assert run.get_details()["properties"]["azureml.runsource"] == "azureml.PipelineRun"
    assert details["submittedBy"] == getpass.getuser()
    definition = details["runDefinition"]
    assert definition["script"] == "first.py"
    assert definition["arguments"] == ["--out", "$AZUREML_DATAREFERENCE_data", "--flag", "x"]
    assert definition["target"] == "local"
    assert definition["environment"]["name"]
    assert [o["outputDetails"]["outputName"] for o in details["outputDatasets"]] == ["data"]
    assert details["inputDatasets"] == []
    assert run.get_details()["runDefinition"] == {}


def test_script_run_source_is_experiment(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "s", {"hello.py": "print('hi')\n"})
    run = Experiment(workspace, "scripts").submit(ScriptRunConfig(source_directory=str(src), script="hello.py"))
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    details = run.get_details()
    assert details["properties"]["azureml.runsource"] == "experiment"
    assert run.type == "azureml.scriptrun"
    assert details["runDefinition"]["script"] == "hello.py"


def test_output_references_use_azure_paths(workspace, two_steps, tmp_path):
    run = run_pipeline(workspace, list(two_steps))
    step = steps_by_name(run)["first"]
    output = step.get_output("data")
    assert isinstance(output, StepRunOutput) and set(step.get_outputs()) == {"data"}
    ref = output.get_port_data_reference()
    assert isinstance(ref, PortDataReference) and isinstance(step.get_output_data("data"), PortDataReference)
    assert ref.path_on_datastore == f"azureml/{step.id}/data"
    assert ref.datastore_name == "workspaceblobstore"
    where = ref.download(str(tmp_path / "dl"))
    assert where == str(tmp_path / "dl" / "azureml" / step.id / "data")
    assert (Path(where) / "data.txt").read_text() == "payload"
    with pytest.raises(UserError):
        ref.download(str(tmp_path / "dl"))
    # a reused step's output is where the run that made it put it
    again = run_pipeline(workspace, list(two_steps))
    reused = steps_by_name(again)["first"]
    assert reused.reused
    assert reused.get_output_data("data").path_on_datastore == f"azureml/{step.id}/data"


def test_interactive_run(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "code.py").write_text("x = 1\n")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "model.txt").write_text("weights")
    (tmp_path / "notes.txt").write_text("notes")
    exp = Experiment(workspace, "interactive")
    run = exp.start_logging(snapshot_directory=str(tmp_path / "snap"), display_name="by hand")
    assert run.get_status() == "Running"
    run.log("accuracy", 0.5)
    run.log("accuracy", 0.75)
    run.log_list("losses", [3, 2, 1])
    run.log_row("table", epoch=1, loss=0.3)
    run.log_row("table", epoch=2, loss=0.2)
    run.log_image("picture", path=str(tmp_path / "notes.txt"))
    run.tag("owner", "me")
    run.upload_file("extra/notes.txt", str(tmp_path / "notes.txt"))
    run.upload_folder("snapcopy", str(tmp_path / "snap"))
    with pytest.raises(UserError):
        run.upload_file("../escape.txt", str(tmp_path / "notes.txt"))
    run.complete()
    assert run.get_status() == "Completed"

    again = Run.get(workspace, run.id)
    assert again.name == "by hand" and again.type == "azureml.scriptrun"
    metrics = again.get_metrics()
    assert metrics["accuracy"] == [0.5, 0.75] and metrics["losses"] == [3, 2, 1]
    assert metrics["table"] == {"epoch": [1, 2], "loss": [0.3, 0.2]}
    assert again.get_tags() == {"owner": "me"}
    names = again.get_file_names()
    assert {"extra/notes.txt", "snapcopy/code.py", "outputs/model.txt"} <= set(names)
    assert any(n.startswith("images/picture_") for n in names)
    details = again.get_details()
    assert details["properties"]["azureml.runsource"] == "experiment" and details["snapshotId"]
    assert [r.id for r in exp.get_runs()] == [run.id]


def test_interactive_run_as_context_manager(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = Experiment(workspace, "ctx")
    with exp.start_logging(outputs=False) as run:
        assert run.get_status() == "Running"
        run.log("n", 1)
    assert run.get_status() == "Completed"
    with pytest.raises(ZeroDivisionError):
        with exp.start_logging() as failing:
            1 / 0
    assert failing.get_status() == "Failed"
    assert "ZeroDivisionError" in failing.get_details()["error"]["message"]


def test_runs_ended_by_their_runner_refuse_complete(workspace, two_steps):
    run = run_pipeline(workspace, list(two_steps))
    with pytest.raises(NotImplementedError):
        run.get_steps()[0].complete()
    with pytest.raises(NotImplementedError):
        run.fail()


PARENT_SCRIPT = """
    from mlpipe_jupyter import Run
    run = Run.get_context()
    parent = run.parent
    parent.log("from_step", 3)
    parent.log_list("series", [1, 2])
    parent.tag("team", "a")
    run.log("own", 1)
    details = parent.get_details()
    print("PARENT", details["runId"], details["properties"]["azureml.runsource"], details["status"])
    ws = run.experiment.workspace
    print("WS", type(ws).__name__, ws.name, ws.path)
"""


def test_step_logs_and_tags_on_its_pipeline_run(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "p", {"child.py": PARENT_SCRIPT})
    run = run_pipeline(workspace, [PythonScriptStep("child.py", name="child", source_directory=str(src))])
    assert run.get_status() == "Completed", run.get_details().get("error")
    step = run.get_steps()[0]
    log = step.get_log_text()
    assert f"PARENT {run.id} azureml.PipelineRun Running" in log
    assert f"WS Workspace test {workspace.path}" in log
    assert run.get_metrics() == {"from_step": 3, "series": [1, 2]}
    assert run.get_tags() == {"team": "a"}
    assert step.get_metrics() == {"own": 1} and step.get_tags() == {}


def test_a_container_step_reaches_its_parent_but_not_the_workspace(monkeypatch, tmp_path):
    """Docker maps the run folder (run_dir given): no workspace variable, so the context says why."""
    from mlpipe_jupyter.compute.local import run_context_environ
    from mlpipe_jupyter.running.contract import PARENT_FIELD, WORKSPACE_VAR
    from mlpipe_jupyter.running.metrics import parse_record
    from mlpipe_jupyter.running.protocol import Job
    from mlpipe_jupyter.sdk import context

    job = Job(run_id="step_1", parent_run_id="run_1", experiment="e", step_name="s", script="s.py", arguments=[],
              env_vars={}, working_dir=tmp_path, run_dir=tmp_path, inputs={}, outputs={}, environment=None,
              workspace_dir="/somewhere")
    assert run_context_environ(job)[WORKSPACE_VAR] == "/somewhere"
    container_env = run_context_environ(job, "/run")
    assert WORKSPACE_VAR not in container_env
    for key, value in container_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLPIPE_RUN_DIR", str(tmp_path))
    monkeypatch.setattr(context, "_context", None)
    run = context.get_context()
    with pytest.raises(UserError, match="cannot reach its workspace"):
        run.experiment.workspace
    assert run.parent.get_details()["runId"] == "run_1"
    run.parent.log("m", 2)
    (line,) = (tmp_path / ".metrics.jsonl").read_bytes().splitlines()
    assert parse_record(line)[PARENT_FIELD] is True


DRIVER = """
    import sys
    from mlpipe_jupyter import Experiment, Pipeline, PipelineData, PythonScriptStep, Workspace
    ws = Workspace(sys.argv[1])
    data = PipelineData("data")
    first = PythonScriptStep("slow.py", name="first", source_directory=sys.argv[2], outputs=[data],
                             arguments=["--out", data, "--seconds", sys.argv[3], "--marker", sys.argv[4]])
    second = PythonScriptStep("slow.py", name="second", source_directory=sys.argv[2], inputs=[data],
                              arguments=["--out", data, "--seconds", "0", "--marker", sys.argv[4]])
    run = Experiment(ws, "exit").submit(Pipeline(ws, [first, second]))
    print(run.id, flush=True)
"""
SLOW = """
    import sys, time
    time.sleep(float(sys.argv[sys.argv.index("--seconds") + 1]))
    print("slept")
"""


def _driver(workspace, tmp_path, write_scripts, seconds):
    import subprocess
    import sys

    write_scripts(tmp_path, {"driver.py": DRIVER, "steps/slow.py": SLOW})
    marker = f"marker-{tmp_path.name}"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(workspace.path),
                             str(tmp_path / "steps"), str(seconds), marker],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "DRIVER_TEST_MARKER": marker})  # its steps' (and helper's) too
    return proc, marker


def test_a_script_that_ends_without_waiting_lets_its_runs_finish(workspace, tmp_path, write_scripts):
    proc, _ = _driver(workspace, tmp_path, write_scripts, 1)
    out, err = proc.communicate(timeout=WAIT_SECONDS)
    assert proc.returncode == 0, err
    assert err.count("mlpipe: waiting for 1 active run(s) to finish before exiting") == 1, err
    assert "cannot schedule new futures" not in err
    run = Run.get(workspace, out.strip())
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert {s.name: s.get_status() for s in run.get_steps()} == {"first": "Completed", "second": "Completed"}


def test_ctrl_c_while_waiting_at_exit_cancels_the_runs(workspace, tmp_path, write_scripts):
    import signal

    from helpers import pids_with, wait_until

    proc, marker = _driver(workspace, tmp_path, write_scripts, 300)
    run_id = proc.stdout.readline().strip()
    assert "waiting for 1 active run(s)" in proc.stderr.readline()
    # the driver's own command line names the marker; a warm step's is its helper's: found by the variable
    wait_until(lambda: set(pids_with(marker, where="environ")) - {proc.pid}, "the first step to start")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=WAIT_SECONDS)
    run = Run.get(workspace, run_id)
    assert run.get_status() == "Canceled"
    assert {s.name: s.get_status() for s in run.get_steps()} == {"first": "Canceled", "second": "Canceled"}
    assert "interrupted" in run.get_details()["error"]["message"]
    wait_until(lambda: not pids_with(marker, where="environ"), "the step's process to end", timeout=10)
