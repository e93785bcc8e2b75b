"""Run, PipelineRun and StepRun: views of the run history, with Azure ML SDK v1 methods.

They read the store; only ``cancel`` talks to a live runner (in this process directly, in another
process through a CancelRequested status the runner watches).
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import sys
import threading
import time
import zipfile
from pathlib import Path

from mlpipe_jupyter.errors import ActivityFailedError, RunNotFoundError, UserError
from mlpipe_jupyter.running import control
from mlpipe_jupyter.running.contract import LOG_ALIASES, LOG_FILE
from mlpipe_jupyter.running.control import active_execution, wait_until_final
from mlpipe_jupyter.sdk.context import children_count, get_context, metrics_from_records, model_details, string_dict
from mlpipe_jupyter.status import FINAL_STATUSES, Status
from mlpipe_jupyter.tracking.follower import RunFollower
from mlpipe_jupyter.tracking.report import event_text, run_html

_TYPES = {"pipeline": "azureml.PipelineRun", "step": "azureml.StepRun", "script": "azureml.scriptrun"}
# properties["azureml.runsource"] as Azure sets it: a ScriptRunConfig or interactive run says "experiment"
_SOURCES = {"pipeline": "azureml.PipelineRun", "step": "azureml.StepRun", "script": "experiment"}
_LOG_FOLDERS = sorted({Path(name).parts[0] for name in (LOG_FILE, *LOG_ALIASES)})


def _iso(ts):
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def run_from_row(workspace, row):
    from mlpipe_jupyter.sdk.experiment import Experiment  # experiments submit runs and runs name theirs: a cycle

    cls = {"pipeline": PipelineRun, "step": StepRun}.get(row["kind"], Run)
    return cls(Experiment(workspace, row["experiment"]), row["id"])


class Run:
    """A run in the history (``Run.get(ws, run_id)``); inside a step script use ``Run.get_context()``."""

    def __init__(self, experiment, run_id, **kwargs):
        self.experiment = experiment
        self.id = run_id
        self._store = experiment.workspace._store
        if self._store.get_run(run_id) is None:
            raise RunNotFoundError(f"No run with id '{run_id}' in workspace '{experiment.workspace.name}'.")

    # -- lookups -------------------------------------------------------------------------------------------
    @staticmethod
    def get(workspace, run_id):
        row = workspace._store.get_run(run_id)
        if row is None:
            raise RunNotFoundError(f"No run with id '{run_id}' in workspace '{workspace.name}'.")
        return run_from_row(workspace, row)

    @staticmethod
    def get_context(allow_offline=True, used_for_context_manager=False):
        return get_context(allow_offline)

    @staticmethod
    def get_submitted_run(**kwargs):
        """Deprecated in Azure ML SDK v1 in favour of ``get_context``, which it is."""
        return get_context()

    @staticmethod
    def list(experiment, type=None, tags=None, properties=None, status=None, include_children=False,
             _rehydrate_runs=True):
        """The experiment's runs, latest first: top-level ones unless ``include_children``, filtered as
        ``get_children`` filters."""
        kinds = ("pipeline", "script", "step", "child") if include_children else ("pipeline", "script")
        rows = experiment.workspace._store.list_runs(experiment.name, kinds=kinds)
        return filter_runs((run_from_row(experiment.workspace, row) for row in rows), type, tags, properties, status)

    @property
    def _row(self) -> dict:
        return self._store.get_run(self.id)

    @property
    def name(self):
        return self._row["name"]

    @property
    def display_name(self):
        return self._row["name"]

    @display_name.setter
    def display_name(self, value):
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"Run {self.id}: display_name must be a non-empty string, not {value!r}.")
        self._store.update_run(self.id, name=value)

    @property
    def description(self):
        return self._row["details"].get("description")

    @description.setter
    def description(self, value):
        self._store.update_run(self.id, details={"description": None if value is None else str(value)})

    @property
    def type(self):
        return _TYPES.get(self._row["kind"], "azureml.scriptrun")

    @property
    def parent(self):
        pid = self._row["parent_id"]
        return Run.get(self.experiment.workspace, pid) if pid else None

    @property
    def _origin_id(self) -> str:
        """Where this run's files and metrics live: the original run when this one was reused."""
        return self._row["reused_from"] or self.id

    # -- status --------------------------------------------------------------------------------------------
    def get_status(self) -> str:
        return self._row["status"]

    @property
    def status(self):
        return self.get_status()

    def wait_for_completion(self, show_output=False, wait_post_processing=False, raise_on_error=True,
                            timeout_seconds=None):
        """Block until the run ends; with show_output, print its log lines and step statuses as they come."""
        top = self._top_id()
        follower = None
        if self._row["kind"] == "child":  # ended by whoever created it, not by a runner: its own status
            top, show_output = self.id, False
        if show_output:
            only = self.id if top != self.id else None
            follower = RunFollower(self._store, top, _printer(prefix=only is None), only=only).start()
        execution = active_execution(top)
        status = wait_until_final(self._store, top, timeout_seconds)
        if status not in FINAL_STATUSES and not (execution is not None and execution.done.is_set()):
            if follower is not None:
                follower.stop()
            raise TimeoutError(f"Run {self.id} did not finish within {timeout_seconds} s (status {status}).")
        if follower is not None:
            follower.done.wait()
        row = self._row
        status, error = row["status"], row["error"]
        unrecorded = status not in FINAL_STATUSES and execution is not None and execution.outcome is not None
        if unrecorded:
            status, error = execution.outcome
        if show_output:
            print(f"\nRun {self.id}: {status}" + (f" - {error}" if error else ""))
        if raise_on_error and status == Status.FAILED:
            raise ActivityFailedError(self.id, status, error)
        details = self.get_details()
        if unrecorded:
            details["status"] = status
            details["error"] = {"message": error, "error": {"code": "SystemError", "message": error}}
        return details

    def _top_id(self):
        row = self._row
        return row["parent_id"] or row["id"]

    def cancel(self):
        """Stop the run, and the pipeline run it belongs to, whichever process runs it; a child run or an
        interactive one (and its children) is marked Canceled."""
        if not self._ended_by_runner():
            self._end(Status.CANCELED, "Canceled by the user.")
            return
        if control.cancel(self._store, self._top_id()):
            self._store.request_cancel(self._top_id())  # get_status() says CancelRequested until it has stopped

    def _ended_by_runner(self) -> bool:
        row = self._row
        return row["kind"] != "child" and not row["details"].get("interactive")

    # -- details -------------------------------------------------------------------------------------------
    def get_details(self) -> dict:
        row = self._row
        d = row["details"]
        details = {
            "runId": self.id,
            "status": row["status"],
            "target": d.get("compute_target", "local"),
            "startTimeUtc": _iso(row["started"]),
            "endTimeUtc": _iso(row["ended"]),
            "properties": {"azureml.runsource": _SOURCES.get(row["kind"], "experiment")},
            "inputDatasets": [{"dataset": {"name": i["dataset"], "type": i["dataset_kind"]},
                               "consumptionDetails": {"type": "RunInput", "inputName": i["name"],
                                                      "mechanism": i["mode"].capitalize()}}
                              for i in d.get("inputs") or []],
            "outputDatasets": [{"identifier": {"savedId": digest}, "outputType": "RunOutput",
                                "outputDetails": {"outputName": name}}
                               for name, digest in self._store.get_outputs(self.id).items()],
            "runDefinition": _run_definition(row),
            "logFiles": self._log_files(),
            "submittedBy": d.get("submitted_by"),
            "reused_from": row["reused_from"],
            "reuse_reason": row["reuse_reason"],
        }
        if d.get("snapshot"):
            details["snapshotId"] = d["snapshot"]
        if d.get("warnings"):
            details["warnings"] = list(d["warnings"])
        if d.get("start"):  # how a local step's process started: warm (forked from a helper) or cold, and why
            details["start"] = dict(d["start"])
        if d.get("git"):
            details["properties"].update({f"azureml.git.{k}": v for k, v in d["git"].items()})
        details["properties"].update(d.get("properties") or {})
        if d.get("description") is not None:
            details["description"] = d["description"]
        if d.get("parameters") is not None:
            details["parameters"] = d["parameters"]
        if row["error"]:
            details["error"] = {"message": row["error"], "error": {"code": "UserError", "message": row["error"]}}
            if d.get("error_tail"):
                details["error"]["log_tail"] = d["error_tail"]
        return details

    def _run_dir(self) -> Path:
        return self._store.run_dir(self._origin_id)

    def _log_files(self) -> dict:
        """Log name (as Azure names them: ``user_logs/std_log.txt``...) -> its path on this machine."""
        root = self._run_dir()
        found = {}
        for folder in _LOG_FOLDERS:
            for f in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else []:
                if f.is_file() and not f.name.startswith("."):
                    found[f.relative_to(root).as_posix()] = str(f)
        if LOG_FILE in found:  # a step still running: its log has Azure's names only once it ends
            found.update({alias: found[LOG_FILE] for alias in LOG_ALIASES if alias not in found})
        return dict(sorted(found.items()))

    def get_details_with_logs(self) -> dict:
        """``get_details()`` with each log's text in place of its path."""
        details = self.get_details()
        details["logFiles"] = {name: Path(path).read_text(errors="replace")
                               for name, path in details["logFiles"].items()}
        return details

    def get_all_logs(self, destination=None) -> list[str]:
        """Copy the run's logs (its children's too, as Azure does) to ``destination`` (default: a folder
        named after the run in the current one); returns the paths written."""
        dest = Path(destination or self.id)
        written = []
        for run in [self, *self.get_children(recursive=True)]:
            base = dest if run is self else dest / run.id
            for name, path in run._log_files().items():
                target = base / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                written.append(str(target))
        return written

    def get_file_names(self) -> list[str]:
        root = self._run_dir()
        if not root.is_dir():
            return []
        return sorted(f.relative_to(root).as_posix() for f in root.rglob("*")
                      if f.is_file() and not f.name.startswith("."))

    def download_file(self, name, output_file_path=None, _validate_checksum=False):
        src = self._safe_file(name)
        dest = Path(output_file_path or Path(name).name)
        if dest.is_dir():
            dest = dest / Path(name).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return str(dest)

    def download_files(self, prefix=None, output_directory=None, output_paths=None, append_prefix=True):
        out = Path(output_directory or ".")
        for name in self.get_file_names():
            if prefix is None or name.startswith(prefix):
                self.download_file(name, out / name)

    def _safe_file(self, name) -> Path:
        root = self._run_dir().resolve()
        src = (root / name).resolve()
        if not str(src).startswith(str(root) + os.sep) or not src.is_file():
            raise UserError(f"Run {self.id} has no file named '{name}' (see get_file_names()).")
        return src

    def get_log_text(self) -> str:
        path = self._run_dir() / LOG_FILE
        return path.read_text(errors="replace") if path.is_file() else ""

    # -- metrics and tags ------------------------------------------------------------------------------------
    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False) -> dict:
        if recursive:
            out = {self.id: self.get_metrics(name)}
            for child in self.get_children(recursive=True):
                out[child.id] = child.get_metrics(name)
            return out
        return metrics_from_records(self._store.get_metric_records(self._origin_id), name)

    def log(self, name, value, description="", step=None):
        self._store.add_metrics(self.id, [{"name": name, "kind": "scalar", "value": value}])

    def log_list(self, name, value, description=""):
        self._store.add_metrics(self.id, [{"name": name, "kind": "list", "value": list(value)}])

    def log_row(self, name, description=None, **kwargs):
        self._store.add_metrics(self.id, [{"name": name, "kind": "row", "value": kwargs}])

    def log_table(self, name, value, description=""):
        self._store.add_metrics(self.id, [{"name": name, "kind": "table", "value": dict(value)}])

    def log_image(self, name, path=None, plot=None, description=""):
        """An image file (``path``) or a matplotlib figure (``plot``), kept with the run's files."""
        if (path is None) == (plot is None):
            raise UserError(f"log_image('{name}') needs exactly one of path= or plot=.")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        rel = f"images/{safe}_{int(time.time() * 1000)}.png"
        dest = self._dest_in_run(rel)
        if plot is not None:
            plot.savefig(dest)
        else:
            shutil.copyfile(path, dest)
        self._store.add_metrics(self.id, [{"name": name, "kind": "image", "value": rel}])

    def upload_file(self, name, path_or_stream):
        """Keep a file with the run under ``name`` (a relative path), from a path or a readable stream."""
        dest = self._dest_in_run(name)
        if hasattr(path_or_stream, "read"):
            dest.write_bytes(path_or_stream.read())
        else:
            shutil.copyfile(path_or_stream, dest)

    def upload_files(self, names, paths, return_artifacts=False, timeout_seconds=None):
        for name, path in zip(names, paths):
            self.upload_file(name, path)

    def upload_folder(self, name, path):
        root = Path(path)
        if not root.is_dir():
            raise UserError(f"upload_folder('{name}'): '{path}' is not a folder.")
        for f in sorted(root.rglob("*")):
            if f.is_file():
                self.upload_file(f"{name}/{f.relative_to(root).as_posix()}", f)

    def _dest_in_run(self, name) -> Path:
        root = self._store.run_dir(self.id)
        dest = (root / name).resolve()
        if not str(dest).startswith(str(root.resolve()) + os.sep):
            raise UserError(f"Run {self.id}: the file name '{name}' must be a relative path inside the run.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest

    # -- an interactive run's end (Experiment.start_logging) ---------------------------------------------------
    def start(self):
        """Mark a NotStarted run (from ``create_children``) Running."""
        if self._ended_by_runner():
            raise UserError(f"Run {self.id} is started by its runner; start() is for child runs and runs started "
                            "with Experiment.start_logging().")
        row = self._row
        if row["status"] == Status.NOT_STARTED:
            self._store.mark_run(self.id, Status.RUNNING)

    def complete(self, _set_status=True):
        """End an interactive or child run as Completed, keeping its tracked outputs folder with it."""
        if self._ended_by_runner():
            raise UserError(f"Run {self.id} is ended by its runner; complete() is for child runs and runs started "
                            "with Experiment.start_logging().")
        self._end(Status.COMPLETED, None)

    def fail(self, error_details=None, error_code=None, _set_status=True):
        """End the run as Failed; a submitted run that is still going is stopped first."""
        error = str(error_details) if error_details else "Marked failed by the user."
        if not self._ended_by_runner():
            self._end(Status.FAILED, error)
            return
        if self._row["status"] in FINAL_STATUSES:
            return
        control.cancel(self._store, self._top_id())
        wait_until_final(self._store, self._top_id())
        self._store.mark_run(self.id, Status.FAILED, error, replace_final=True)

    def _end(self, status, error):
        row = self._row
        if row["status"] in FINAL_STATUSES:
            return
        outputs = row["details"].get("outputs_dir")
        if outputs and Path(outputs).is_dir():
            self.upload_folder("outputs", outputs)
        self._store.mark_run(self.id, status, error)
        self._store.end_open_children(self.id, status)

    def __enter__(self):
        if self._row["status"] == Status.NOT_STARTED:
            self.start()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            self.complete()
        else:
            self.fail(error_details=f"{exc_type.__name__}: {exc_value}")
        return False

    def tag(self, key, value=None):
        self._store.set_tags(self.id, {key: "" if value is None else value})

    def set_tags(self, tags):
        self._store.set_tags(self.id, tags)

    def get_tags(self) -> dict:
        return self._store.get_tags(self.id)

    def add_properties(self, properties):
        """Add properties: unlike tags they are immutable, so a key set already to another value is refused."""
        self._store.add_properties(self.id, string_dict(properties, "properties", f"Run {self.id}.add_properties"))

    def get_properties(self) -> dict:
        return self.get_details()["properties"]

    # -- child runs ----------------------------------------------------------------------------------------------
    def child_run(self, name=None, run_id=None, outputs=None):
        """A child run, Running until its ``complete()`` or ``fail()`` (or a ``with`` block's end; at the
        latest with this run). ``outputs``: a folder kept with the child when it ends (default none)."""
        details = {"outputs_dir": None if not outputs else os.path.abspath(outputs)}
        return self._new_children([name], [run_id], Status.RUNNING, None, [None], details)[0]

    def create_children(self, count=None, tag_key=None, tag_values=None):
        """``count`` child runs, NotStarted (or one for each of ``tag_values``, tagged ``tag_key``)."""
        count, values = children_count(self.id, count, tag_key, tag_values)
        return self._new_children([None] * count, [None] * count, Status.NOT_STARTED, tag_key, values, {})

    def _new_children(self, names, ids, status, tag_key, values, details) -> list:
        taken = {row["id"] for row in self._store.child_runs(self.id)}
        rows, n = [], len(taken)
        for name, run_id, value in zip(names, ids, values):
            if run_id is None:
                while f"{self.id}_{n}" in taken:
                    n += 1
                run_id = f"{self.id}_{n}"
            elif self._store.get_run(str(run_id)) is not None:
                raise UserError(f"Run {self.id}.child_run: run_id '{run_id}' is taken by another run.")
            taken.add(str(run_id))
            tags = {} if tag_key is None or value is None else {str(tag_key): str(value)}
            rows.append({"id": str(run_id), "name": name, "status": status, "tags": tags, "details": details})
        self._store.create_child_runs(self.id, rows)
        return [Run(self.experiment, row["id"]) for row in rows]

    def register_model(self, model_name, model_path=None, tags=None, properties=None, model_framework=None,
                       model_framework_version=None, description=None, datasets=None, sample_input_dataset=None,
                       sample_output_dataset=None, resource_configuration=None, **kwargs):
        """Register a file or folder of this run's files (``outputs/model.pkl``; default: ``model_name``)
        as the next version of a model that records this run."""
        from mlpipe_jupyter.sdk.model import register_run_model  # the registry is kept out of a step script's start-up

        details = model_details(datasets, model_framework, model_framework_version, sample_input_dataset,
                                sample_output_dataset, resource_configuration, f"register_model('{model_name}')")
        return register_run_model(self, model_name, model_path, tags, properties, description, details)

    def get_children(self, recursive=False, tags=None, properties=None, type=None, status=None, _rehydrate_runs=True):
        """The child runs, latest first, as Azure lists them; ``tags`` and ``properties`` filter by a key
        ("key") or by values ({"key": "value"}), ``type`` and ``status`` by those."""
        return filter_runs(self._descendants(recursive), type, tags, properties, status)

    def _descendants(self, recursive):
        for row in self._store.child_runs(self.id, latest_first=True):
            child = run_from_row(self.experiment.workspace, row)
            yield child
            if recursive:
                yield from child._descendants(True)

    def restore_snapshot(self, snapshot_id=None, path=None) -> str:
        """The run's snapshot (or the one named) as a ZIP file in ``path`` (default: the current folder),
        named after the snapshot; returns its path."""
        snapshot_id = snapshot_id or self._row["details"].get("snapshot")
        if not snapshot_id:
            raise UserError(f"Run {self.id} has no snapshot (an interactive run has one only when started with "
                            "snapshot_directory=).")
        try:
            files = self._store.get_json(snapshot_id)["files"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"restore_snapshot: no snapshot '{snapshot_id}' in this workspace.") from None
        dest = Path(path or ".") / f"{snapshot_id}.zip"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, digest in sorted(files.items()):
                archive.write(self._store.blob_path(digest), rel)
        return str(dest)

    def get_environment(self):
        # kept out of a step script's start-up
        from mlpipe_jupyter.sdk.environment import Environment, default_environment

        env = self._row["details"].get("environment")
        return Environment.from_dict(env or default_environment().to_dict())

    # -- display -----------------------------------------------------------------------------------------------
    def __repr__(self):
        row = self._row
        return f"{type(self).__name__}(Experiment: {row['experiment']}, Id: {self.id}, Type: {self.type}, Status: {row['status']})"

    def _repr_html_(self):
        return run_html(self._store, self.id)


class PipelineRun(Run):
    """A pipeline's run; its children are StepRuns."""

    def get_steps(self):
        """The step runs, latest first as in Azure (samples take ``list(run.get_steps())[0]`` as the last step)."""
        return list(self.get_children())

    def steps_in_plan_order(self) -> list:
        """The step runs in the order the pipeline was planned (producers before consumers), for display."""
        return [run_from_row(self.experiment.workspace, row) for row in self._store.child_runs(self.id)]

    def find_step_run(self, name) -> list:
        return [s for s in self.get_steps() if s.name == name]

    def get_step(self, name) -> "StepRun":
        found = self.find_step_run(name)
        if not found:
            raise UserError(f"Run {self.id} has no step named '{name}' "
                            f"(steps: {', '.join(s.name for s in self.get_steps())}).")
        return found[0]

    def complete(self, _set_status=True):
        raise NotImplementedError("Complete is not supported for a pipeline run: its runner ends it.")

    def fail(self, error_details=None, error_code=None, _set_status=True):
        raise NotImplementedError("Fail is not supported for a pipeline run: its runner ends it.")

    def publish_pipeline(self, name, description, version, continue_on_step_failure=None, **kwargs):
        """Publish the pipeline this run ran, as it recorded it."""
        from mlpipe_jupyter.sdk.published import publish_run  # published pipelines make runs: a cycle

        return publish_run(self, name, description, version, continue_on_step_failure)

    def get_pipeline_runtime(self):
        row = self._row
        return None if row["started"] is None else (row["ended"] or time.time()) - row["started"]


class StepRun(Run):
    @property
    def reused(self) -> bool:
        return self._row["reused_from"] is not None

    @property
    def pipeline_run_id(self):
        return self._row["parent_id"]

    # -- logs: stdout and stderr are one stream here, as in Azure's user_logs/std_log.txt --------------------
    def get_job_log(self) -> str:
        return self.get_log_text()

    def get_stdout_log(self) -> str:
        return self.get_log_text()

    def get_stderr_log(self) -> str:
        """The step's whole log: what it wrote to stderr is in it, interleaved as it came."""
        return self.get_log_text()

    # -- outputs ---------------------------------------------------------------------------------------------
    def get_outputs(self) -> dict:
        """Output name -> StepRunOutput, for the outputs the step committed."""
        return {name: StepRunOutput(self, name, digest) for name, digest in self._store.get_outputs(self.id).items()}

    def get_output(self, name) -> "StepRunOutput":
        outputs = self.get_outputs()
        if name not in outputs:
            raise UserError(f"Step run {self.id} ('{self.name}') has no output named '{name}' "
                            f"(outputs: {', '.join(outputs) or 'none'}).")
        return outputs[name]

    def get_output_data(self, name) -> "PortDataReference":
        return self.get_output(name).get_port_data_reference()

    def complete(self, _set_status=True):
        raise NotImplementedError("Complete is not supported for a step run: its runner ends it.")

    def fail(self, error_details=None, error_code=None, _set_status=True):
        raise NotImplementedError("Fail is not supported for a step run: its runner ends it.")


class StepRunOutput:
    """One output of a step run (``step_run.get_output(name)``); its data is ``get_port_data_reference()``."""

    def __init__(self, step_run, name, digest):
        self.step_run, self.name, self.digest = step_run, name, digest
        self.pipeline_run_id = step_run.pipeline_run_id

    def get_port_data_reference(self) -> "PortDataReference":
        return PortDataReference(self.step_run, self.name, self.digest)

    def __repr__(self):
        return f"StepRunOutput(name={self.name!r}, step_run={self.step_run.id!r})"


class PortDataReference:
    """A step's committed output: ``.path`` on this machine, ``download(local_path)`` to copy it out.

    Azure keeps a step's output at ``azureml/<step run id>/<output name>`` on the workspace's default
    datastore; those are its ``path_on_datastore`` and ``datastore_name`` here too (the run that
    produced it, when this step was reused), and ``download`` lays it out the same way."""

    def __init__(self, step_run, name, digest):
        self.step_run = step_run
        self.name = name
        self.digest = digest
        self.path = step_run._store.data_path(digest) / name
        self.path_on_datastore = f"azureml/{step_run._origin_id}/{name}"

    @property
    def datastore_name(self) -> str:
        return self.step_run._store.default_datastore_name() or "workspaceblobstore"

    def download(self, local_path, overwrite=False, show_progress=False) -> str:
        """Copy the output to ``local_path/<path_on_datastore>`` and return that path."""
        dest = Path(local_path) / self.path_on_datastore
        if dest.exists():
            if not overwrite:
                raise UserError(f"'{dest}' exists; pass overwrite=True.")
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        if self.path.is_dir():
            shutil.copytree(self.path, dest)
            for p in [dest, *dest.rglob("*")]:
                os.chmod(p, os.stat(p).st_mode | 0o200)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path, dest)
        return str(dest)

    def __repr__(self):
        return (f"PortDataReference(name={self.name!r}, datastore_name={self.datastore_name!r}, "
                f"path_on_datastore={self.path_on_datastore!r})")


