"""``get_details()['logFiles']`` lists a step's logs (name -> path, Azure's names) whenever the step
has one: after it failed before its process started, while it runs, and when it was reused."""
from pathlib import Path

from helpers import run_pipeline, steps_by_name, submit, wait_until
from mlpipe_jupyter import Dataset, PipelineData, PythonScriptStep

NAMES = {"logs/std_log.txt", "user_logs/std_log.txt", "azureml-logs/70_driver_log.txt"}


def test_a_step_that_failed_before_starting_lists_a_log_saying_why(workspace, tmp_path, write_scripts):
    external = tmp_path / "external"
    external.mkdir()
    (external / "f.txt").write_text("hi")
    # the first step removes the folder the second one downloads, so the second fails while preparing
    write_scripts(tmp_path / "src", {
        "remove.py": f"import shutil, sys, os\nshutil.rmtree({str(external)!r})\n"
                     "os.makedirs(sys.argv[1], exist_ok=True)\nopen(os.path.join(sys.argv[1], 'x'), 'w').write('1')\n",
        "read.py": "print('never printed')\n"})
    link = PipelineData("link")
    remove = PythonScriptStep("remove.py", name="remove", source_directory=str(tmp_path / "src"), arguments=[link],
                              outputs=[link], allow_reuse=False)
    data = Dataset.File.from_files(str(external)).as_named_input("external").as_download()
    read = PythonScriptStep("read.py", name="read", source_directory=str(tmp_path / "src"), arguments=[link, data],
                            inputs=[link], allow_reuse=False)
    run = run_pipeline(workspace, [remove, read])

    step = steps_by_name(run)["read"]
    details = step.get_details()
    assert details["status"] == "Failed" and "could not run" in details["error"]["message"]
    assert set(details["logFiles"]) == NAMES
    for path in details["logFiles"].values():
        assert details["error"]["message"] in Path(path).read_text()
    assert "could not run" in step.get_details_with_logs()["logFiles"]["user_logs/std_log.txt"]


def test_a_running_step_lists_its_log_under_every_name(workspace, tmp_path, write_scripts):
    gate = tmp_path / "gate"
    write_scripts(tmp_path / "src", {"wait.py": f"""
        import pathlib, time
        print('started', flush=True)
        deadline = time.monotonic() + 60
        while not pathlib.Path({str(gate)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        """})
    run = submit(workspace, [PythonScriptStep("wait.py", name="wait", source_directory=str(tmp_path / "src"))])
    step = run.get_step("wait")
    wait_until(lambda: "started" in step.get_log_text(), "the step to print")
    try:
        logs = step.get_details()["logFiles"]
        assert set(logs) == NAMES
        assert len(set(logs.values())) == 1 and "started" in Path(logs["user_logs/std_log.txt"]).read_text()
    finally:
        gate.touch()
        run.wait_for_completion()
    ended = step.get_details()["logFiles"]
    assert set(ended) == NAMES and len(set(ended.values())) == 3  # the runner's own copies now


def test_a_reused_step_lists_the_logs_of_the_run_that_did_the_work(workspace, tmp_path, write_scripts):
    write_scripts(tmp_path / "src", {"hello.py": "print('hello from the first run')\n"})
    step = PythonScriptStep("hello.py", name="hello", source_directory=str(tmp_path / "src"))
    run_pipeline(workspace, [step])
    again = run_pipeline(workspace, [step])

    reused = again.get_step("hello")
    assert reused.reused
    logs = reused.get_details()["logFiles"]
    assert set(logs) == NAMES
    assert "hello from the first run" in Path(logs["logs/std_log.txt"]).read_text()
