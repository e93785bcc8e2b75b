"""Registered datasets, as definitions: what a name and version stand for in the workspace registry."""
from __future__ import annotations

from mlpipe_jupyter.errors import UserError


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
