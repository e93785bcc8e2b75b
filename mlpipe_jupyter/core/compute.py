"""Compute targets by name. ``local`` always exists; other kinds plug in through compute/."""
from __future__ import annotations

import json
import time

from ..errors import UserError

BUILTIN_TARGETS = {"local": "local"}


class ComputeTarget:
    """A named place to run steps: ``ComputeTarget(ws, "local")``."""

    def __init__(self, workspace, name):
        targets = workspace.compute_targets
        if name not in targets:
            raise UserError(f"No compute target named '{name}' in workspace '{workspace.name}' "
                            f"(known: {', '.join(sorted(targets))}).")
        self.workspace = workspace
        self.name = name
        self.type = targets[name]["kind"]
        self.config = targets[name]["config"]

    @staticmethod
    def create(workspace, name, provisioning_configuration):
        kind, config = provisioning_configuration.kind, provisioning_configuration.to_dict()
        with workspace._store.tx() as db:
            db.execute("INSERT OR REPLACE INTO compute_targets VALUES(?,?,?,?)",
                       (name, kind, json.dumps(config), time.time()))
        return ComputeTarget(workspace, name)

    attach = create

    def wait_for_completion(self, show_output=False, **kwargs):
        return None

    def delete(self):
        with self.workspace._store.tx() as db:
            db.execute("DELETE FROM compute_targets WHERE name=?", (self.name,))

    def __repr__(self):
        return f"ComputeTarget(name={self.name!r}, type={self.type!r})"


class _ProvisioningConfiguration:
    def __init__(self, kind, **config):
        self.kind = kind
        self._config = config

    def to_dict(self):
        return dict(self._config)


class LocalCompute:
    """Steps as subprocesses of the machine running the pipeline."""

    @staticmethod
    def provisioning_configuration(max_concurrency=None):
        return _ProvisioningConfiguration("local", max_concurrency=max_concurrency)


def target_name(compute_target) -> str:
    if compute_target is None:
        return "local"
    if isinstance(compute_target, str):
        return compute_target
    return getattr(compute_target, "name", str(compute_target))


def list_targets(store) -> dict:
    out = {name: {"kind": kind, "config": {}} for name, kind in BUILTIN_TARGETS.items()}
    for r in store.db.execute("SELECT name, kind, config FROM compute_targets"):
        out[r["name"]] = {"kind": r["kind"], "config": json.loads(r["config"])}
    return out
