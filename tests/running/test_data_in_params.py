"""Data objects in ``params`` reach the script as paths through AML_PARAMETER_<name>, inputs and outputs alike."""
from mlpipe_jupyter import Experiment, Pipeline, PipelineData, PythonScriptStep


def test_input_and_output_data_in_params_become_their_paths(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "make.py").write_text(
        "import os\nopen(os.path.join(os.environ['AML_PARAMETER_dest'], 'v.txt'), 'w').write('7')\n")
    (src / "read.py").write_text(
        "import os\nprint('read', open(os.path.join(os.environ['AML_PARAMETER_source'], 'v.txt')).read())\n")
    data = PipelineData("data")
    make = PythonScriptStep("make.py", name="make", source_directory=str(src), outputs=[data], params={"dest": data})
    read = PythonScriptStep("read.py", name="read", source_directory=str(src), inputs=[data], params={"source": data})
    run = Experiment(workspace, "params").submit(Pipeline(workspace, [make, read]))
    run.wait_for_completion()
    assert run.get_status() == "Completed"
    assert "read 7" in run.get_step("read").get_log_text()
