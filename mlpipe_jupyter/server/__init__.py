"""The REST server: Azure ML's published-pipeline endpoints and run queries over HTTP, served by Jupyter
Server (as an extension of any Jupyter server, or headless through ``mlpipe serve``), behind Jupyter's
own authentication."""
from __future__ import annotations

from mlpipe_jupyter.server.app import MlpipeServer


def _jupyter_server_extension_points():
    """How Jupyter Server finds the extension when ``mlpipe_jupyter.server`` is enabled."""
    return [{"module": "mlpipe_jupyter.server.app", "app": MlpipeServer}]
