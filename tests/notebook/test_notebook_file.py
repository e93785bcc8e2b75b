"""The pipeline of a notebook file: metadata round trip, `mlpipe run NOTEBOOK.ipynb`, and terminal IPython."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import nbformat
import pytest

from mlpipe_jupyter import Experiment, Workspace
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.notebook.notebook_meta import load_notebook_pipeline, notebook_state
from nbhelpers import EVALUATE, PREP, TRAIN, by_tag, errors, make_notebook, stream, write_helper

LOAD = "%load_ext mlpipe_jupyter"


def _mlpipe(*args, cwd):
    return subprocess.run([sys.executable, "-c", "import sys; from mlpipe_jupyter.cli import main; sys.exit(main())",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _latest(ws, experiment):
    run = next(iter(Experiment(ws, experiment).get_runs()))
    return {s.name: ("reused" if s.reused else s.get_status()) for s in run.get_steps()}


def test_notebook_metadata_round_trip(notebook, tmp_path, monkeypatch):
    write_helper(tmp_path)
    path = tmp_path / "flow.ipynb"
    # the kernel learns its notebook file the way Jupyter Server tells it
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    nb = notebook([LOAD, "%config PipelineMagics.autosave_notebook = True", PREP, TRAIN,
                   "r = %pipeline submit --wait", "# save\n%pipeline save-notebook",
                   "# experiment\nprint(r.experiment.name)",
                   EVALUATE])  # recorded after the explicit save: autosave writes it too
    for cell in nb.cells:
        assert not errors(cell)
    assert "Saved the pipeline (2 steps) into the metadata of" in stream(by_tag(nb, "# save"))
    assert stream(by_tag(nb, "# experiment")).strip() == "flow"  # named after the notebook
    assert (tmp_path / ".mlpipe/cells/flow/train/cell_train.py").is_file()

    meta = nbformat.read(str(path), as_version=4).metadata["mlpipe"]
    assert [item["cell"]["name"] for item in meta["steps"]] == ["prep", "train", "evaluate"]
    assert meta["steps"][0]["cell"]["params"] == {"n": 3}
    assert meta["steps"][1]["cell"]["inputs"] == [["data", None]]

    # a notebook holding only the metadata gives the same pipeline
    only_meta = tmp_path / "meta_only.ipynb"
    copy = nbformat.v4.new_notebook(metadata={"mlpipe": meta})
    nbformat.write(copy, str(only_meta))
    ws = Workspace.from_config(tmp_path)
    from_meta = notebook_state(ws, only_meta)
    from_cells = notebook_state(ws, path, source="cells")
    assert from_meta.to_metadata() == meta == from_cells.to_metadata()
    pipeline = load_notebook_pipeline(ws, only_meta)
    assert [s.name for s in pipeline.steps] == ["prep", "train", "evaluate"]
    run = Experiment(ws, "flow").submit(pipeline)
    run.wait_for_completion(timeout_seconds=60)
    assert _latest(ws, "flow") == {"prep": "reused", "train": "reused", "evaluate": "Completed"}

    with pytest.raises(UserError, match="no %%step cells and no saved pipeline"):
        empty = tmp_path / "empty.ipynb"
        nbformat.write(nbformat.v4.new_notebook(), str(empty))
        load_notebook_pipeline(ws, empty)


def test_mlpipe_run_notebook_headless(notebook, tmp_path):
    write_helper(tmp_path)
    nb = notebook([LOAD, PREP, TRAIN, EVALUATE, "r = %pipeline submit --wait"])
    for cell in nb.cells:
        assert not errors(cell)
    path = tmp_path / "flow.ipynb"

    # the same cells, replayed from the file: the same scripts, so every step is reused
    done = _mlpipe("run", "flow.ipynb", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    ws = Workspace.from_config(tmp_path)
    assert _latest(ws, "flow") == {"prep": "reused", "train": "reused", "evaluate": "reused"}

    # an edited train cell in the saved file: train and evaluate rerun, prep is reused
    saved = nbformat.read(str(path), as_version=4)
    cell = next(c for c in saved.cells if c.source.startswith("%%step train"))
    cell.source = cell.source.replace("str(len(numbers))", "str(len(numbers) + 10)")
    nbformat.write(saved, str(path))
    done = _mlpipe("run", "flow.ipynb", "--param", "n=2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _latest(ws, "flow") == {"prep": "Completed", "train": "Completed", "evaluate": "Completed"}
    assert "model size 12" in done.stdout  # n=2 numbers, plus ten

    # a notebook whose cells are wrong fails with one message naming the cell
    make_notebook(tmp_path / "broken.ipynb", ["%%step train --inputs nothing\nx = 1"])
    done = _mlpipe("run", "broken.ipynb", cwd=tmp_path)
    assert done.returncode != 0
    assert "input 'nothing' is not an output of any recorded step" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_terminal_ipython_prints_text_progress(tmp_path):
    """Without a widget frontend, submit --wait prints log lines and a progress line per step."""
    script = textwrap.dedent('''
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_cell("%load_ext mlpipe_jupyter", store_history=True)
        shell.run_cell("%%step hello --outputs out\\nprint('hello from the step')", store_history=True)
        shell.run_cell("%%step bye --inputs out\\nprint('bye')", store_history=True)
        result = shell.run_cell("r = %pipeline submit --wait", store_history=True)
        print("STATUS", shell.user_ns["r"].get_status(), result.success)
        shell.run_cell("%pipeline nonsense", store_history=True)
    ''')
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert "[hello] hello from the step" in out
    assert "==> hello: Completed [1/2 done]" in out and "==> bye: Completed [2/2 done]" in out
    assert "STATUS Completed True" in out
    assert "UsageError: %pipeline: argument COMMAND: invalid choice: 'nonsense'" in done.stderr
