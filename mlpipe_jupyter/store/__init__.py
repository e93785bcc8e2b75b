"""The embedded store, the floor every layer stands on: one SQLite database (WAL) for the history and
registries, plus content-addressed files. All SQL lives in this package, behind ``Store``'s methods.

Layout of the workspace folder (``.mlpipe/``)::

    mlpipe.db          runs, metrics, outputs, datastores, datasets, environments, models, modules, file-hash cache
    objects/ab/cdef..  content-addressed blobs (snapshot files, manifests)
    data/<digest>/     committed step outputs, one read-only, sealed directory per content digest
    models/<digest>/   registered models' files, read-only, apart from outputs so no clean-up takes them
    modules/<digest>/  published pipeline module versions' files, read-only
    published/<digest>/ published pipelines' frozen step snapshots, read-only
    runs/<run_id>/     per-run files: logs/, outputs/, images and uploaded files
    tmp/               staging area; a step's outputs are renamed out of here only on success
    secret.key         per-workspace key that fingerprints secrets for reuse without storing them

The folder is private to its user (0700, database and key 0600) whatever the umask: runs can hold
data and parameters other users of the machine must not read.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from mlpipe_jupyter.store.database import SCHEMA_VERSION, Database, StoreError, _private_dir, store_error
from mlpipe_jupyter.store.files import (SEAL_NAME, Files, canonical_json, make_writable, sha256_bytes,
                                        sha256_file)
from mlpipe_jupyter.store.processes import hostname, new_id, process_alive, process_start_time
from mlpipe_jupyter.store.models import Models
from mlpipe_jupyter.store.modules import Modules
from mlpipe_jupyter.store.published import Published
from mlpipe_jupyter.store.queue import RunQueue
from mlpipe_jupyter.store.registry import Registry
from mlpipe_jupyter.store.schedules import Schedules
from mlpipe_jupyter.status import ACTIVE_STATUSES, FINAL_STATUSES
from mlpipe_jupyter.store.runs import Runs

__all__ = ["Store", "StoreError", "store_error", "SCHEMA_VERSION", "SEAL_NAME", "ACTIVE_STATUSES", "FINAL_STATUSES",
           "canonical_json", "make_writable", "sha256_bytes", "sha256_file", "hostname", "new_id", "process_alive",
           "process_start_time"]


class Store(Runs, RunQueue, Registry, Models, Modules, Published, Schedules, Files, Database):
    """Thread-safe access to one workspace's database and files (one SQLite connection per thread)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        _private_dir(self.root)
        for sub in ("objects", "data", "models", "runs", "tmp"):
            _private_dir(self.root / sub)
        self._local = threading.local()
        self._open_database()
