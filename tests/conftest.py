"""Shared fixtures: a fresh workspace per test and a way to write step scripts."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import skip_or_fail
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


# Docker tests need a running engine and the base image. Where there is none they skip and say why,
# except under CI=true, where a missing engine fails the run: CI must never turn green by skipping.
@pytest.fixture(scope="session")
def docker_engine():
    from mlpipe_jupyter.compute import envbuild

    problem = envbuild.engine_problem()
    if problem:
        skip_or_fail(f"Docker tests need an engine: {problem} (scripts/docker_engine.sh starts one)")
    if envbuild.image_id(envbuild.DEFAULT_BASE_IMAGE) is None:
        skip_or_fail(f"Docker tests need the base image '{envbuild.DEFAULT_BASE_IMAGE}' "
                     "(scripts/docker_engine.sh builds it)")
    return envbuild.docker_client()
