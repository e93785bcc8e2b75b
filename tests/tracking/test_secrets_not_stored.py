"""A secret-looking environment variable reaches the step but is never written to the store."""
from pathlib import Path

from mlpipe_jupyter import Environment, Experiment, Pipeline, PythonScriptStep, RunConfiguration


def test_secret_environment_variable_reaches_script_but_not_the_database(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "use_token.py").write_text(
        "import os\nprint('token length', len(os.environ['API_TOKEN']), 'mode', os.environ['MODE'])\n")
    env = Environment("with-token")
    env.environment_variables = {"API_TOKEN": "s3cr3t-value-1234", "MODE": "fast"}
    rc = RunConfiguration()
    rc.environment = env
    step = PythonScriptStep("use_token.py", source_directory=str(src), runconfig=rc)
    run = Experiment(workspace, "secrets").submit(Pipeline(workspace, [step]))
    run.wait_for_completion()
    step_run = run.get_steps()[0]
    assert "token length 17 mode fast" in step_run.get_log_text()
    assert step_run.get_environment().environment_variables == {"API_TOKEN": "***", "MODE": "fast"}
    stored = b"".join(p.read_bytes() for p in Path(workspace.folder).glob("mlpipe.db*"))
    assert b"s3cr3t-value-1234" not in stored
