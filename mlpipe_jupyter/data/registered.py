"""Registered datasets, as definitions: what a name and version stand for in the workspace registry."""
from __future__ import annotations

import json
import uuid

from mlpipe_jupyter.errors import UserError

_ID_NAMESPACE = uuid.UUID("6f1c3c2e-5b7a-4d0e-9a51-3f0f2b6f9c11")


def registered_dataset(store, name: str, version="latest") -> dict:
    """The registry's record of a dataset ({"name", "version", "kind", "definition", ...}); a missing name
    or version is a UserError that lists what there is."""
    if version in (None, "latest"):
        number = None
    else:
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise UserError(f"Dataset '{name}': version must be a number, None or 'latest' (got {version!r}).") from None
    record = store.dataset(name, number)
    if record is None:
        versions = store.dataset_versions(name)
        if versions:
            raise UserError(f"Dataset '{name}' has no version {version} (versions: {', '.join(map(str, versions))}).")
        raise UserError(f"No dataset named '{name}' is registered (registered: "
                        f"{', '.join(store.dataset_names()) or 'none'}).")
    return record


def dataset_id(record: dict) -> str:
    """A registered version's id: a uuid fixed by its registration (name, version and when it was made),
    so it stays the same for as long as the registry keeps that version."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{record['name']}\0{record['version']}\0{record.get('created')!r}"))


def saved_dataset_id(kind: str, definition: dict) -> str:
    """The id an unregistered dataset gets when a submission saves it: fixed by what it is, so the same
    definition saved twice is one saved dataset."""
    return str(uuid.uuid5(_ID_NAMESPACE, "saved\0" + json.dumps([kind, definition], sort_keys=True)))
