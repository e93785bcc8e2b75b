"""Workspace: one folder (``.mlpipe/``) holding the run history, datastores and registries."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from mlpipe_jupyter import compute
from mlpipe_jupyter.errors import UserError, WorkspaceNotFoundError
from mlpipe_jupyter.running.contract import RUN_DIR_VAR
from mlpipe_jupyter.sdk.compute import list_targets, workspace_targets
from mlpipe_jupyter.sdk.data import list_datasets
from mlpipe_jupyter.sdk.datastore import Datastore
from mlpipe_jupyter.sdk.environment import Environment
from mlpipe_jupyter.store import Store

WORKSPACE_DIR = ".mlpipe"
DEFAULT_DATASTORES = ("workspaceblobstore", "workspacefilestore")  # the first is the default, as in Azure
_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def _open_store(folder: Path) -> Store:
    """The process's store for a folder; every open also cleans up after runners that died since,
    because another process using this workspace may have been killed after our first open. Not from
    inside a step: it runs in a process namespace of its own, where its runner looks dead."""
    key = str(folder)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = Store(folder)
    if os.environ.get(RUN_DIR_VAR):
        return store
    recovered = store.recover_orphans()
    if recovered:  # what those runs left on a compute target (a container) would run on unobserved
        compute.recover(recovered, list_targets(store))
    return store


def _read_config(config: Path) -> dict:
    """The workspace file: its ``name``, and what Azure calls recorded when it was created."""
    damaged = f"The workspace file '{config}' is damaged"
    try:
        doc = json.loads(config.read_text())
    except ValueError as e:
        raise UserError(f"{damaged} (not JSON: {e}); fix it or write {{\"name\": \"...\"}} into it.") from None
    except OSError as e:
        raise UserError(f"The workspace file '{config}' cannot be read ({e.strerror or e}).") from None
    name = doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{damaged} (it needs a \"name\" string); fix it or write {{\"name\": \"...\"}} into it.")
    return doc


def _workspace_name(config: Path) -> str:
    return _read_config(config)["name"]


class Workspace:
    """``Workspace(path)`` opens the workspace whose folder is ``path/.mlpipe``."""

    def __init__(self, path=".", subscription_id=None, resource_group=None, workspace_name=None, **_azure_kwargs):
        root = Path(path).resolve()
        folder = root / WORKSPACE_DIR
        config = folder / "config.json"
        if folder.exists() and not folder.is_dir():
            raise UserError(f"'{folder}' should be the workspace folder, but it is a file.")
        if config.exists() and not config.is_file():
            raise UserError(f"The workspace file '{config}' is damaged (it is not a file).")
        if not config.is_file():
            raise WorkspaceNotFoundError(
                f"No workspace at '{root}' (no {WORKSPACE_DIR}/config.json). Create one with "
                f"Workspace.create(name, path='{root}') or `mlpipe init`.")
        self.path = root
        self.folder = folder
        self.config = _read_config(config)
        self.name = self.config["name"]
        self._store = _open_store(folder)
        self._add_default_datastores()

    def _add_default_datastores(self):
        """Azure's two default datastores, also in workspaces made before there were two."""
        names = self._store.datastore_names()
        for name in DEFAULT_DATASTORES:
            if name not in names:
                Datastore.register_local(self, name, self.folder / "datastores" / name)
        if self._store.default_datastore_name() is None:
            self.set_default_datastore(DEFAULT_DATASTORES[0])

    # Azure's coordinates of a workspace: what was given when it was created, else placeholders
    subscription_id = property(lambda self: self._azure("subscription_id", "00000000-0000-0000-0000-000000000000"))
    resource_group = property(lambda self: self._azure("resource_group", "local"))
    location = property(lambda self: self._azure("location", "local"))

    def _azure(self, key, placeholder):
        return (self.config.get("azure") or {}).get(key) or placeholder

    @staticmethod
    def create(name, path=".", exist_ok=False, subscription_id=None, resource_group=None, location=None,
               create_resource_group=True, **_azure_kwargs) -> "Workspace":
        """Make the workspace folder with its default datastore; Azure's cloud arguments are accepted and unused."""
        root = Path(path).resolve()
        folder = root / WORKSPACE_DIR
        config = folder / "config.json"
        if config.is_file():
            existing = _workspace_name(config)
            if not exist_ok:
                raise UserError(f"A workspace ('{existing}') already exists at '{root}'; pass exist_ok=True to open it.")
            if existing != name:
                raise UserError(f"The workspace at '{root}' is named '{existing}', not '{name}'.")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)  # private whatever the umask: runs hold data and parameters
            tmp = folder / f"config.json.{os.getpid()}.{threading.get_ident()}.tmp"  # two creators at once
            fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w") as f:
                azure = {"subscription_id": subscription_id, "resource_group": resource_group, "location": location}
                azure = {k: v for k, v in azure.items() if isinstance(v, str) and v}
                f.write(json.dumps({"name": name, "created": time.time(), **({"azure": azure} if azure else {})}))
            os.replace(tmp, config)
        return Workspace(root)

    @staticmethod
    def from_config(path=None, auth=None, _file_name=None) -> "Workspace":
        """The nearest workspace at or above ``path`` (default: the current directory)."""
        start = Path(path or os.getcwd()).resolve()
        if start.is_file():
            start = start.parent
        if start.name == WORKSPACE_DIR:
            start = start.parent
        for p in (start, *start.parents):
            folder = p / WORKSPACE_DIR
            if (folder / "config.json").exists() or (folder / "mlpipe.db").exists():  # damaged ones say so
                return Workspace(p)
        raise WorkspaceNotFoundError(
            f"No workspace found in '{start}' or any folder above it. Create one with Workspace.create(name).")

    # -- registries ------------------------------------------------------------------------------------
    @property
    def datastores(self) -> dict:
        return {n: Datastore(self, n) for n in self._store.datastore_names()}

    def get_default_datastore(self):
        name = self._store.default_datastore_name()
        if name is None:
            raise UserError(f"Workspace '{self.name}' has no default datastore.")
        return Datastore(self, name)

    def set_default_datastore(self, name):
        if not self._store.set_default_datastore(name):
            raise UserError(f"No datastore named '{name}' to make the default.")

    @property
    def compute_targets(self) -> dict:
        """name -> ComputeTarget, as in Azure ML."""
        return workspace_targets(self)

    def _compute_records(self) -> dict:
        """name -> {"kind", "config"}: what the planner and the compute layer read."""
        return list_targets(self._store)

    @property
    def experiments(self) -> dict:
        # the composition root (planner, runner) loads when runs are asked for: `mlpipe runs` starts without it
        from mlpipe_jupyter.sdk.experiment import Experiment

        return {name: Experiment(self, name) for name in self._store.experiment_names()}

    @property
    def datasets(self) -> dict:
        return list_datasets(self)

    @property
    def environments(self) -> dict:
        """The latest version of each registered environment, by name (as Azure's property)."""
        return {d["name"]: Environment._registered(self, d) for d in self._store.latest_environment_definitions()}

    def get_details(self) -> dict:
        return {"name": self.name, "path": str(self.path), "folder": str(self.folder),
                "subscriptionId": self.subscription_id, "resourceGroup": self.resource_group,
                "location": self.location}

    def write_config(self, path=None, file_name=None):
        return str(self.folder / "config.json")

    def __repr__(self):
        return f"Workspace(name={self.name!r}, path={str(self.path)!r})"

    def __eq__(self, other):
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self):
        return hash(self.path)

