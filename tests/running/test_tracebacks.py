"""A failed step's traceback names what the user wrote: the source file for a script step, the cell and
its line for a %%step cell; frames of the generated preamble and of this package are dropped."""
from helpers import run_pipeline, steps_by_name

from mlpipe_jupyter import Experiment, PythonScriptStep
from mlpipe_jupyter.notebook.state import NotebookPipeline
from mlpipe_jupyter.notebook.cell_steps import CellSpec
from mlpipe_jupyter.running.tracebacks import _OWN_PACKAGE, last_traceback, map_traceback, read_origin
from mlpipe_jupyter.server.handlers import _run_json
from mlpipe_jupyter.tracking.report import run_text

WORK = "/scratch/.mlpipe/tmp/step-abc/wd"
RAW = [
    "about to fail",
    "Traceback (most recent call last):",
    f'  File "{WORK}/cell_boom.py", line 28, in <module>',
    "    helper()",
    f'  File "{WORK}/cell_boom.py", line 26, in helper',
    "    x = params['n']",
    f'  File "{WORK}/lib/util.py", line 3, in f',
    "    return 1 / 0",
    "           ~~^~~",
    '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads',
    "    return _default_decoder.decode(s)",
    f'  File "{_OWN_PACKAGE}/sdk/run.py", line 10, in log',
    "    raise ValueError('bad')",
    "ZeroDivisionError: division by zero",
    "mlpipe: not kept with the run's files: x",
]


def test_last_traceback_starts_at_the_traceback_and_leaves_our_notes_out():
    lines = last_traceback(RAW)
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert last_traceback(["just a line", "another"]) == []


def test_a_chained_traceback_is_kept_whole():
    lines = ["noise", "Traceback (most recent call last):", '  File "a.py", line 1, in <module>', "KeyError: 'x'", "",
             "During handling of the above exception, another exception occurred:", "",
             "Traceback (most recent call last):", '  File "a.py", line 3, in <module>', "ValueError: y"]
    assert last_traceback(lines) == lines[1:]
    # two unrelated tracebacks (say, a retry inside the script): only the last counts
    unrelated = lines[1:4] + ["retrying"] + lines[7:]
    assert last_traceback(unrelated) == lines[7:]


def test_frames_of_a_generated_cell_script_name_the_cell_and_its_line():
    origin = {"label": "Cell In[3]", "first_line": 25}
    out = map_traceback(last_traceback(RAW), WORK, "/ws/.mlpipe/cells/nb/boom", "cell_boom.py", origin)
    text = "\n".join(out)
    assert "  Cell In[3], line 4, in <module>" in out
    assert "    helper()" in out
    assert "  Cell In[3], line 2, in helper" in out
    assert 'File "/ws/.mlpipe/cells/nb/boom/lib/util.py", line 3, in f' in text  # a module beside it: its source
    assert 'json/__init__.py", line 346' in text  # a library frame stays
    assert "sdk/run.py" not in text and "raise ValueError('bad')" not in text  # our package's frame goes
    assert "/scratch/" not in text
    assert out[-1] == "ZeroDivisionError: division by zero"


def test_a_frame_in_the_generated_preamble_is_dropped_and_a_script_maps_to_its_source_folder():
    lines = ["Traceback (most recent call last):", f'  File "{WORK}/cell_x.py", line 12, in _param',
             "    text = os.environ['X']", "KeyError: 'X'"]
    assert map_traceback(lines, WORK, "/src", "cell_x.py", {"label": "Cell In[1]", "first_line": 25}) == [
        "Traceback (most recent call last):", "KeyError: 'X'"]
    plain = map_traceback(lines, WORK, "/src", "cell_x.py", None)
    assert plain[1] == '  File "/src/cell_x.py", line 12, in _param'
    relative = ["Traceback (most recent call last):", '  File "train.py", line 2, in <module>', "E: e"]
    assert map_traceback(relative, WORK, "/src", "train.py")[1] == '  File "/src/train.py", line 2, in <module>'


def test_frames_under_a_containers_name_for_the_working_folder_map_too():
    lines = ["Traceback (most recent call last):", '  File "/mlpipe/wd/train.py", line 5, in <module>', "E: e"]
    assert map_traceback(lines, (WORK, "/mlpipe/wd"), "/src", "train.py")[1] == (
        '  File "/src/train.py", line 5, in <module>')


def test_a_failed_script_step_records_the_traceback_of_its_source_file(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {
        "helpers.py": "def explode():\n    raise RuntimeError('boom in helper')\n",
        "main.py": "from helpers import explode\nprint('starting')\nexplode()\n"})
    run = run_pipeline(workspace, [PythonScriptStep("main.py", name="main", source_directory=str(src))])
    trace = steps_by_name(run)["main"]._row["details"]["traceback"]
    assert f'File "{src}/main.py", line 3, in <module>' in trace, trace
    assert f'File "{src}/helpers.py", line 2, in explode' in trace, trace
    assert trace.splitlines()[-1] == "RuntimeError: boom in helper"
    assert "starting" not in trace and "step-" not in trace
    # the CLI's summary (mlpipe show) and the REST API's run show the same mapped traceback
    text = run_text(workspace._store, run.id)
    assert f'File "{src}/helpers.py", line 2, in explode' in text and "RuntimeError: boom in helper" in text
    (step,) = _run_json(workspace, run.id)["Steps"]
    assert step["Traceback"] == trace


def test_a_failed_cell_step_records_the_cell_and_its_line(workspace, tmp_path):
    state = NotebookPipeline(workspace, tmp_path)
    state.record(CellSpec(name="boom", body="x = 1\nprint('about to fail')\ny = x / 0\n"), execution_count=7)
    run = Experiment(workspace, "cells").submit(state.build())
    run.wait_for_completion(raise_on_error=False)
    trace = steps_by_name(run)["boom"]._row["details"]["traceback"]
    assert "  Cell In[7], line 3, in <module>" in trace, trace
    assert "    y = x / 0" in trace
    assert "cell_boom.py" not in trace and "ZeroDivisionError" in trace
    # the step rewritten without a kernel's count (the designer, mlpipe run) keeps the cell's last In[]
    state.steps["boom"].execution_count = None
    state.build()
    assert read_origin(state.steps["boom"].source_directory, "cell_boom.py")["label"] == "Cell In[7]"


def test_a_cell_with_its_own_source_folder_maps_to_the_cell_too(workspace, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "helpers.py").write_text("def half(x):\n    return x / 0\n")
    state = NotebookPipeline(workspace, tmp_path)
    state.record(CellSpec(name="mine", body="from helpers import half\nhalf(4)\n", source_dir="code"),
                 execution_count=12)
    run = Experiment(workspace, "cells").submit(state.build())
    run.wait_for_completion(raise_on_error=False)
    trace = steps_by_name(run)["mine"]._row["details"]["traceback"]
    assert "  Cell In[12], line 2, in <module>" in trace, trace
    assert f'File "{(tmp_path / "code").resolve()}/helpers.py", line 2, in half' in trace, trace
    assert ".mlpipe_cells" not in trace
