"""Data a step reads or writes: external references, intermediate data and datasets.

These are plain descriptions; nothing here touches the data. Links between steps are made by
passing the same ``PipelineData`` (or ``OutputFileDatasetConfig``) object as one step's output and
another step's input, as in Azure ML SDK v1.
"""
from __future__ import annotations

import re

from mlpipe_jupyter.data.datastore import Datastore
from mlpipe_jupyter.data.inputs import dataset_local_paths
from mlpipe_jupyter.data.registered import registered_dataset
from mlpipe_jupyter.data.tables import read_delimited
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_registry_name, fit_data_name
from mlpipe_jupyter.model.names import check_data_name as _check_name


class DataReference:
    """A path on a datastore, consumed by a step as an input (mounted or downloaded)."""

    def __init__(self, datastore, data_reference_name=None, path_on_datastore=None, mode="mount",
                 path_on_compute=None, overwrite=False):
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.data_reference_name = _check_name(
            "DataReference", data_reference_name or _default_name(datastore.name, path_on_datastore))
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite
        datastore.resolve(path_on_datastore)  # refuse an escaping path now, not at run time

    @property
    def name(self):
        return self.data_reference_name

    def as_mount(self):
        return DataReference(self.datastore, self.data_reference_name, self.path_on_datastore, "mount")

    def as_download(self, path_on_compute=None, overwrite=False):
        return DataReference(self.datastore, self.data_reference_name, self.path_on_datastore, "download",
                             path_on_compute, overwrite)

    def path(self, path=None, data_reference_name=None):
        import posixpath

        joined = posixpath.join(self.path_on_datastore or "", path or "")
        return DataReference(self.datastore, data_reference_name, joined, self.mode)

    def to_dict(self):
        return {"kind": "data_reference", "datastore": self.datastore.name, "path": self.path_on_datastore,
                "mode": self.mode}

    def __repr__(self):
        return f"$AZUREML_DATAREFERENCE_{self.data_reference_name}"


def _default_name(datastore_name, path):
    base = re.sub(r"[^A-Za-z0-9_]", "_", f"{datastore_name}_{path or ''}").strip("_")
    return fit_data_name(base if base and not base[0].isdigit() else f"d_{base}")


class PipelineData:
    """Intermediate data: written by one step, read by the steps that take it as input."""

    def __init__(self, name, datastore=None, output_name=None, output_mode="mount", output_path_on_compute=None,
                 output_overwrite=None, data_type=None, is_directory=None, pipeline_output_name=None,
                 training_output=None):
        self.name = _check_name("PipelineData", name)
        self.datastore = datastore
        self.output_name = output_name or name
        self.output_mode = output_mode
        self.is_directory = True if is_directory is None else bool(is_directory)
        self.pipeline_output_name = pipeline_output_name
        self._producer = None  # the step that lists this as an output; set by the step

    def as_input(self, input_name=None):
        return InputBinding(self, input_name or self.name, "mount")

    def as_mount(self, input_name=None):
        return InputBinding(self, input_name or self.name, "mount")

    def as_download(self, input_name=None, path_on_compute=None, overwrite=None):
        return InputBinding(self, input_name or self.name, "download")

    def as_dataset(self):
        return self

    def to_dict(self):
        d = {"kind": "pipeline_data", "is_directory": self.is_directory}
        if self.datastore is not None:
            d["datastore"] = self.datastore.name
        return d

    def __repr__(self):
        return f"$AZUREML_DATAREFERENCE_{self.name}"


class OutputFileDatasetConfig(PipelineData):
    """Intermediate data that is also copied to a datastore destination when its step succeeds.

    ``destination=(datastore, "path/{run-id}/{output-name}")`` as in Azure ML; without one it is kept
    in the workspace like ``PipelineData``.
    """

    def __init__(self, name=None, destination=None, source=None, partition_format=None):
        import uuid

        super().__init__(name or f"output_{uuid.uuid4().hex[:8]}")
        # an unnamed output is renamed after its step, so rebuilding the same pipeline reuses it
        self._auto_named = name is None
        self.destination = destination
        if destination is not None:
            if not (isinstance(destination, tuple) and len(destination) == 2):
                raise UserError(f"OutputFileDatasetConfig '{self.name}': destination must be (datastore, path).")
            datastore, path = destination
            datastore.resolve(path.replace("{run-id}", "x").replace("{output-name}", self.name))
        self._register_as = None

    def as_upload(self, overwrite=False, source_globs=None):
        return self

    def read_delimited_files(self, *args, **kwargs):
        return self

    def register_on_complete(self, name, description=None, tags=None):
        self._register_as = check_registry_name("Dataset", name)  # also a folder: registered/<name>/
        return self

    def to_dict(self):
        d = super().to_dict()
        d["kind"] = "output_file_dataset"
        if self.destination is not None:
            d["destination"] = {"datastore": self.destination[0].name, "path": self.destination[1]}
        if self._register_as:
            d["register_as"] = self._register_as
        return d


class InputBinding:
    """How a step consumes intermediate data: under which input name, mounted or downloaded."""

    def __init__(self, data, input_name, mode="mount"):
        self.data = data
        self.input_name = _check_name("Input", input_name)
        self.mode = mode

    @property
    def name(self):
        return self.input_name

    def __repr__(self):
        return f"$AZUREML_DATAREFERENCE_{self.input_name}"


