"""Data a step reads or writes: external references, intermediate data and datasets.

These are plain descriptions; nothing here touches the data. Links between steps are made by
passing the same ``PipelineData`` (or ``OutputFileDatasetConfig``) object as one step's output and
another step's input, as in Azure ML SDK v1.
"""
from __future__ import annotations

import re

from mlpipe_jupyter.data.datastore import Datastore
from mlpipe_jupyter.data.inputs import dataset_files, dataset_local_paths
from mlpipe_jupyter.data.partitions import PartitionFormat, check_keys
from mlpipe_jupyter.data.registered import dataset_id, registered_dataset, saved_dataset_id
from mlpipe_jupyter.data.tables import read_files
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_registry_name, fit_data_name
from mlpipe_jupyter.model.names import check_data_name as _check_name
from mlpipe_jupyter.sdk.parameters import PipelineParameter


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
        self._read = None  # how a reading step sees it as a dataset (read_delimited_files...); None: a path

    def as_input(self, input_name=None):
        return InputBinding(self, input_name or self.name, "mount", self._read)

    def as_mount(self, input_name=None):
        return InputBinding(self, input_name or self.name, "mount", self._read)

    def as_download(self, input_name=None, path_on_compute=None, overwrite=None):
        return InputBinding(self, input_name or self.name, "download", self._read)

    def as_dataset(self):
        """The data as a file dataset for the steps that read it (``run.input_datasets[name]``); its
        ``parse_delimited_files()``/``parse_parquet_files()`` make it a tabular one."""
        return InputBinding(self, self.name, "mount", {"format": "files"})

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

    # As in Azure, these set how the output is written and return the output itself: on the step that
    # writes it, it stays its output; a step that reads it takes it as an input (see sdk/step.py).
    def as_upload(self, overwrite=False, source_globs=None):
        self.output_mode = "upload"
        return self

    def as_mount(self, disable_metadata_cache=False):
        self.output_mode = "mount"
        return self

    # As in Azure, reading steps then see a tabular dataset; the output itself is unchanged for its writer.
    def read_delimited_files(self, include_path=False, separator=",", header=True, partition_format=None,
                             path_glob=None, set_column_types=None):
        self._read = delimited_read(separator, header)
        return self

    def read_parquet_files(self, include_path=False, partition_format=None, path_glob=None,
                           set_column_types=None):
        self._read = {"format": "parquet"}
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


def delimited_read(separator, header) -> dict:
    """How delimited files are read as a table (Azure's header values are booleans or its PromoteHeadersBehavior)."""
    if not isinstance(separator, str) or not separator:
        raise UserError(f"The separator of delimited files must be a non-empty string (got {separator!r}).")
    return {"format": "delimited", "separator": separator, "header": bool(header)}


