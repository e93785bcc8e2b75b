"""Docker tests need a running engine and the base image; where there is none they skip and say why."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def docker_engine():
    from mlpipe_jupyter.compute import envbuild

    problem = envbuild.engine_problem()
    if problem:
        pytest.skip(f"Docker tests need an engine: {problem} (scripts/docker_engine.sh starts one)")
    if envbuild.image_id(envbuild.DEFAULT_BASE_IMAGE) is None:
        pytest.skip(f"Docker tests need the base image '{envbuild.DEFAULT_BASE_IMAGE}' "
                    "(scripts/docker_engine.sh builds it)")
    return envbuild.docker_client()


def leftover_containers(client, run) -> list:
    """Containers of any step of ``run``, running or not: there must be none once it ended."""
    ids = [run.id] + [s.id for s in run.get_steps()] if hasattr(run, "get_steps") else [run.id]
    out = []
    for run_id in ids:
        out += client.containers.list(all=True, filters={"label": f"mlpipe.run_id={run_id}"})
    return out


def dangling_images(client) -> list:
    return client.images.list(filters={"dangling": True, "label": "mlpipe.managed"})
