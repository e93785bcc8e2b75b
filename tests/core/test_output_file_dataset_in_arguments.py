"""OutputFileDatasetConfig as Azure ML users write it: in the arguments only, often unnamed."""
from mlpipe_jupyter import Experiment, OutputFileDatasetConfig, Pipeline, PythonScriptStep


def _pipeline(workspace, src):
    out = OutputFileDatasetConfig()  # no name, as in many Azure samples
    make = PythonScriptStep("make.py", name="make-data", source_directory=str(src), arguments=["--out", out])
    use = PythonScriptStep("use.py", name="use", source_directory=str(src), arguments=["--data", out.as_input()])
    return Pipeline(workspace, [use]), out, make


def test_output_in_arguments_is_an_output_named_after_its_step_and_rebuilds_reuse(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "make.py").write_text(
        "import sys, os\nopen(os.path.join(sys.argv[2], 'v.txt'), 'w').write('41')\n")
    (src / "use.py").write_text(
        "import sys, os\nprint('value', int(open(os.path.join(sys.argv[2], 'v.txt')).read()) + 1)\n")
    pipeline, out, make = _pipeline(workspace, src)
    assert out.name == "make_data_output"
    assert out in make.outputs and out not in make.inputs
    first = Experiment(workspace, "ofdc").submit(pipeline)
    first.wait_for_completion()
    assert "value 42" in first.get_step("use").get_log_text()

    rebuilt, _, _ = _pipeline(workspace, src)  # the same code run again builds new objects
    second = Experiment(workspace, "ofdc").submit(rebuilt)
    second.wait_for_completion()
    assert [s.reused for s in second.get_steps()] == [True, True]
