"""A step's private folders (working copy, staged outputs) are removed once its end is recorded, after
its run has moved on: they are all gone when the run has ended, whatever became of each step."""
from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import PipelineData, PythonScriptStep


def test_folders_of_completed_failed_and_downstream_steps_are_gone_when_the_run_ends(workspace, tmp_path,
                                                                                      write_scripts):
    src = write_scripts(tmp_path / "src", {
        "make.py": """
            import os, sys
            os.makedirs(sys.argv[1], exist_ok=True)
            open(os.path.join(sys.argv[1], "a.txt"), "w").write("made")
            open("scribble.txt", "w").write("left in the working copy")
            os.chmod(".", 0o500)  # a working copy the step made read-only is removed all the same
        """,
        "fail.py": "import sys\nopen('partial.txt', 'w').write('x')\nsys.exit(3)\n",
        "never.py": "print('not run')\n",
    })
    made, failed = PipelineData("made"), PipelineData("failed")
    steps = [PythonScriptStep("make.py", name="make", source_directory=str(src), arguments=[made], outputs=[made]),
             PythonScriptStep("fail.py", name="fail", source_directory=str(src), arguments=[made, failed],
                              inputs=[made], outputs=[failed]),
             PythonScriptStep("never.py", name="never", source_directory=str(src), arguments=[failed],
                              inputs=[failed])]
    run = run_pipeline(workspace, steps)
    by_name = steps_by_name(run)
    assert {n: s.get_status() for n, s in by_name.items()} == {"make": "Completed", "fail": "Failed",
                                                               "never": "Canceled"}
    assert (by_name["make"].get_output_data("made").path / "a.txt").read_text() == "made"
    assert list((workspace.folder / "tmp").iterdir()) == []
