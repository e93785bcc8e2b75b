"""Model: the workspace's model registry, as Azure ML SDK v1's ``azureml.core.model.Model``.

A registration copies the file or folder into the workspace (``models/<digest>/``, apart from step
outputs, so no clean-up of outputs removes it) and records the next version of the name. Steps find
registered models with ``Model.get_model_path(name)`` through their run's workspace.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import os
import shutil
import tempfile
from pathlib import Path

from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_registry_name
from mlpipe_jupyter.running import contract
from mlpipe_jupyter.sdk.context import model_details, string_dict
from mlpipe_jupyter.sdk.workspace import Workspace
from mlpipe_jupyter.store import make_writable


class Model:
    """A registered model: ``Model(ws, name)`` is its latest version, ``Model(ws, name, version=2)`` or
    ``Model(ws, id="name:2")`` a given one."""

    class Framework:
        """Values for ``model_framework`` (Azure's names)."""
        CUSTOM = "Custom"
        SCIKITLEARN = "ScikitLearn"
        TENSORFLOW = "TensorFlow"
        ONNX = "Onnx"

    def __init__(self, workspace, name=None, id=None, tags=None, properties=None, version=None, run_id=None,
                 model_framework=None, expand=True, **kwargs):
        if id is not None:
            name, version = _parse_id(id)
        if name is None and not (tags or properties or run_id or model_framework):
            raise UserError("Model(workspace, ...) needs a model name or id, as in Model(ws, 'my-model').")
        found = Model.list(workspace, name=name, tags=tags, properties=properties, run_id=run_id,
                           model_framework=model_framework, _version=version)
        if not found:
            raise UserError(_not_found(workspace, name, version, tags, properties, run_id, model_framework))
        self._load(workspace, found[0]._row)

    @classmethod
    def _from_row(cls, workspace, row) -> "Model":
        model = cls.__new__(cls)
        model._load(workspace, row)
        return model

    def _load(self, workspace, row: dict) -> None:
        self.workspace, self._row = workspace, row
        d = row["details"]
        self.name, self.version = row["name"], row["version"]
        self.id = f"{self.name}:{self.version}"
        self.tags, self.properties, self.description = dict(row["tags"]), dict(row["properties"]), row["description"]
        self.created_time = _dt.datetime.fromtimestamp(row["created"], _dt.timezone.utc)
        self.created_by = d.get("created_by")
        self.run_id = row["run_id"]
        self.experiment_name = d.get("experiment_name")
        self.model_framework = d.get("model_framework") or Model.Framework.CUSTOM
        self.model_framework_version = d.get("model_framework_version")
        self.datasets = d.get("datasets") or {}
        self.sample_input_dataset = d.get("sample_input_dataset")
        self.sample_output_dataset = d.get("sample_output_dataset")
        self.resource_configuration = d.get("resource_configuration")
        self.mime_type, self.unpack, self.parent_id, self.derived_model_ids = "application/octet-stream", False, None, []
        self.url = str(workspace._store.model_path(row))  # where its files are on this machine

    # -- registering ---------------------------------------------------------------------------------------
    @staticmethod
    def register(workspace, model_path, model_name, tags=None, properties=None, description=None, datasets=None,
                 model_framework=None, model_framework_version=None, child_paths=None, sample_input_dataset=None,
                 sample_output_dataset=None, resource_configuration=None, **kwargs) -> "Model":
        """Register a local file or folder as the next version of ``model_name``."""
        check_registry_name("Model", model_name)
        source = Path(model_path) if isinstance(model_path, (str, os.PathLike)) else None
        if source is None or not source.exists():
            raise UserError(f"Model.register: model_path {model_path!r} of model '{model_name}' is not an existing "
                            "file or folder.")
        details = model_details(datasets, model_framework, model_framework_version, sample_input_dataset,
                                sample_output_dataset, resource_configuration, f"Model.register of '{model_name}'")
        if child_paths:
            with tempfile.TemporaryDirectory() as tmp:
                return _register(workspace, _children(source, child_paths, Path(tmp), model_name), model_name,
                                 tags, properties, description, None, details)
        return _register(workspace, source, model_name, tags, properties, description, None, details)

    # -- finding -------------------------------------------------------------------------------------------
    @staticmethod
    def list(workspace, name=None, tags=None, properties=None, run_id=None, latest=False, dataset_id=None,
             expand=True, page_count=255, model_framework=None, _version=None) -> list["Model"]:
        """Registered models, newest first, keeping those that match every filter given: ``tags`` and
        ``properties`` as a list of keys or [key, value] pairs."""
        tag_filter, property_filter = _filters(tags, "tags"), _filters(properties, "properties")
        rows = workspace._store.models(name=name, run_id=run_id, latest=latest)
        out = []
        for row in rows:
            if _version is not None and row["version"] != int(_version):
                continue
            if model_framework is not None and (row["details"].get("model_framework") or "Custom") != model_framework:
                continue
            if dataset_id is not None and not _uses_dataset(row, dataset_id):
                continue
            if _matches(row["tags"], tag_filter) and _matches(row["properties"], property_filter):
                out.append(Model._from_row(workspace, row))
        return out

    @staticmethod
    def get_model_path(model_name, version=None, _workspace=None) -> str:
        """The path of a registered model's file or folder: in the given workspace, or inside a step in the
        workspace of its run; elsewhere, Azure's local places (``azureml-models/<name>/<version>``, ``./<name>``)."""
        workspace = _workspace if _workspace is not None else _run_workspace()
        if workspace is not None:
            return Model(workspace, model_name, version=version).url
        cache = Path("azureml-models") / model_name
        if cache.is_dir():
            versions = sorted((p for p in cache.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
            chosen = cache / str(version) if version is not None else (versions[-1] if versions else None)
            if chosen is not None and chosen.is_dir():
                entries = list(chosen.iterdir())
                return str(entries[0] if len(entries) == 1 else chosen)
        if version is None and Path(model_name).exists():
            return model_name
        if os.environ.get(contract.RUN_DIR_VAR):
            raise UserError(f"Model '{model_name}' cannot be looked up from this step: its compute target does not "
                            "reach the workspace (a container). Download the model into the step's source "
                            "directory, or run the step on local compute.")
        raise UserError(f"Model '{model_name}' was not found: outside a pipeline step pass the workspace, as in "
                        f"Model.get_model_path('{model_name}', _workspace=ws).")

    # -- using ---------------------------------------------------------------------------------------------
    def download(self, target_dir=".", exist_ok=False, exists_ok=None) -> str:
        """Copy the model's file or folder into ``target_dir``; returns its path there."""
        exist_ok = exist_ok or bool(exists_ok)
        src = Path(self.url)
        dest = Path(target_dir) / src.name
        if dest.exists() or dest.is_symlink():
            if not exist_ok:
                raise UserError(f"Model {self.id}: '{dest}' already exists; pass exist_ok=True to replace it.")
            if dest.is_dir() and not dest.is_symlink():
                make_writable(dest)
                shutil.rmtree(dest)
            else:
                dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, copy_function=shutil.copyfile)
            make_writable(dest)  # a copy of its own: the registered files stay read-only
        else:
            shutil.copyfile(src, dest)
        return str(dest)

    def add_tags(self, tags) -> None:
        self._update(tags={**self.tags, **string_dict(tags, "tags", f"Model {self.id}")})

    def remove_tags(self, tags) -> None:
        keys = [tags] if isinstance(tags, str) else list(tags or [])
        self._update(tags={k: v for k, v in self.tags.items() if k not in keys})

    def add_properties(self, properties) -> None:
        """New keys only: a property, once given, keeps its value (as in Azure)."""
        new = string_dict(properties, "properties", f"Model {self.id}")
        changed = sorted(k for k, v in new.items() if k in self.properties and self.properties[k] != v)
        if changed:
            raise UserError(f"Model {self.id}: properties {', '.join(changed)} already have other values; "
                            "properties cannot change once added (use tags for values that change).")
        self._update(properties={**self.properties, **new})

    def update(self, tags=None, description=None, **kwargs) -> None:
        """Replace the tags and/or the description."""
        if tags is not None:
            self._update(tags=string_dict(tags, "tags", f"Model {self.id}"))
        if description is not None:
            self._store.update_model(self.name, self.version, description=str(description))
            self.description = str(description)

    def _update(self, tags=None, properties=None) -> None:
        self._store.update_model(self.name, self.version, tags=tags, properties=properties)
        self.tags = dict(tags) if tags is not None else self.tags
        self.properties = dict(properties) if properties is not None else self.properties

    def delete(self) -> None:
        """Remove this version from the registry; its number is not given out again."""
        self._store.delete_model(self.name, self.version)

    @property
    def _store(self):
        return self.workspace._store

    def serialize(self) -> dict:
        """The model as a JSON-ready dict (Azure's keys)."""
        return {"id": self.id, "name": self.name, "version": self.version, "description": self.description,
                "tags": dict(self.tags), "properties": dict(self.properties), "runId": self.run_id,
                "experimentName": self.experiment_name,
                "createdTime": self.created_time.isoformat().replace("+00:00", "Z"), "createdBy": self.created_by,
                "framework": self.model_framework, "frameworkVersion": self.model_framework_version,
                "datasets": self.datasets, "sampleInputDataset": self.sample_input_dataset,
                "sampleOutputDataset": self.sample_output_dataset,
                "resourceConfiguration": self.resource_configuration, "mimeType": self.mime_type,
                "unpack": self.unpack, "parentId": self.parent_id, "derivedModelIds": list(self.derived_model_ids),
                "url": self.url}

    @staticmethod
    def deserialize(workspace, model_payload) -> "Model":
        return Model(workspace, id=model_payload["id"])

    def __repr__(self):
        return (f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, version={self.version}, "
                f"tags={self.tags}, properties={self.properties})")

    def __eq__(self, other):
        return isinstance(other, Model) and (other.workspace, other.id) == (self.workspace, self.id)

    def __hash__(self):
        return hash((self.workspace, self.id))


def register_run_model(run, model_name, model_path, tags, properties, description, details) -> Model:
    """``run.register_model``: a file or folder among a finished run's files (``outputs/model.pkl``)."""
    check_registry_name("Model", model_name)
    path = model_name if model_path is None else model_path
    root = run._run_dir().resolve()
    source = (root / path).resolve() if isinstance(path, (str, os.PathLike)) else None
    if source is None or not source.is_relative_to(root) or not source.exists():
        files = run.get_file_names()
        shown = ", ".join(files[:10]) + (" ..." if len(files) > 10 else "") if files else "none"
        raise UserError(f"Run {run.id} has no file or folder '{path}' to register as model '{model_name}' "
                        f"(its files: {shown}).")
    details = {**details, "experiment_name": run.experiment.name}
    return _register(run.experiment.workspace, source, model_name, tags, properties, description, run.id, details)


def _register(workspace, source: Path, name, tags, properties, description, run_id, details) -> Model:
    where = f"Model '{name}'"
    row = workspace._store.register_model(
        name, source, tags=string_dict(tags, "tags", where), properties=string_dict(properties, "properties", where),
        description=None if description is None else str(description), run_id=run_id,
        details={"created_by": {"userName": getpass.getuser()}, **details})
    return Model._from_row(workspace, row)


def _children(folder: Path, child_paths, tmp: Path, model_name) -> Path:
    """A folder of the same name holding only ``child_paths`` (Azure registers just those)."""
    if not folder.is_dir():
        raise UserError(f"Model.register: child_paths of model '{model_name}' need model_path to be a folder, "
                        f"not '{folder}'.")
    staged = tmp / folder.name
    for child in child_paths:
        src = (folder / child).resolve()
        if not src.is_relative_to(folder.resolve()) or not src.exists():
            raise UserError(f"Model.register: child path '{child}' of model '{model_name}' is not inside '{folder}'.")
        dest = staged / src.relative_to(folder.resolve())
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copyfile(src, dest)
    return staged


def _parse_id(model_id) -> tuple[str, int]:
    name, sep, version = str(model_id).rpartition(":")
    if not sep or not name or not version.isdigit():
        raise UserError(f"Model id {model_id!r} is not valid: a model id is '<name>:<version>', as in 'my-model:1'.")
    return name, int(version)


def _filters(wanted, what: str) -> list:
    """Azure's filter form, a list of 'key' or [key, value]; a dict is read as its [key, value] pairs."""
    if wanted is None:
        return []
    if isinstance(wanted, dict):
        return [(str(k), str(v)) for k, v in wanted.items()]
    if isinstance(wanted, str):
        wanted = [wanted]
    out = []
    for item in wanted:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((str(item[0]), str(item[1])))
        else:
            raise UserError(f"Model filter {what}: {item!r} is not a key or a [key, value] pair.")
    return out


def _matches(have: dict, wanted: list) -> bool:
    return all(w in have if isinstance(w, str) else have.get(w[0]) == w[1] for w in wanted)


def _uses_dataset(row: dict, dataset_id) -> bool:
    refs = [r for refs in (row["details"].get("datasets") or {}).values() for r in refs]
    return any(dataset_id in (r.get("id"), r.get("name")) for r in refs if isinstance(r, dict))


def _not_found(workspace, name, version, tags, properties, run_id, model_framework) -> str:
    what = f"Model '{name}'" + (f" version {version}" if version is not None else "") if name else "A model"
    filters = [f"{k}={v!r}" for k, v in (("tags", tags), ("properties", properties), ("run_id", run_id),
                                          ("model_framework", model_framework)) if v]
    versions = workspace._store.model_versions(name) if name else []
    known = f" (registered versions: {', '.join(map(str, versions))})" if versions else ""
    return (f"{what}{' matching ' + ', '.join(filters) if filters else ''} is not registered in workspace "
            f"'{workspace.name}'{known}. Register it with Model.register(ws, model_path, '{name or 'name'}') or "
            "run.register_model(...).")


def _run_workspace():
    """The workspace of the run this process is a step of, or None outside a step."""
    folder = os.environ.get(contract.WORKSPACE_VAR)
    return Workspace.from_config(folder) if folder else None
