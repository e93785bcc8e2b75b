"""What the server's background work (the scheduler, the dispatcher) shares: a daemon thread calling
``tick()`` until stopped, the workspace opened lazily (a server may start before its workspace exists),
and a failure logged once however often it repeats, never ending the server."""
from __future__ import annotations

import logging
import threading
import time

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.sdk.workspace import Workspace

log = logging.getLogger(__name__)
NO_WORKSPACE_SECONDS = 5.0  # how often a server outside any workspace looks for one again


class BackgroundLoop:
    name = "mlpipe-background"

    def __init__(self, workspace_path: str, tick_seconds: float):
        self.workspace_path = workspace_path
        self.tick_seconds = tick_seconds
        self._workspace = None
        self._look_again = 0.0
        self._stop = threading.Event()
        self._thread = None
        self._said = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def tick(self) -> list[str]:
        raise NotImplementedError

    def next_wait(self) -> float:
        """Seconds until the next tick."""
        return self.tick_seconds

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - background work must never end the server
                self._say(f"{self.name}: {type(e).__name__}: {e}")
            self._stop.wait(self.next_wait())

    def _say(self, message: str) -> None:
        if message != self._said:  # the same trouble every tick is logged once
            log.warning(message)
            self._said = message

    def workspace(self):
        """The workspace, or None while the server's folder is in none (looked for again now and then)."""
        if self._workspace is None and time.monotonic() >= self._look_again:
            try:
                self._workspace = Workspace.from_config(self.workspace_path)
            except UserError:
                self._look_again = time.monotonic() + NO_WORKSPACE_SECONDS
        return self._workspace
