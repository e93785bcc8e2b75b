"""The run a step script sees: ``Run.get_context()``.

Inside a run it appends JSON lines to a file in the run folder, which the runner tails; this works
the same on every compute target and never opens the database from the script. Outside any run it
is an offline run that prints what it would log, like Azure ML's.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from mlpipe_jupyter.data.tables import read_table
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.model.names import check_registry_name
from mlpipe_jupyter.running.contract import CHILD_FIELD, CHILDREN_DIR, METRICS_FILE, PARENT_FIELD, WORKSPACE_VAR
from mlpipe_jupyter.status import FINAL_STATUSES, Status


class _Records:
    """Azure's logging verbs as records on a run's channel (``_emit``): the step's own run or, marked, its
    pipeline run."""

    def log(self, name, value, description="", step=None):
        self._emit({"type": "metric", "name": name, "kind": "scalar", "value": value})

    def log_list(self, name, value, description=""):
        self._emit({"type": "metric", "name": name, "kind": "list", "value": list(value)})

    def log_row(self, name, description=None, **kwargs):
        self._emit({"type": "metric", "name": name, "kind": "row", "value": kwargs})

    def log_table(self, name, value, description=""):
        self._emit({"type": "metric", "name": name, "kind": "table", "value": dict(value)})

    def tag(self, key, value=None):
        self._emit({"type": "tag", "key": key, "value": "" if value is None else str(value)})

    def set_tags(self, tags):
        for k, v in tags.items():
            self.tag(k, v)


class _ContextRun(_Records):
    """Logging side of a run, from inside its script."""

    _child_id = None  # what its records are marked with: none, the step's own

    def __init__(self, run_dir: Path | None, run_id: str, experiment: str, parent_id: str | None, datasets: dict,
                 workspace_dir: str | None = None):
        self._dir = run_dir
        self.id = run_id
        self.experiment = _ContextExperiment(experiment, workspace_dir)
        self.parent = _ParentRun(self, parent_id) if parent_id and parent_id != run_id else None
        self.input_datasets = {k: _dataset_view(v) for k, v in datasets.items()}
        self._offline_metrics: dict = {}
        self._properties: dict = {}
        self._children = 0  # child runs created so far: the next one is <id>_<count>

    @property
    def _files(self) -> Path | None:
        """Where this run's uploaded files and images go (the runner keeps them with the run)."""
        return self._dir

    # -- channel ---------------------------------------------------------------------------------------------
    def _emit(self, record: dict):
        record.setdefault("ts", time.time())
        if self._dir is None:
            if record["type"] == "metric":
                print(f"Attempted to log {record['kind']} metric {record['name']}:\n{record['value']}")
                self._offline_metrics.setdefault(record["name"], []).append(record["value"])
            return
        line = json.dumps(record, default=str)
        with open(self._dir / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # -- Azure ML SDK v1 logging (the scalar verbs are _Records') -----------------------------------------------
    def log_image(self, name, path=None, plot=None, description=""):
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path= or plot=.")
        if self._dir is None:
            print(f"Attempted to log image metric {name}")
            return
        images = self._files / "images"
        images.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        dest = images / f"{safe}_{int(time.time() * 1000)}.png"
        if plot is not None:
            plot.savefig(dest)
        else:
            shutil.copyfile(path, dest)
        self._emit({"type": "metric", "name": name, "kind": "image", "value": dest.relative_to(self._files).as_posix()})


    def upload_file(self, name, path_or_stream):
        if self._dir is None:
            return
        dest = (self._files / name).resolve()
        if not str(dest).startswith(str(self._files.resolve()) + os.sep):
            raise ValueError(f"upload_file: name {name!r} must be a relative path inside the run.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if hasattr(path_or_stream, "read"):
            dest.write_bytes(path_or_stream.read())
        else:
            shutil.copyfile(path_or_stream, dest)

    def upload_folder(self, name, path):
        for f in Path(path).rglob("*"):
            if f.is_file():
                self.upload_file(f"{name}/{f.relative_to(path).as_posix()}", str(f))

    def get_metrics(self, name=None):
        if self._dir is None:
            return {k: v[0] if len(v) == 1 else v for k, v in self._offline_metrics.items() if name in (None, k)}
        recs = []
        path = self._dir / METRICS_FILE
        if path.exists():
            for raw in path.read_text().splitlines():
                r = json.loads(raw)
                if r.get("type") == "metric" and not r.get(PARENT_FIELD) and r.get(CHILD_FIELD) == self._child_id:
                    recs.append(r)
        return metrics_from_records(recs, name)

    def register_model(self, model_name, model_path=None, tags=None, properties=None, model_framework=None,
                       model_framework_version=None, description=None, datasets=None, sample_input_dataset=None,
                       sample_output_dataset=None, resource_configuration=None, **kwargs):
        """Register a file or folder of this run (``outputs/model.pkl``) as a model. The runner registers it
        once the step has succeeded and its files are kept (a failed step registers nothing), so the
        returned model has no version yet."""
        where = f"register_model('{model_name}')"
        check_registry_name("Model", model_name)
        path = model_name if model_path is None else model_path
        if not isinstance(path, (str, os.PathLike)) or os.path.isabs(path) or ".." in Path(path).parts:
            raise UserError(f"{where}: model_path {path!r} must be a path relative to the run, as in "
                            "'outputs/model.pkl'.")
        path = Path(path).as_posix()
        record = {"type": "model", "name": model_name, "path": path, "tags": string_dict(tags, "tags", where),
                  "properties": string_dict(properties, "properties", where),
                  "description": None if description is None else str(description),
                  "details": model_details(datasets, model_framework, model_framework_version, sample_input_dataset,
                                           sample_output_dataset, resource_configuration, where)}
        if self._dir is None:
            print(f"Attempted to register model {model_name} from {path}")
        elif not (Path.cwd() / path).exists() and not (self._dir / path).exists():
            raise UserError(f"{where}: the run has no file or folder '{path}'; write it into ./outputs first "
                            "(or upload_file it).")
        else:
            self._emit(record)
        return _ModelToRegister(record)

    # -- properties and child runs: records the runner applies to the history ------------------------------------
    def add_properties(self, properties):
        """Add properties (immutable, as in Azure: a key keeps its first value)."""
        where = f"Run {self.id}.add_properties"
        props = string_dict(properties, "properties", where)
        clash = next((k for k, v in props.items() if self._properties.get(k, v) != v), None)
        if clash is not None:
            raise UserError(f"{where}: properties are immutable and '{clash}' is set already to "
                            f"{self._properties[clash]!r} (asked: {props[clash]!r}); use a tag for a value that changes.")
        self._properties.update(props)
        self._emit({"type": "properties", "properties": props})

    def get_properties(self) -> dict:
        return dict(self._properties)

    def child_run(self, name=None, run_id=None, outputs=None):
        """A child run, Running, ended by its ``complete()`` or ``fail()`` (or a ``with`` block's end; at
        the latest with this run)."""
        return self._new_children([name], [run_id], Status.RUNNING, None, [None])[0]

    def create_children(self, count=None, tag_key=None, tag_values=None):
        """``count`` child runs, NotStarted (or one a value of ``tag_values``, each tagged ``tag_key``)."""
        count, values = children_count(self.id, count, tag_key, tag_values)
        return self._new_children([None] * count, [None] * count, Status.NOT_STARTED, tag_key, values)

    def _new_children(self, names, ids, status, tag_key, values) -> list:
        runs = []
        for name, run_id, value in zip(names, ids, values):
            if run_id is None:
                run_id = f"{self.id}_{self._children}"
                self._children += 1
            tags = {} if tag_key is None or value is None else {str(tag_key): str(value)}
            self._emit({"type": "child", "id": str(run_id), "name": name or str(run_id), "status": status.value,
                        "tags": tags})
            runs.append(_ContextChildRun(self, str(run_id), name or str(run_id), status.value))
        return runs

    def get_status(self):
        return Status.RUNNING.value  # a plain str, as Azure returns

    def complete(self, _set_status=True):
        pass

    def fail(self, error_details=None, error_code=None, _set_status=True):
        pass

    def flush(self, timeout_seconds=300):
        pass

    def __repr__(self):
        return f"Run(Id: {self.id}, Type: {'OfflineRun' if self._dir is None else 'azureml.StepRun'})"


class _ContextChildRun(_ContextRun):
    """A child run created inside a step: what it logs goes into the step's metrics file marked with its
    id, its files under the step's CHILDREN_DIR folder, and the runner records both as that child's."""

    def __init__(self, owner: _ContextRun, run_id: str, name: str, status: str):
        self._dir, self.id, self.name = owner._dir, run_id, name
        self.experiment, self.parent, self.input_datasets = owner.experiment, owner, {}
        self._offline_metrics, self._properties, self._children = {}, {}, 0
        self._status = status

    _child_id = property(lambda self: self.id)
    display_name = property(lambda self: self.name)

    @property
    def _files(self) -> Path | None:
        return None if self._dir is None else self._dir / CHILDREN_DIR / self.id

    def _emit(self, record: dict):
        super()._emit({**record, CHILD_FIELD: self.id})

    def get_status(self):
        return self._status

    def start(self):
        self._set_status(Status.RUNNING)

    def complete(self, _set_status=True):
        self._set_status(Status.COMPLETED)

    def fail(self, error_details=None, error_code=None, _set_status=True):
        self._set_status(Status.FAILED, str(error_details) if error_details else "Marked failed by the user.")

    def cancel(self):
        self._set_status(Status.CANCELED, "Canceled by the user.")

    def _set_status(self, status: Status, error: str | None = None):
        if self._status in FINAL_STATUSES:
            return
        self._status = status.value
        self._emit({"type": "status", "status": status.value, "error": error})

    def register_model(self, model_name, *args, **kwargs):
        raise UserError(f"register_model('{model_name}') on child run {self.id}: register models from the step's "
                        "own run (Run.get_context()).")

    def __enter__(self):
        if self._status == Status.NOT_STARTED:
            self.start()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            self.complete()
        else:
            self.fail(error_details=f"{exc_type.__name__}: {exc_value}")
        return False

    def __repr__(self):
        return f"Run(Id: {self.id}, Type: azureml.scriptrun, Status: {self._status})"


def children_count(run_id: str, count, tag_key, tag_values) -> tuple[int, list]:
    """How many children ``create_children`` makes, and the tag value of each (None: untagged)."""
    where = f"Run {run_id}.create_children"
    if tag_values is not None:
        values = list(tag_values)
        if tag_key is None:
            raise UserError(f"{where}: tag_values need a tag_key to be set under.")
        if count is not None and count != len(values):
            raise UserError(f"{where}: count={count!r} but {len(values)} tag_values; give one of them, or both "
                            "agreeing.")
        return len(values), values
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UserError(f"{where}: count must be a whole number of children, 1 or more (or give tag_values), "
                        f"not {count!r}.")
    return count, [None] * count


class _ModelToRegister:
    """What ``register_model`` gives inside a step: the model as asked for, registered (and versioned)
    once the step succeeds."""

    version = id = None

    def __init__(self, record: dict):
        self.name, self.tags, self.properties = record["name"], record["tags"], record["properties"]
        self.description = record["description"]

    def __repr__(self):
        return f"Model(name={self.name}, registered when the step succeeds)"


def string_dict(value, what: str, where: str) -> dict:
    """Tags or properties: a dict, kept as text (Azure stores strings)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: {what} must be a dict of key -> value, not {type(value).__name__}.")
    return {str(k): str(v) for k, v in value.items()}


def dataset_reference(dataset, where: str) -> dict:
    """How a model names a dataset it was made from: a registered one by name and version."""
    if getattr(dataset, "name", None) and hasattr(dataset, "to_dict"):
        ref = {"name": dataset.name, "version": dataset.version}
        return {**ref, "id": dataset.id} if getattr(dataset, "id", None) else ref
    if hasattr(dataset, "to_dict"):
        return {"definition": dataset.to_dict()}
    if isinstance(dataset, (str, os.PathLike, _DatasetView)):  # an input dataset inside a step: its path
        return {"path": os.fspath(dataset)}
    raise UserError(f"{where}: {dataset!r} is not a dataset.")


def model_details(datasets, framework, framework_version, sample_input, sample_output, resources, where) -> dict:
    """What a model registration records besides name, tags and properties; ``datasets`` is Azure's list
    of (purpose, dataset) pairs."""
    grouped: dict = {}
    for item in datasets or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise UserError(f"{where}: datasets must be a list of (purpose, dataset) pairs, as in "
                            f"[('training data', ds)], not {item!r}.")
        grouped.setdefault(item[0], []).append(dataset_reference(item[1], where))
    if hasattr(resources, "serialize"):
        resources = resources.serialize()
    return {"model_framework": framework, "model_framework_version": framework_version, "datasets": grouped,
            "sample_input_dataset": None if sample_input is None else dataset_reference(sample_input, where),
            "sample_output_dataset": None if sample_output is None else dataset_reference(sample_output, where),
            "resource_configuration": resources if resources is None else dict(resources)}


class _ContextExperiment:
    """The experiment of the run a step belongs to; its ``workspace`` is opened only when asked for."""

    def __init__(self, name: str, workspace_dir: str | None):
        self.name, self._workspace_dir, self._workspace = name, workspace_dir, None

    @property
    def workspace(self):
        if self._workspace is None:
            if not self._workspace_dir:
                raise UserError("Run.get_context().experiment.workspace: this script cannot reach its workspace "
                                "(it runs in a container, where the workspace folder is not mounted, or outside "
                                "any run). Give the step what it needs as arguments or inputs instead.")
            from mlpipe_jupyter.sdk.workspace import Workspace  # a step that never asks starts without it

            self._workspace = Workspace(self._workspace_dir)
        return self._workspace

    def __repr__(self):
        return f"Experiment(name={self.name!r})"


class _ParentRun(_Records):
    """The pipeline run, seen from one of its steps. What is logged or tagged on it goes into the step's
    metrics file marked for the parent, and the runner records it on the pipeline run: this works on every
    compute target. Its details come from the history where the workspace is reachable."""

    def __init__(self, child: "_ContextRun", run_id: str):
        self._child, self.id = child, run_id
        self.experiment = child.experiment

    def _emit(self, record: dict):
        self._child._emit({**record, PARENT_FIELD: True})

    def get_status(self):
        return Status.RUNNING.value  # its step is running

    def get_details(self) -> dict:
        """The pipeline run's ``get_details()``; in a container, only what the step knows of it."""
        if not self.experiment._workspace_dir:
            return {"runId": self.id, "status": Status.RUNNING.value,
                    "properties": {"azureml.runsource": "azureml.PipelineRun"}}
        from mlpipe_jupyter.sdk.run import Run  # sdk.run reads this module for Run.get_context: a cycle

        return Run.get(self.experiment.workspace, self.id).get_details()

    def __repr__(self):
        return f"Run(Id: {self.id}, Type: azureml.PipelineRun)"


class _DatasetView:
    """What ``run.input_datasets[name]`` gives for a tabular dataset: the data (delimited or parquet
    files, from a dataset or another step's output), readable as a table."""

    def __init__(self, path, options):
        self.path, self.options = path, options

    def to_pandas_dataframe(self):
        return read_table([self.path], self.options)

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path


def _dataset_view(entry):
    if entry.get("kind") == "tabular":
        return _DatasetView(entry["path"], entry.get("options") or {})
    return entry["path"]  # a file dataset is its mounted path, as in Azure


_context = None


def get_context(allow_offline=True):
    global _context
    run_dir = os.environ.get("MLPIPE_RUN_DIR")
    if run_dir:
        if _context is None or _context._dir != Path(run_dir):
            _context = _ContextRun(Path(run_dir), os.environ.get("AZUREML_RUN_ID", ""),
                                   os.environ.get("AZUREML_ARM_PROJECT_NAME", ""),
                                   os.environ.get("AZUREML_ROOT_RUN_ID"),
                                   json.loads(os.environ.get("MLPIPE_INPUT_DATASETS") or "{}"),
                                   os.environ.get(WORKSPACE_VAR))
        return _context
    if not allow_offline:
        raise RuntimeError("Run.get_context(allow_offline=False) outside a run.")
    if _context is None:
        import uuid

        _context = _ContextRun(None, f"OfflineRun_{uuid.uuid4()}", "offline", None, {})
    return _context


def metrics_from_records(records, name=None) -> dict:
    """Azure's shape: one log is a value, repeated logs a list, log_row a dict of columns."""
    grouped: dict[str, list] = {}
    for r in records:
        if name is None or r["name"] == name:
            grouped.setdefault(r["name"], []).append(r)
    out: dict = {}
    for n, recs in grouped.items():
        kind = recs[-1]["kind"]
        if kind in ("list", "table"):
            out[n] = recs[-1]["value"]
        elif kind == "row":
            cols: dict = {}
            for r in recs:
                for k, x in r["value"].items():
                    cols.setdefault(k, []).append(x)
            out[n] = cols
        else:
            values = [r["value"] for r in recs]
            out[n] = values[0] if len(values) == 1 else values
    return out
