"""Reuse does not depend on how Python was spelled; a changed run-configuration variable is named; a
declared output the step never wrote is a warning on that step."""
import os
import subprocess
import sys
from pathlib import Path

from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import PipelineData, PythonScriptStep, RunConfiguration

REPO = Path(__file__).resolve().parents[2]
DRIVER = """
import sys
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace(sys.argv[1])
run = Experiment(ws, "spelled").submit(Pipeline(ws, [PythonScriptStep("s.py", source_directory=sys.argv[2])]))
run.wait_for_completion()
print("REUSED" if run.get_steps()[0].reused else "RAN", run.get_steps()[0].get_details()["reuse_reason"])
"""


def test_python_or_python3_of_one_venv_reuse_each_other(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"s.py": "print('hi')\n"})
    driver = write_scripts(tmp_path, {"driver.py": DRIVER}) / "driver.py"
    bindir = Path(sys.executable).parent
    spellings = [p for p in (bindir / "python", bindir / "python3") if p.exists()]
    assert len(spellings) == 2, "this venv should have both python and python3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outputs = [subprocess.run([str(exe), str(driver), str(workspace.path), str(src)], env=env, capture_output=True,
                              text=True, timeout=60).stdout for exe in spellings]
    assert outputs[0].startswith("RAN") and outputs[1].startswith("REUSED"), outputs


def test_a_changed_run_configuration_variable_is_the_reason(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"env.py": "import os\nprint(os.environ['GREETING'])\n"})

    def step(greeting):
        config = RunConfiguration()
        config.environment_variables = {"GREETING": greeting}
        return PythonScriptStep("env.py", name="env", source_directory=str(src), runconfig=config)

    run_pipeline(workspace, [step("hello")])
    again = steps_by_name(run_pipeline(workspace, [step("bye")]))["env"]
    assert again.get_details()["reuse_reason"].startswith(
        'Rerun: environment variable \'GREETING\' changed from "hello" to "bye"')


def test_an_output_the_step_never_wrote_is_a_warning_on_that_step(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"lazy.py": "print('forgot to write')\n",
                                           "read.py": "import os, sys\nprint(sorted(os.listdir(sys.argv[1])))\n"})
    out = PipelineData("result")
    lazy = PythonScriptStep("lazy.py", name="lazy", source_directory=str(src), outputs=[out], arguments=[out])
    read = PythonScriptStep("read.py", name="read", source_directory=str(src), inputs=[out], arguments=[out])
    run = run_pipeline(workspace, [lazy, read])
    steps = steps_by_name(run)
    assert run.get_status() == "Completed"  # allowed, as in Azure ML
    warning = "Step 'lazy' wrote nothing to its output 'result'"
    assert any(w.startswith(warning) for w in steps["lazy"].get_details()["warnings"])
    assert warning in steps["lazy"].get_log_text()
    assert "warnings" not in steps["read"].get_details()
