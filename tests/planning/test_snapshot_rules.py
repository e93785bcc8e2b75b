"""Which files in a source directory count for reuse: .amlignore / .gitignore rules and caches."""
from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import PythonScriptStep


def submit_again(workspace, src):
    return steps_by_name(run_pipeline(workspace, [PythonScriptStep("main.py", name="main",
                                                                   source_directory=str(src))]))["main"]


def test_ignored_files_do_not_cause_a_rerun(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"main.py": "print('hi')\n", ".amlignore": "scratch/\n*.log\n",
                                           "scratch/tmp.txt": "1", "notes.log": "a"})
    submit_again(workspace, src)
    write_scripts(src, {"scratch/tmp.txt": "2", "notes.log": "b", "__pycache__/main.cpython-311.pyc": "x",
                        ".ipynb_checkpoints/main-checkpoint.py": "y"})
    assert submit_again(workspace, src).reused

    write_scripts(src, {"data/table.csv": "a,b\n"})
    step = submit_again(workspace, src)
    assert not step.reused and "added 'data/table.csv'" in step.get_details()["reuse_reason"]


def test_gitignore_applies_without_amlignore(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"main.py": "print('hi')\n", ".gitignore": "*.tmp\n"})
    submit_again(workspace, src)
    write_scripts(src, {"x.tmp": "ignored"})
    assert submit_again(workspace, src).reused
    (src / "main.py").unlink()
    write_scripts(src, {"main.py": "print('hello')\n"})
    step = submit_again(workspace, src)
    assert not step.reused and "changed 'main.py'" in step.get_details()["reuse_reason"]