class InputBinding:
    """How a step consumes intermediate data: under which input name, mounted or downloaded, and
    whether it sees it as a dataset (``read``: {"format": "files" | "delimited" | "parquet", ...})."""

    def __init__(self, data, input_name, mode="mount", read=None):
        self.data = data
        self.input_name = _check_name("Input", input_name)
        self.mode = mode
        self.read = read

    @property
    def name(self):
        return self.input_name

    def _with(self, **changes):
        values = {"input_name": self.input_name, "mode": self.mode, "read": self.read, **changes}
        return InputBinding(self.data, values["input_name"], values["mode"], values["read"])

    def as_named_input(self, name):
        return self._with(input_name=name)

    def as_input(self, name=None):
        return self._with(input_name=name or self.input_name)

    def as_mount(self, path_on_compute=None):
        return self._with(mode="mount")

    def as_download(self, path_on_compute=None, overwrite=False):
        return self._with(mode="download")

    def parse_delimited_files(self, include_path=False, separator=",", header=True, partition_format=None,
                              file_extension="", set_column_types=None, quoted_line_breaks=False):
        """The data as a TabularDataset of delimited files, for the steps that read it."""
        return self._with(read=delimited_read(separator, header))

    def parse_parquet_files(self, include_path=False, partition_format=None, file_extension=".parquet",
                            set_column_types=None):
        """The data as a TabularDataset of parquet files, for the steps that read it."""
        return self._with(read={"format": "parquet"})

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
        self.id = None  # as in Azure: a registered version's, or the one a submission saved it under
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

    # -- partitions (a partition_format given when the dataset was made) -------------------------------------
    @property
    def partition_keys(self) -> list:
        """The keys of the dataset's partition_format, in order ([] when it has none)."""
        fmt = self.options.get("partition_format")
        return list(PartitionFormat(fmt).keys) if fmt else []

    def get_partition_key_values(self, partition_keys=None) -> list:
        """Each distinct combination of values of ``partition_keys`` (default: all the dataset's keys) among
        its files, as a dict, in the order the files come."""
        what = f"{type(self).__name__}.get_partition_key_values"
        if not self.partition_keys:
            raise UserError(f"{what}: the dataset has no partition_format, so no partition keys.")
        keys = check_keys(self.partition_keys if partition_keys is None else partition_keys, self.partition_keys,
                          what)
        fmt = PartitionFormat(self.options["partition_format"])
        seen = {}
        for _, source in self._files():
            values = fmt.values(source)
            if values is not None:
                seen.setdefault(tuple(str(values[k]) for k in keys), {k: values[k] for k in keys})
        return list(seen.values())

    # -- reading (local use, and inside a step through Run.input_datasets) --------------------------------
    def _local_paths(self, workspace=None):
        return dataset_local_paths(workspace or self._workspace, {"sources": self.sources})

    def _files(self):
        """(local file, its path on its source) for each file."""
        return dataset_files(self._workspace, self.sources)

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
        return read_files(self._files(), self.options)

    def to_csv_files(self):
        return FileDataset(self.sources, self.name, self.version)

    def partition_by(self, partition_keys, target, name=None, show_progress=True, partition_as_file_dataset=False):
        """The table written to ``target`` (a new folder below it) as parquet files, one folder per value
        of each key (``<Store>/<Brand>/part-00000.parquet``), as a dataset partitioned by those keys
        (registered when ``name`` is given); the keys become its last columns."""
        import uuid

        what = "TabularDataset.partition_by"
        datastore, path = _datastore_target(target, what)
        table = self.to_pandas_dataframe()
        keys = check_keys(partition_keys, list(map(str, table.columns)), what)
        folder = "/".join(p for p in ((path or "").strip("/"), uuid.uuid4().hex) if p)
        groups = [([str(v) for v in (values if isinstance(values, tuple) else (values,))], part)
                  for values, part in table.groupby(keys, sort=False, dropna=False)]
        for names, _ in groups:  # every value a folder name, before anything is written
            bad = next((n for n in names if not n.strip() or "/" in n or "\\" in n or n in (".", "..")), None)
            if bad is not None:
                raise UserError(f"{what}: the value {bad!r} of a partition key cannot be a folder name.")
        for names, part in groups:
            out = datastore.resolve("/".join([folder, *names, "part-00000.parquet"]))
            datastore.fs.makedirs(out.rsplit("/", 1)[0], exist_ok=True)
            with datastore.fs.open(out, "wb") as f:
                part.drop(columns=keys).to_parquet(f, index=False)
        if show_progress:
            print(f"Wrote {len(groups)} partitions by {', '.join(keys)} to '{folder}' on datastore '{datastore.name}'.")
        options = {"partition_format": "/".join("{%s}" % k for k in keys) + "/*.parquet"}
        source = [{"datastore": datastore.name, "path": folder, "_ds": datastore}]
        dataset = (FileDataset(source, options=options) if partition_as_file_dataset
                   else TabularDataset(source, options={"format": "parquet", **options}))
        dataset._workspace = datastore.workspace
        if name is not None:
            return dataset.register(datastore.workspace, name, create_new_version=True)
        return dataset


