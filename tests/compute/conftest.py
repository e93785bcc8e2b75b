"""The Ray cluster of the compute tests (the Docker engine fixture is in tests/conftest.py)."""
from __future__ import annotations

import pytest

from helpers import skip_or_fail
from ray_cluster import ClusterProblem, RayCluster


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
