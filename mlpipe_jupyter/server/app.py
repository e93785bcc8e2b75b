"""The Jupyter Server extension: where its handlers are mounted and which workspace they serve."""
from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Enum, Float, Integer, Unicode

from mlpipe_jupyter.errors import MlpipeError
from mlpipe_jupyter.sdk.workspace import Workspace
from mlpipe_jupyter.server.dispatcher import Dispatcher
from mlpipe_jupyter.server.handlers import HANDLERS
from mlpipe_jupyter.server.record import remove_record, write_record
from mlpipe_jupyter.server.scheduler import Scheduler

API_PREFIX = "mlpipe/api"


class MlpipeServer(ExtensionApp):
    """Serves ``/mlpipe/api/`` for one workspace (``c.MlpipeServer.workspace``, else the folder the server
    was started in, or any folder above it)."""

    name = "mlpipe_jupyter.server"
    extension_url = "/mlpipe/api/openapi.json"
    load_other_extensions = False  # `mlpipe serve` is this extension alone: no notebook UI

    workspace = Unicode("", config=True,
                        help="A folder at or below the workspace to serve (default: the server's working directory).")
    schedule_tick_seconds = Float(1.0, config=True, help="How often the scheduler looks for schedules due.")
    schedule_minute_seconds = Float(60.0, config=True,
                                    help="For tests only: the length of a Minute schedule's minute, in seconds.")
    schedule_poll_seconds = Float(0.0, config=True,
                                  help="For tests only: when above 0, how often datastore schedules poll, in seconds "
                                       "(instead of each schedule's polling_interval minutes).")
    max_concurrent_runs = Integer(os.cpu_count() or 1, min=1, config=True,
                                  help="How many queued runs (REST calls, schedules) may run at once, over all the "
                                       "servers on the workspace (default: the number of CPUs).")
    unknown_parameters = Enum(["reject", "ignore"], "reject", config=True,
                              help="What a trigger with a parameter its pipeline lacks gets: 'reject' (400 naming "
                                   "it, the default) or 'ignore' (Azure ML's way: the name is dropped, and the "
                                   "answer's 'IgnoredParameters' lists it).")
    scheduler = None
    _record_folder = None
    dispatcher = None

    @classmethod
    def get_extension_package(cls):
        return "mlpipe_jupyter.server"

    def initialize_settings(self):
        self.settings["mlpipe_workspace"] = os.path.abspath(self.workspace or os.getcwd())
        self.settings["mlpipe_unknown_parameters"] = self.unknown_parameters

    def initialize_handlers(self):
        for pattern, handler in HANDLERS:
            self.handlers.append((url_path_join("/", API_PREFIX, pattern), handler))

    async def _start_jupyter_server_extension(self, serverapp):
        """The scheduler starts with the server (``mlpipe serve``, ``jupyter server`` or lab alike), and the
        workspace records where the server is, so published pipelines' endpoints point at it."""
        self._record_folder = None
        try:
            folder = Workspace.from_config(self.settings["mlpipe_workspace"]).folder
            write_record(folder, serverapp.connection_url, serverapp.identity_provider.token or None)
            self._record_folder = folder
        except (MlpipeError, OSError) as e:  # no workspace here (the API answers 503 saying so), or read-only
            self.log.warning("mlpipe: no server record written: %s", e)
        self.scheduler = Scheduler(self.settings["mlpipe_workspace"], self.schedule_tick_seconds,
                                   self.schedule_minute_seconds, self.schedule_poll_seconds)
        self.scheduler.start()
        self.dispatcher = Dispatcher(self.settings["mlpipe_workspace"], self.max_concurrent_runs)
        self.dispatcher.start()

    async def stop_extension(self):
        if self._record_folder is not None:
            remove_record(self._record_folder)
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