def _datastore_target(target, what):
    """(datastore, path) of a ``(datastore, path)`` tuple, DataPath or DataReference."""
    if isinstance(target, tuple) and len(target) == 2 and hasattr(target[0], "resolve"):
        return target
    if isinstance(target, (DataPath, DataReference)):
        return target.datastore, target.path_on_datastore
    raise UserError(f"{what}: target must be (datastore, path) or a DataPath (got {target!r}).")


class _FileFactory:
    @staticmethod
    def from_files(path, validate=True, partition_format=None, is_file=False):
        return FileDataset(AbstractDataset._sources_from(path), options=_partition_option(partition_format))


class _TabularFactory:
    @staticmethod
    def from_delimited_files(path, validate=True, include_path=False, infer_column_types=True,
                             set_column_types=None, separator=",", header=True, partition_format=None, **kwargs):
        opts = {"separator": separator, "header": bool(header), **_partition_option(partition_format)}
        return TabularDataset(AbstractDataset._sources_from(path), options=opts)

    @staticmethod
    def from_parquet_files(path, validate=True, include_path=False, set_column_types=None, partition_format=None):
        return TabularDataset(AbstractDataset._sources_from(path),
                              options={"format": "parquet", **_partition_option(partition_format)})


def _partition_option(partition_format) -> dict:
    """The dataset option of a partition_format, checked now (none: no option)."""
    if partition_format is None:
        return {}
    return {"partition_format": PartitionFormat(partition_format).text}


class DataPath:
    """A path on a datastore, as Azure ML's ``DataPath(datastore, path_on_datastore)``: the default or
    submitted value of a PipelineParameter, or an input itself (``(DataPath, DataPathComputeBinding)``)."""

    def __init__(self, datastore=None, path_on_datastore=None, name=None):
        if datastore is None or not hasattr(datastore, "resolve"):
            raise UserError(f"DataPath needs a datastore (got {datastore!r}).")
        datastore.resolve(path_on_datastore)  # refuse an escaping path now, not at run time
        self.datastore = datastore
        self.path_on_datastore = path_on_datastore
        self.name = name

    def create_data_reference(self, data_reference_name=None, datapath_compute_binding=None):
        mode = datapath_compute_binding.mode if datapath_compute_binding is not None else "mount"
        return DataReference(self.datastore, data_reference_name or self.name, self.path_on_datastore, mode)

    def to_dict(self):
        """The description a pipeline file and a run keep (the same as a DataReference's data entry)."""
        return {"kind": "data_reference", "datastore": self.datastore.name, "path": self.path_on_datastore}

    def __repr__(self):
        return f"DataPath(datastore={self.datastore.name!r}, path_on_datastore={self.path_on_datastore!r})"


class DataPathComputeBinding:
    """How a step gets a DataPath: mounted or downloaded (``path_on_compute`` and ``overwrite`` are
    accepted; inputs always appear under the step's own folders)."""

    def __init__(self, mode="mount", path_on_compute=None, overwrite=False):
        if mode not in ("mount", "download"):
            raise UserError(f"DataPathComputeBinding mode must be 'mount' or 'download' (got {mode!r}).")
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite


class ParameterInput:
    """An input whose data a PipelineParameter chooses (its default, or the value given at submit): a
    DataPath or a dataset. ``name`` is the input's name, as the step's script sees it."""

    def __init__(self, param, name, mode="mount"):
        self.param = param
        self.name = _check_name("Input", name)
        self.mode = mode

    def to_dict(self):
        return {"kind": "parameter", "param": self.param.name}

    def __eq__(self, other):
        # one input per parameter and name: the same binding in inputs and arguments is one input
        return isinstance(other, ParameterInput) and other.param is self.param and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"$AZUREML_DATAREFERENCE_{self.name}"