def filter_runs(runs, type=None, tags=None, properties=None, status=None):
    """Azure's run filters: a tag or property given as a key must be there, as a dict must have those values."""
    for run in runs:
        if type is not None and run.type != type:
            continue
        if status is not None and run.get_status() != status:
            continue
        if tags is not None and not _has(run.get_tags(), tags):
            continue
        if properties is not None and not _has(run.get_properties(), properties):
            continue
        yield run


def _has(values: dict, wanted) -> bool:
    if isinstance(wanted, dict):
        return all(k in values and str(values[k]) == str(v) for k, v in wanted.items())
    return wanted in values


def _run_definition(row) -> dict:
    """Azure's ``runDefinition`` for what ran a script (a pipeline run has none of its own)."""
    d = row["details"]
    if row["kind"] == "pipeline" or "script" not in d:
        return {}
    env = d.get("environment") or {}
    return {"script": d["script"], "arguments": list(d.get("arguments") or []),
            "target": d.get("compute_target", "local"), "framework": "Python", "communicator": "None",
            "nodeCount": 1, "environment": {"name": env.get("name"), "version": env.get("version")},
            "inputs": [i["name"] for i in d.get("inputs") or []], "outputs": list(d.get("outputs") or [])}


def _printer(prefix: bool):
    """A follower's callback printing each event as its line (tracking/report.py)."""
    lock = threading.Lock()

    def show(event):
        text = event_text(event, prefix)
        if text is not None:
            with lock:
                print(text, file=sys.stdout, flush=True)

    return show
