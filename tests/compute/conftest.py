"""Docker tests need a running engine and the base image. Where there is none they skip and say why,
except under CI=true, where a missing engine fails the run: CI must never turn green by skipping."""
from __future__ import annotations

import os

import pytest

from helpers import labelled_containers
from ray_cluster import ClusterProblem, RayCluster


def skip_or_fail(reason: str):
    """Skip on a machine that cannot set the engine up; fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a real engine that cannot be set up fails the run)", pytrace=False)
    pytest.skip(reason)


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


def leftover_containers(client, run) -> list:
    """Containers of any step of ``run``, running or not: there must be none once it ended."""
    ids = [run.id] + [s.id for s in run.get_steps()] if hasattr(run, "get_steps") else [run.id]
    out = []
    for run_id in ids:
        out += labelled_containers(client, f"mlpipe.run_id={run_id}")
    return out


def dangling_images(client) -> list:
    return client.images.list(filters={"dangling": True, "label": "mlpipe.managed"})


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster on 127.0.0.1 (tests/compute/ray_cluster.py), stopped by its PIDs."""
    try:
        cluster = RayCluster()
    except ClusterProblem as e:
        skip_or_fail(f"Ray tests need a Ray cluster: {e}")
    try:
        yield cluster
    finally:
        left = cluster.stop()
        assert not left, f"processes of the Ray cluster outlived it: {left}"