def step_data(item):
    """A step's input or argument as a data object: Azure's ``(DataPath or its PipelineParameter,
    DataPathComputeBinding)`` tuples and a bare DataPath become inputs; anything else is kept."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], DataPathComputeBinding):
        source, binding = item
        if isinstance(source, PipelineParameter):
            if not isinstance(source.default_value, DataPath):
                raise UserError(f"PipelineParameter '{source.name}' is bound with a DataPathComputeBinding, so its "
                                f"default value must be a DataPath (got {source.default_value!r}).")
            return ParameterInput(source, source.name, binding.mode)
        if isinstance(source, DataPath):
            return source.create_data_reference(None, binding)
        raise UserError(f"A DataPathComputeBinding binds a DataPath or a PipelineParameter, not {source!r}.")
    if isinstance(item, DataPath):
        return item.create_data_reference()
    if isinstance(item, DatasetConsumptionConfig) and isinstance(item.dataset, PipelineParameter):
        return ParameterInput(item.dataset, item.name, "mount" if item.mode == "direct" else item.mode)
    return item


def bind_step_data(*lists) -> list[list]:
    """Each list of a step's items through ``step_data``, one data object per item given (the same
    tuple in inputs and arguments is one input)."""
    bound: dict[int, object] = {}
    out = []
    for items in lists:
        out.append([bound[id(i)] if id(i) in bound else bound.setdefault(id(i), step_data(i)) for i in items])
    return out



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

    @staticmethod
    def get_by_id(workspace, id):
        return get_dataset_by_id(workspace, id)


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
    ds = dataset_from_definition(workspace, record["definition"], record["kind"], name=name,
                                 version=record["version"], description=record["description"], tags=record["tags"])
    ds.id = dataset_id(record)
    return ds


def get_dataset_by_id(workspace, id):
    """The registered dataset version whose ``.id`` is ``id``."""
    store = workspace._store
    for name in store.dataset_names():
        for version in store.dataset_versions(name):
            if dataset_id(store.dataset(name, version)) == str(id):
                return get_dataset(workspace, name, version)
    saved = store.saved_dataset(str(id))
    if saved is not None:
        ds = dataset_from_definition(workspace, saved["definition"], saved["kind"])
        ds.id = saved["id"]
        return ds
    raise UserError(f"No registered or saved dataset has id {id!r} in workspace '{workspace.name}'.")


def save_datasets(workspace, values) -> None:
    """As Azure ML does, a submission saves each unregistered dataset given as a parameter value and gives it
    an id (``.id``), by which a REST call's ``SavedDataSetReference`` names it later."""
    for value in (values or {}).values():
        if isinstance(value, AbstractDataset) and value.id is None:
            definition = _definition(value)
            workspace._store.save_dataset(saved_dataset_id(value.kind, definition), value.kind, definition)
            value.id = saved_dataset_id(value.kind, definition)


def dataset_from_definition(workspace, definition: dict, kind: str, **registration):
    """A dataset object from its stored definition (the registry's or a pipeline file's)."""
    sources = [dict(s, _ds=Datastore(workspace, s["datastore"])) if "datastore" in s else dict(s)
               for s in definition.get("sources", [])]
    cls = TabularDataset if kind == "tabular" else FileDataset
    ds = cls(sources, options=definition.get("options"), **registration)
    ds._workspace = workspace
    return ds


def data_value(workspace, value):
    """A parameter value from its description (a pipeline file's): a DataPath or a dataset again."""
    if not isinstance(value, dict):
        return value
    if value.get("kind") == "data_reference":
        return DataPath(Datastore(workspace, value.get("datastore")), value.get("path"))
    if value.get("kind") == "dataset":
        if value.get("name") and value.get("version") is not None:
            return get_dataset(workspace, value["name"], value["version"])
        return dataset_from_definition(workspace, value, value.get("dataset_type"))
    return value


def list_datasets(workspace) -> dict:
    return {n: get_dataset(workspace, n) for n in workspace._store.dataset_names()}
