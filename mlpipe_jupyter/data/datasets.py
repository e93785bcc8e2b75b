"""Registered datasets: named, versioned dataset definitions kept in the workspace database."""
from __future__ import annotations

import json
import time

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_registry_name


def _definition(dataset) -> dict:
    d = dataset.to_dict()
    d.pop("name", None)
    d.pop("version", None)
    return d


def register_dataset(workspace, dataset, name, description=None, tags=None, create_new_version=False):
    check_registry_name("Dataset", name)
    definition = _definition(dataset)
    store = workspace._store
    with store.tx() as db:
        row = db.execute("SELECT version, definition FROM datasets WHERE name=? ORDER BY version DESC LIMIT 1",
                         (name,)).fetchone()
        if row is not None and json.loads(row["definition"]) == definition:
            version = row["version"]
        elif row is not None and not create_new_version:
            raise UserError(f"A dataset named '{name}' is already registered with another definition; "
                            "pass create_new_version=True to add a new version.")
        else:
            version = 1 if row is None else row["version"] + 1
            db.execute("INSERT INTO datasets VALUES(?,?,?,?,?,?,?)",
                       (name, version, dataset.kind, json.dumps(definition), description,
                        json.dumps(tags or {}), time.time()))
    return get_dataset(workspace, name, version)


def get_dataset(workspace, name, version="latest"):
    db = workspace._store.db
    if version in (None, "latest"):
        row = db.execute("SELECT * FROM datasets WHERE name=? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
    else:
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise UserError(f"Dataset '{name}': version must be a number, None or 'latest' (got {version!r}).") from None
        row = db.execute("SELECT * FROM datasets WHERE name=? AND version=?", (name, number)).fetchone()
    if row is None:
        versions = [r["version"] for r in db.execute("SELECT version FROM datasets WHERE name=? ORDER BY version",
                                                     (name,))]
        if versions:
            raise UserError(f"Dataset '{name}' has no version {version} "
                            f"(versions: {', '.join(map(str, versions))}).")
        known = [r["name"] for r in db.execute("SELECT DISTINCT name FROM datasets ORDER BY name")]
        raise UserError(f"No dataset named '{name}' is registered (registered: {', '.join(known) or 'none'}).")
    return dataset_from_definition(workspace, json.loads(row["definition"]), row["kind"], name=name,
                                   version=row["version"], description=row["description"],
                                   tags=json.loads(row["tags"] or "{}"))


def dataset_from_definition(workspace, definition: dict, kind: str, **registration):
    """A dataset object from its stored definition (the registry's or a pipeline file's)."""
    from mlpipe_jupyter.sdk.data import FileDataset, TabularDataset
    from mlpipe_jupyter.data.datastore import Datastore

    sources = [dict(s, _ds=Datastore(workspace, s["datastore"])) if "datastore" in s else dict(s)
               for s in definition.get("sources", [])]
    cls = TabularDataset if kind == "tabular" else FileDataset
    ds = cls(sources, options=definition.get("options"), **registration)
    ds._workspace = workspace
    return ds


def list_datasets(workspace) -> dict:
    names = [r["name"] for r in workspace._store.db.execute("SELECT DISTINCT name FROM datasets ORDER BY name")]
    return {n: get_dataset(workspace, n) for n in names}
