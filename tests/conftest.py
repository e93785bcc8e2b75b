"""Shared fixtures: a fresh workspace per test and a way to write step scripts."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlpipe_jupyter import Workspace


def write_scripts(directory, scripts: dict) -> Path:
    """Write ``{relative name: source}`` into ``directory`` (dedented) and return the directory."""
    directory = Path(directory)
    for name, source in scripts.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return directory


@pytest.fixture(name="write_scripts")
def write_scripts_fixture():
    return write_scripts


@pytest.fixture
def workspace(tmp_path):
    return Workspace.create("test", path=tmp_path)
