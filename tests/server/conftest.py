"""Real servers on free ports of 127.0.0.1: ``mlpipe serve`` and ``jupyter server`` with the extension
enabled by the config file the wheel installs. Each gets its own Jupyter config and runtime folders, so
the user's Jupyter setup is neither seen nor changed."""
from __future__ import annotations

import pytest
from helpers import Server, free_port, start_jupyter_server, start_mlpipe_serve  # noqa: F401 (the server tests import them from here)

from mlpipe_jupyter import Workspace


@pytest.fixture(scope="module", params=["mlpipe serve", "jupyter server"])
def server(request, tmp_path_factory):
    """One server of each kind per test module, on a fresh workspace."""
    tmp = tmp_path_factory.mktemp("server")
    workspace = Workspace.create("rest", path=tmp / "ws")
    start = start_mlpipe_serve if request.param == "mlpipe serve" else start_jupyter_server
    server = start(workspace, tmp)
    yield server
    server.stop()