class DatasetConsumptionConfig:
    """A dataset taken by a step under a name: ``ds.as_named_input("raw").as_mount()``."""

    def __init__(self, name, dataset, mode="direct"):
        self.name = _check_name("Dataset input", name)
        self.dataset = dataset
        self.mode = mode

    def as_mount(self, path_on_compute=None):
        return DatasetConsumptionConfig(self.name, self.dataset, "mount")

    def as_download(self, path_on_compute=None):
        return DatasetConsumptionConfig(self.name, self.dataset, "download")

    def __repr__(self):
        return f"DatasetConsumptionConfig:{self.name}"


class _DatasetFactory:
    def __init__(self, cls):
        self._cls = cls

    def __get__(self, obj, owner):
        return self._cls


class AbstractDataset:
    """Files (``FileDataset``) or a table (``TabularDataset``) on datastores or local paths."""

    kind = "file"

    def __init__(self, sources, name=None, version=None, description=None, tags=None, options=None):
        self.sources = sources  # list of {"datastore": name, "path": p} or {"path": local absolute path}
        self.name = name
        self.version = version
        self.description = description
        self.tags = tags or {}
        self.options = options or {}
        self._workspace = None

    @staticmethod
    def _sources_from(path, workspace_hint=None):
        import os

        items = path if isinstance(path, list) else [path]
        out = []
        for item in items:
            if isinstance(item, tuple):
                datastore, p = item
                datastore.resolve(p)
                out.append({"datastore": datastore.name, "path": p, "_ds": datastore})
            elif isinstance(item, DataReference):
                out.append({"datastore": item.datastore.name, "path": item.path_on_datastore, "_ds": item.datastore})
            elif isinstance(item, DataPath):
                item.datastore.resolve(item.path_on_datastore)
                out.append({"datastore": item.datastore.name, "path": item.path_on_datastore, "_ds": item.datastore})
            elif isinstance(item, (str, os.PathLike)):
                text = str(item)
                out.append({"url": text} if "://" in text else {"path": os.path.abspath(text)})
            else:
                raise UserError(f"Dataset path {item!r} is not a (datastore, path) tuple, DataPath or string.")
        return out

    def as_named_input(self, name):
        return DatasetConsumptionConfig(name, self)

    def as_mount(self, path_on_compute=None):
        return DatasetConsumptionConfig(self.name or "dataset", self, "mount")

    def as_download(self, path_on_compute=None):
        return DatasetConsumptionConfig(self.name or "dataset", self, "download")

    def register(self, workspace, name, description=None, tags=None, create_new_version=False):
        return register_dataset(workspace, self, name, description, tags, create_new_version)

    def to_dict(self):
        d = {"kind": "dataset", "dataset_type": self.kind,
             "sources": [{k: v for k, v in s.items() if not k.startswith("_")} for s in self.sources]}
        if self.name:
            d.update(name=self.name, version=self.version)
        if self.options:
            d["options"] = self.options
        return d

    # -- reading (local use, and inside a step through Run.input_datasets) --------------------------------
    def _local_paths(self, workspace=None):
        return dataset_local_paths(workspace or self._workspace, {"sources": self.sources})

    def __repr__(self):
        label = f"{self.name}:{self.version}" if self.name else "unregistered"
        return f"{type(self).__name__}({label}, sources={self.to_dict()['sources']})"


class FileDataset(AbstractDataset):
    kind = "file"

    def to_path(self):
        import os

        out = []
        for p in self._local_paths():
            if os.path.isdir(p):
                out += [os.path.relpath(os.path.join(d, f), p) for d, _, fs in os.walk(p) for f in fs]
            else:
                out.append(os.path.basename(p))
        return sorted(out)

    def download(self, target_path=None, overwrite=False):
        import shutil
        import tempfile
        from pathlib import Path

        target = Path(target_path or tempfile.mkdtemp(prefix="dataset-"))
        written = []
        for p in self._local_paths():
            p = Path(p)
            files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
            for f in files:
                dest = target / (f.name if p.is_file() else f.relative_to(p))
                if dest.exists() and not overwrite:
                    raise UserError(f"download: {dest} exists; pass overwrite=True.")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
                written.append(str(dest))
        return written

    def mount(self, mount_point=None):
        paths = self._local_paths()
        return _Mount(paths[0] if len(paths) == 1 else paths)


class _Mount:
    """What ``FileDataset.mount()`` returns: a context whose mount_point is the data's local path."""

    def __init__(self, path):
        self.mount_point = path

    def start(self):
        return self

    def stop(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class TabularDataset(AbstractDataset):
    kind = "tabular"

    def to_pandas_dataframe(self):
        return read_delimited(self._local_paths(), self.options)

    def to_csv_files(self):
        return FileDataset(self.sources, self.name, self.version)


class _FileFactory:
    @staticmethod
    def from_files(path, validate=True, partition_format=None, is_file=False):
        return FileDataset(AbstractDataset._sources_from(path))


class _TabularFactory:
    @staticmethod
    def from_delimited_files(path, validate=True, include_path=False, infer_column_types=True,
                             set_column_types=None, separator=",", header=True, **kwargs):
        opts = {"separator": separator, "header": bool(header)}
        return TabularDataset(AbstractDataset._sources_from(path), options=opts)


class DataPath:
    """A path on a datastore, as Azure ML's ``DataPath(datastore, path_on_datastore)``."""

    def __init__(self, datastore=None, path_on_datastore=None, name=None):
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.name = name


class Dataset:
    """Entry point as in Azure ML: ``Dataset.File.from_files``, ``Dataset.Tabular.from_delimited_files``."""

    File = _FileFactory
    Tabular = _TabularFactory

    @staticmethod
    def get_by_name(workspace, name, version="latest"):
        return get_dataset(workspace, name, version)

    @staticmethod
    def get_all(workspace):
        return list_datasets(workspace)


# -- the dataset registry, as SDK objects --------------------------------------------------------------
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
