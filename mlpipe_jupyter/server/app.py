"""The Jupyter Server extension: where its handlers are mounted and which workspace they serve."""
from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Unicode

from mlpipe_jupyter.server.handlers import HANDLERS

API_PREFIX = "mlpipe/api"


class MlpipeServer(ExtensionApp):
    """Serves ``/mlpipe/api/`` for one workspace (``c.MlpipeServer.workspace``, else the folder the server
    was started in, or any folder above it)."""

    name = "mlpipe_jupyter.server"
    extension_url = "/mlpipe/api/openapi.json"
    load_other_extensions = False  # `mlpipe serve` is this extension alone: no notebook UI

    workspace = Unicode("", config=True,
                        help="A folder at or below the workspace to serve (default: the server's working directory).")

    @classmethod
    def get_extension_package(cls):
        return "mlpipe_jupyter.server"

    def initialize_settings(self):
        self.settings["mlpipe_workspace"] = os.path.abspath(self.workspace or os.getcwd())

    def initialize_handlers(self):
        for pattern, handler in HANDLERS:
            self.handlers.append((url_path_join("/", API_PREFIX, pattern), handler))
