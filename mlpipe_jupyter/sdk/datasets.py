"""Registered datasets as SDK objects: register one, get one back by name and version, list them."""
from __future__ import annotations

from mlpipe_jupyter.data.registered import registered_dataset
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_registry_name
from mlpipe_jupyter.sdk.data import FileDataset, TabularDataset
from mlpipe_jupyter.sdk.datastore import Datastore


def _definition(dataset) -> dict:
    d = dataset.to_dict()
    d.pop("name", None)
    d.pop("version", None)
    return d


def register_dataset(workspace, dataset, name, description=None, tags=None, create_new_version=False):
    check_registry_name("Dataset", name)
    version = workspace._store.register_dataset(name, dataset.kind, _definition(dataset), description, tags,
                                                create_new_version)
    if version is None:
        raise UserError(f"A dataset named '{name}' is already registered with another definition; "
                        "pass create_new_version=True to add a new version.")
    return get_dataset(workspace, name, version)


def get_dataset(workspace, name, version="latest"):
    record = registered_dataset(workspace._store, name, version)
    return dataset_from_definition(workspace, record["definition"], record["kind"], name=name,
                                   version=record["version"], description=record["description"], tags=record["tags"])


def dataset_from_definition(workspace, definition: dict, kind: str, **registration):
    """A dataset object from its stored definition (the registry's or a pipeline file's)."""
    sources = [dict(s, _ds=Datastore(workspace, s["datastore"])) if "datastore" in s else dict(s)
               for s in definition.get("sources", [])]
    cls = TabularDataset if kind == "tabular" else FileDataset
    ds = cls(sources, options=definition.get("options"), **registration)
    ds._workspace = workspace
    return ds


def list_datasets(workspace) -> dict:
    return {n: get_dataset(workspace, n) for n in workspace._store.dataset_names()}
