"""What a step process gets and how its end is described."""
from helpers import WAIT_SECONDS, remove_tree, run_pipeline, steps_by_name
from mlpipe_jupyter import Experiment, PipelineData, PythonScriptStep, RunConfiguration, ScriptRunConfig


def test_run_configuration_environment_variables_reach_the_script(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"env.py": "import os\nprint('GREETING=' + os.environ['GREETING'])\n"})
    config = RunConfiguration()
    config.environment_variables = {"GREETING": "hello"}
    run = run_pipeline(workspace, [PythonScriptStep("env.py", name="env", source_directory=str(src), runconfig=config)])
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert "GREETING=hello" in steps_by_name(run)["env"].get_log_text()

    config.environment_variables = {"GREETING": "bye"}
    again = run_pipeline(workspace, [PythonScriptStep("env.py", name="env",
                                                      source_directory=str(src), runconfig=config)])
    step = steps_by_name(again)["env"]
    assert not step.reused and "GREETING=bye" in step.get_log_text()


def test_killed_step_names_the_signal(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"oom.py": "import os, signal\nprint('allocating')\n"
                                                     "os.kill(os.getpid(), signal.SIGKILL)\n"})
    run = run_pipeline(workspace, [PythonScriptStep("oom.py", name="oom", source_directory=str(src))])
    assert run.get_status() == "Failed"
    message = run.get_details()["error"]["message"]
    assert "SIGKILL" in message and "allocating" in message


def test_reuse_needs_the_committed_outputs(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"w.py": "import os, sys\nopen(os.path.join(sys.argv[1], 'f'), 'w')"
                                                   ".write('x')\n"})

    def steps():
        out = PipelineData("out")
        return [PythonScriptStep("w.py", name="w", source_directory=str(src), outputs=[out], arguments=[out])]

    first = run_pipeline(workspace, steps())
    committed = steps_by_name(first)["w"].get_output_data("out").path.parent
    remove_tree(committed)  # as a user cleaning up disk space might
    assert not committed.exists()
    second = run_pipeline(workspace, steps())
    step = steps_by_name(second)["w"]
    assert second.get_status() == "Completed"
    assert not step.reused and "no longer in the workspace" in step.get_details()["reuse_reason"]
    assert (step.get_output_data("out").path / "f").read_text() == "x"


def test_script_with_an_unusual_file_name(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"my script.py": "print('ran')\n"})
    run = Experiment(workspace, "scripts").submit(ScriptRunConfig(source_directory=str(src), script="my script.py"))
    run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Completed" and "ran" in run.get_log_text()


def test_download_input_is_a_writable_copy_and_nothing_is_left_in_tmp(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {
        "make.py": "import os, sys\nos.makedirs(os.path.join(sys.argv[1], 'sub'))\n"
                   "open(os.path.join(sys.argv[1], 'sub', 'f.txt'), 'w').write('v1')\n",
        "edit.py": """
            import os, shutil, stat, sys
            path = os.path.join(sys.argv[1], "sub", "f.txt")
            assert os.stat(path).st_mode & stat.S_IWUSR, "the downloaded copy is read-only"
            open(path, "w").write("changed locally")
            shutil.copytree(sys.argv[2], "mounted_copy")  # a read-only copy of committed data in the wd
            print("edited")
        """,
    })
    data = PipelineData("data")
    make = PythonScriptStep("make.py", name="make", source_directory=str(src), outputs=[data], arguments=[data])
    edit = PythonScriptStep("edit.py", name="edit", source_directory=str(src),
                            arguments=[data.as_download("local"), data.as_input("mounted")])
    run = run_pipeline(workspace, [make, edit])
    assert run.get_status() == "Completed", run.get_details().get("error")
    committed = steps_by_name(run)["make"].get_output_data("data").path
    assert (committed / "sub" / "f.txt").read_text() == "v1"  # the committed data is untouched
    assert list((workspace.folder / "tmp").iterdir()) == []
