"""`mlpipe run NB.ipynb` on hostile or malformed `mlpipe` notebook metadata: one clear error, nothing written.

Names from a notebook's metadata become file names (``cell_<step>.py``, ``.mlpipe_cells`` in a source
folder) and environment variables, so each must be refused before it is used as a path, and any
metadata that is not what ``%pipeline save-notebook`` writes must be one sentence naming the notebook
and the item, never a traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlpipe_jupyter import Workspace

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def _cell(**changes) -> dict:
    cell = {"name": "prep", "body": "print('prep')", "inputs": [], "outputs": ["data"], "params": {},
            "compute": "local", "environment": None, "allow_reuse": True, "source_dir": None}
    cell.update(changes)
    return cell


def _meta(*items, **extra) -> dict:
    return {"version": 1, "description": None, "steps": list(items), "data": {}, "parameters": {}, **extra}


def _files(root: Path, skip: Path) -> set:
    return {p for p in root.rglob("*") if skip not in (p, *p.parents)}


def run_notebook(tmp_path, meta):
    """Run a notebook holding only ``meta`` with the CLI; returns (result, files that appeared outside)."""
    root = tmp_path / "outer"
    ws_dir = root / "ws"
    Workspace.create("hardening", path=ws_dir)
    outside = root / "outside"
    outside.mkdir()
    (outside / "req.txt").write_text("requests\n")
    (outside / "evil.py").write_text("print('evil')\n")
    (ws_dir / "a.py").write_text("print('a')\n")
    (ws_dir / "data.csv").write_text("x\n1\n")
    nbformat.write(nbformat.v4.new_notebook(metadata={"mlpipe": meta}), str(ws_dir / "nb.ipynb"))
    before = _files(tmp_path, ws_dir)
    result = subprocess.run([sys.executable, "-m", "mlpipe_jupyter.cli", "--workspace", str(ws_dir), "run",
                             "nb.ipynb"], cwd=ws_dir, env=ENV, capture_output=True, text=True, timeout=120)
    return result, sorted(str(p) for p in _files(tmp_path, ws_dir) - before)


def assert_one_clear_error(result, appeared, *expected):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("mlpipe: error:"), result.stderr
    assert result.stderr.count("mlpipe: error:") == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert appeared == [], f"written outside the workspace: {appeared}"


OUTSIDE_ABS = "<outside>"  # replaced by the absolute path of the folder next to the workspace

TRAVERSAL = {
    "cell step name": (_meta({"cell": _cell(name="../../../../x")}), ["'../../../../x'"]),
    "cell output name": (_meta({"cell": _cell(outputs=["../../x"])}), ["'../../x'"]),
    "cell input name": (_meta({"cell": _cell(inputs=[["../x", "data.csv"]])}), ["'../x'"]),
    "cell param name": (_meta({"cell": _cell(params={"../p": 1})}), ["'../p'"]),
    "cell param name with a newline": (_meta({"cell": _cell(params={"a\nb": 1})}), ["'a\\nb'"]),
    "cell source_dir outside": (_meta({"cell": _cell(source_dir="../outside")}), ["'../outside'"]),
    "cell source_dir absolute": (_meta({"cell": _cell(source_dir=OUTSIDE_ABS)}), ["source"]),
    "cell environment file outside": (_meta({"cell": _cell(environment="../outside/req.txt")}),
                                      ["'../outside/req.txt'"]),
    "step name": (_meta({"step": {"name": "../../../x", "script": "a.py", "source_directory": "."}}),
                  ["'../../../x'"]),
    "step script with ..": (_meta({"step": {"name": "a", "script": "../outside/evil.py", "source_directory": "."}}),
                            ["'../outside/evil.py'"]),
    "step script absolute": (_meta({"step": {"name": "a", "script": OUTSIDE_ABS + "/evil.py",
                                             "source_directory": "."}}), ["evil.py", "relative"]),
}


def _fill(value, outside: str):
    if isinstance(value, str):
        return value.replace(OUTSIDE_ABS, outside)
    if isinstance(value, list):
        return [_fill(v, outside) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, outside) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", list(TRAVERSAL))
def test_names_from_metadata_are_checked_before_any_file_is_written(tmp_path, case):
    meta, expected = TRAVERSAL[case]
    meta = _fill(meta, str(tmp_path / "outer" / "outside"))
    result, appeared = run_notebook(tmp_path, meta)
    assert_one_clear_error(result, appeared, "nb.ipynb", *expected)


MALFORMED = {
    "steps items that are not mappings": (_meta("prep", 3), ["item 1", "not a mapping"]),
    "a number among the steps": (_meta({"cell": _cell()}, 3), ["item 2", "not a mapping"]),
    "a cell entry that is not a mapping": (_meta({"cell": "prep"}), ["item 1", "cell"]),
    "a step entry that is not a mapping": (_meta({"step": "a.py"}), ["item 1", "step"]),
    "an item with neither cell nor step": (_meta({"other": 1}), ["item 1", "'cell' or 'step'"]),
    "cell inputs not a list": (_meta({"cell": _cell(inputs="x")}), ["item 1", "inputs"]),
    "cell input not a pair": (_meta({"cell": _cell(inputs=[["x"]])}), ["item 1", "inputs"]),
    "cell outputs holding a number": (_meta({"cell": _cell(outputs=[1])}), ["item 1", "outputs"]),
    "cell params not a mapping": (_meta({"cell": _cell(params=[1, 2])}), ["item 1", "params"]),
    "cell name not a string": (_meta({"cell": _cell(name=3)}), ["item 1", "name"]),
    "cell without a body": (_meta({"cell": {"name": "prep"}}), ["item 1", "body"]),
    "cell allow_reuse not a bool": (_meta({"cell": _cell(allow_reuse="no")}), ["item 1", "allow_reuse"]),
    "step entry missing name": (_meta({"step": {"script": "a.py"}}), ["item 1", "name"]),
    "step entry missing script": (_meta({"step": {"name": "a"}}), ["item 1", "script"]),
    "data section not a mapping": (_meta({"cell": _cell()}, data=[1]), ["data"]),
    "parameters section not a mapping": (_meta({"cell": _cell()}, parameters="x"), ["parameters"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_metadata_is_one_sentence_naming_notebook_and_item(tmp_path, case):
    meta, expected = MALFORMED[case]
    result, appeared = run_notebook(tmp_path, meta)
    assert_one_clear_error(result, appeared, "Notebook", "nb.ipynb", *expected)


def test_valid_metadata_still_runs(tmp_path):
    """The checks refuse only what is wrong: a cell with a param, a loaded step, and a source folder run."""
    lib = tmp_path / "outer" / "ws" / "lib"
    lib.mkdir(parents=True)
    meta = _meta({"cell": _cell(params={"n.rows": 2}, source_dir="lib")},
                 {"cell": _cell(name="use", inputs=[["data", None]], outputs=[], body="print(inputs['data'])")},
                 {"step": {"name": "a", "script": "a.py", "source_directory": "."}})
    result, appeared = run_notebook(tmp_path, meta)
    assert result.returncode == 0, result.stdout + result.stderr
    assert appeared == []
    assert (lib / ".mlpipe_cells" / "cell_prep.py").is_file()
