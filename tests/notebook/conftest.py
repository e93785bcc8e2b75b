"""The ``notebook`` fixture: build a notebook file in tmp_path and execute it in a real kernel."""
from __future__ import annotations

import pytest

from nbhelpers import execute, make_notebook


@pytest.fixture
def notebook(tmp_path):
    """notebook(cells, name=..., allow_errors=...) -> executed notebook (also saved as a file in tmp_path)."""

    def run(cells, name="flow.ipynb", allow_errors=False):
        path = tmp_path / name
        make_notebook(path, cells)
        return execute(path, allow_errors)

    return run


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """An in-process IPython shell with the magics loaded, working in tmp_path."""
    from shell import shell_in

    monkeypatch.chdir(tmp_path)
    return shell_in(tmp_path)
