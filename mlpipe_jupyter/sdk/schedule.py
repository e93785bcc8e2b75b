"""Schedules of published pipelines and endpoints (Azure ML SDK v1's ``Schedule``): on a recurrence, or
when files in a datastore folder change. The SDK only records them; a running server (``mlpipe serve``
or Jupyter with this extension) fires them, each due slot once, however many servers run.
"""
from __future__ import annotations

import hashlib
import json
import time

from mlpipe_jupyter.errors import NotFoundError, UserError
from mlpipe_jupyter.sdk.datastore import Datastore
from mlpipe_jupyter.sdk.experiment import Experiment
from mlpipe_jupyter.sdk.published import TRIGGERED_BY, PipelineEndpoint, PublishedPipeline, check_parameters
from mlpipe_jupyter.sdk.recurrence import ScheduleRecurrence, TimeZone
from mlpipe_jupyter.sdk.run import Run

__all__ = ["Schedule", "ScheduleRecurrence", "TimeZone", "datastore_fingerprint"]


def datastore_fingerprint(workspace, datastore_name: str, path_on_datastore: str | None) -> str:
    """A digest of the watched folder's listing (each file's path, size and modification time): it changes
    when a file is added, removed or rewritten."""
    store = Datastore(workspace, datastore_name)
    root = store.resolve(path_on_datastore)
    fs = store.fs
    listing = []
    if fs.exists(root):
        for path, info in sorted(fs.find(root, detail=True).items()):
            stamp = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
            listing.append([path[len(root):].lstrip("/"), info.get("size"), str(stamp)])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def _plain_parameters(values) -> dict:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UserError(f"Schedule pipeline_parameters must be a dict of parameter name to value; got {values!r}.")
    for name, value in values.items():
        if not isinstance(value, (str, int, float, bool)):
            raise UserError(f"Schedule pipeline parameter '{name}' has value {value!r}; a schedule passes strings, "
                            "numbers and booleans (a datastore schedule passes its folder as data_path_parameter_name).")
    return dict(values)


def _check_name(name):
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"A schedule needs a name (a non-empty string); got {name!r}.")


def _check_polling_interval(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"Schedule polling_interval must be a whole number of minutes, 1 or more; got {value!r}.")


def _datastore_name(workspace, datastore, path_on_datastore) -> str:
    """The name of a datastore (object or name) that exists, with ``path_on_datastore`` inside it."""
    name = datastore if isinstance(datastore, str) else getattr(datastore, "name", None)
    if not isinstance(name, str):
        raise UserError(f"Schedule datastore must be a Datastore (or its name); got {type(datastore).__name__}.")
    store = Datastore(workspace, name)  # a clear error when unknown
    if path_on_datastore is not None and not isinstance(path_on_datastore, str):
        raise UserError(f"Schedule path_on_datastore must be a folder path on datastore '{name}'; "
                        f"got {path_on_datastore!r}.")
    store.resolve(path_on_datastore)  # refuses a path leaving the datastore
    return name


class Schedule:
    """Runs a published pipeline or an endpoint on a recurrence, or when a datastore folder changes."""

    def __init__(self, workspace, row):
        self._workspace = workspace
        self._row = row

    id = property(lambda self: self._row["id"])
    name = property(lambda self: self._row["name"])
    description = property(lambda self: self._row["description"])
    status = property(lambda self: self._row["status"])
    pipeline_id = property(lambda self: self._row["pipeline_id"])
    pipeline_endpoint_id = property(lambda self: self._row["pipeline_endpoint_id"])
    experiment_name = property(lambda self: self._row["experiment_name"])
    datastore_name = property(lambda self: self._row["datastore_name"])
    polling_interval = property(lambda self: self._row["polling_interval"])
    data_path_parameter_name = property(lambda self: self._row["data_path_parameter_name"])
    path_on_datastore = property(lambda self: self._row["path_on_datastore"])
    continue_on_step_failure = property(lambda self: self._row["continue_on_step_failure"])
    pipeline_parameters = property(lambda self: self._row["pipeline_parameters"] or {})
    last_run_id = property(lambda self: self._row["last_run_id"], doc="The id of the run it started last.")
    last_error = property(lambda self: self._row["last_error"],
                          doc="Why the last firing could not start a run (None when it did).")
    next_run_time = property(lambda self: self._row["next_due"],
                             doc="When the schedule is next due (epoch seconds; a datastore schedule's next poll).")

    provisioning_status = property(lambda self: "Completed",
                                   doc="Always 'Completed': a schedule is recorded at once, nothing to provision.")

    def wait_for_provisioning_status(self, timeout=3600, **kwargs):
        """Returns at once: there is nothing to provision (Azure waits for its scheduling service)."""

    @property
    def recurrence(self) -> ScheduleRecurrence | None:
        r = self._row["recurrence"]
        return None if r is None else ScheduleRecurrence.from_dict(r)

    # -- making -------------------------------------------------------------------------------------------
    @staticmethod
    def create(workspace, name, pipeline_id, experiment_name, recurrence=None, description=None,
               pipeline_parameters=None, wait_for_provisioning=False, wait_timeout=3600, datastore=None,
               polling_interval=5, data_path_parameter_name=None, continue_on_step_failure=None,
               path_on_datastore=None, **kwargs) -> "Schedule":
        """A schedule of published pipeline ``pipeline_id``: on ``recurrence``, or when ``datastore`` changes."""
        published = PublishedPipeline.get(workspace, pipeline_id)
        return Schedule._create(workspace, published, name, experiment_name, recurrence, description,
                                pipeline_parameters, datastore, polling_interval, data_path_parameter_name,
                                continue_on_step_failure, path_on_datastore, pipeline_id=published.id)

    @staticmethod
    def create_for_pipeline_endpoint(workspace, name, pipeline_endpoint_id, experiment_name, recurrence=None,
                                     description=None, pipeline_parameters=None, wait_for_provisioning=False,
                                     wait_timeout=3600, datastore=None, polling_interval=5,
                                     data_path_parameter_name=None, continue_on_step_failure=None,
                                     path_on_datastore=None, **kwargs) -> "Schedule":
        """A schedule of an endpoint: each firing runs its default version as it is then."""
        endpoint = PipelineEndpoint.get(workspace, id=pipeline_endpoint_id)
        return Schedule._create(workspace, endpoint.get_pipeline(), name, experiment_name, recurrence, description,
                                pipeline_parameters, datastore, polling_interval, data_path_parameter_name,
                                continue_on_step_failure, path_on_datastore, pipeline_endpoint_id=endpoint.id)

    @staticmethod
    def _create(workspace, published, name, experiment_name, recurrence, description, pipeline_parameters,
                datastore, polling_interval, data_path_parameter_name, continue_on_step_failure, path_on_datastore,
                **target) -> "Schedule":
        _check_name(name)
        Experiment(workspace, experiment_name)  # checks the name
        parameters = _plain_parameters(pipeline_parameters)
        check_parameters(published, parameters)
        if (recurrence is None) == (datastore is None):
            raise UserError(f"Schedule '{name}' needs either a recurrence (a ScheduleRecurrence) or a datastore to "
                            "watch, and not both.")
        fields = dict(name=name, description=description, status="Active", experiment_name=experiment_name,
                      pipeline_parameters=parameters, continue_on_step_failure=continue_on_step_failure, **target)
        now = time.time()
        if recurrence is not None:
            if not isinstance(recurrence, ScheduleRecurrence):
                raise UserError(f"Schedule '{name}': recurrence must be a ScheduleRecurrence; got "
                                f"{type(recurrence).__name__}.")
            for given, what in ((data_path_parameter_name, "data_path_parameter_name"),
                                (path_on_datastore, "path_on_datastore")):
                if given is not None:
                    raise UserError(f"Schedule '{name}': {what} applies to a datastore schedule, not to a "
                                    "recurring one.")
            fields.update(Schedule._recurrence_fields(recurrence, now))
        else:
            _check_polling_interval(polling_interval)
            ds_name = _datastore_name(workspace, datastore, path_on_datastore)
            if data_path_parameter_name is not None and data_path_parameter_name not in published.parameters:
                raise UserError(f"Schedule '{name}': data_path_parameter_name '{data_path_parameter_name}' is not a "
                                f"parameter of published pipeline '{published.name}' (its parameters: "
                                f"{', '.join(sorted(published.parameters)) or 'none'}).")
            fields.update(datastore_name=ds_name, path_on_datastore=path_on_datastore,
                          polling_interval=polling_interval, data_path_parameter_name=data_path_parameter_name,
                          fingerprint=datastore_fingerprint(workspace, ds_name, path_on_datastore), next_due=now)
        return Schedule(workspace, workspace._store.add_schedule(**fields))

    @staticmethod
    def _recurrence_fields(recurrence: ScheduleRecurrence, now: float) -> dict:
        recurrence.validate()
        anchor = recurrence.anchor(now)
        return dict(recurrence=recurrence.to_dict(), anchor=anchor, next_due=recurrence.first_time(now, anchor))

    # -- finding ------------------------------------------------------------------------------------------
    @staticmethod
    def get(workspace, id, **kwargs) -> "Schedule":
        row = workspace._store.schedule(str(id))
        if row is None:
            raise NotFoundError(f"No schedule with id '{id}' in workspace '{workspace.name}'.")
        return Schedule(workspace, row)

    @staticmethod
    def list(workspace, active_only=True, pipeline_id=None, pipeline_endpoint_id=None, **kwargs) -> list:
        """The workspace's schedules, newest first; only the active ones unless ``active_only=False``."""
        return [Schedule(workspace, r) for r in workspace._store.schedules(active_only, pipeline_id,
                                                                           pipeline_endpoint_id)]

    @staticmethod
    def get_all(workspace, active_only=True, pipeline_id=None, pipeline_endpoint_id=None, **kwargs) -> list:
        """Azure's older name for ``list``."""
        return Schedule.list(workspace, active_only, pipeline_id, pipeline_endpoint_id)

    @staticmethod
    def get_schedules_for_pipeline_id(workspace, pipeline_id, **kwargs) -> list:
        """Every schedule (active or disabled) of published pipeline ``pipeline_id``."""
        return Schedule.list(workspace, active_only=False, pipeline_id=pipeline_id)

    @staticmethod
    def get_schedules_for_pipeline_endpoint_id(workspace, pipeline_endpoint_id, **kwargs) -> list:
        """Every schedule (active or disabled) of pipeline endpoint ``pipeline_endpoint_id``."""
        return Schedule.list(workspace, active_only=False, pipeline_endpoint_id=pipeline_endpoint_id)

    # -- changing -----------------------------------------------------------------------------------------
    def _reload(self):
        self._row = self._workspace._store.schedule(self.id)

    def update(self, name=None, description=None, recurrence=None, pipeline_parameters=None, status=None,
               wait_for_provisioning=False, wait_timeout=3600, datastore=None, polling_interval=None,
               data_path_parameter_name=None, continue_on_step_failure=None, path_on_datastore=None, **kwargs):
        """Change what is given (everything checked before anything changes); the rest stays."""
        self._reload()
        fields = {}
        if name is not None:
            _check_name(name)
            fields["name"] = name
        if description is not None:
            fields["description"] = description
        if status is not None:
            if status not in ("Active", "Disabled"):
                raise UserError(f"Schedule '{self.name}': status must be 'Active' or 'Disabled'; got {status!r}.")
            fields["status"] = status
        if continue_on_step_failure is not None:
            fields["continue_on_step_failure"] = continue_on_step_failure
        if pipeline_parameters is not None:
            fields["pipeline_parameters"] = _plain_parameters(pipeline_parameters)
            check_parameters(self._published(), fields["pipeline_parameters"])
        data_given = {k: v for k, v in dict(datastore=datastore, polling_interval=polling_interval,
                                            data_path_parameter_name=data_path_parameter_name,
                                            path_on_datastore=path_on_datastore).items() if v is not None}
        if recurrence is not None:
            if self._row["recurrence"] is None or data_given:
                raise UserError(f"Schedule '{self.name}' watches a datastore; it cannot take a recurrence (make a "
                                "new schedule instead).")
            if not isinstance(recurrence, ScheduleRecurrence):
                raise UserError(f"Schedule '{self.name}': recurrence must be a ScheduleRecurrence; got "
                                f"{type(recurrence).__name__}.")
            fields.update(self._recurrence_fields(recurrence, time.time()))
        if data_given:
            if self._row["recurrence"] is not None:
                raise UserError(f"Schedule '{self.name}' is a recurring schedule; "
                                f"{', '.join(sorted(data_given))} apply to a datastore schedule.")
            if polling_interval is not None:
                _check_polling_interval(polling_interval)
                fields["polling_interval"] = polling_interval
            if data_path_parameter_name is not None:
                published = self._published()
                if data_path_parameter_name not in published.parameters:
                    raise UserError(f"Schedule '{self.name}': data_path_parameter_name '{data_path_parameter_name}' "
                                    f"is not a parameter of published pipeline '{published.name}'.")
                fields["data_path_parameter_name"] = data_path_parameter_name
            if datastore is not None or path_on_datastore is not None:
                path = path_on_datastore if path_on_datastore is not None else self.path_on_datastore
                ds_name = _datastore_name(self._workspace, datastore if datastore is not None
                                          else self.datastore_name, path)
                fields.update(datastore_name=ds_name, path_on_datastore=path, pending=None,
                              fingerprint=datastore_fingerprint(self._workspace, ds_name, path))
        if fields.get("status") == "Active" and self.status != "Active" and "next_due" not in fields:
            fields.update(self._resumed())
        self._workspace._store.update_schedule(self.id, **fields)
        self._reload()

    def _resumed(self) -> dict:
        """Enabled again: the next slot from now, never the ones missed while disabled."""
        now = time.time()
        if self.recurrence is None:
            return {"next_due": now}
        return {"next_due": self.recurrence.next_time(now, self._row["anchor"])}

    def disable(self, wait_for_provisioning=False, wait_timeout=3600, **kwargs):
        self.update(status="Disabled")

    def enable(self, wait_for_provisioning=False, wait_timeout=3600, **kwargs):
        self.update(status="Active")

    def _published(self) -> PublishedPipeline:
        if self.pipeline_id is not None:
            return PublishedPipeline.get(self._workspace, self.pipeline_id)
        return PipelineEndpoint.get(self._workspace, id=self.pipeline_endpoint_id).get_pipeline()

    # -- runs ---------------------------------------------------------------------------------------------
    def get_pipeline_runs(self) -> list:
        """The runs this schedule started, newest first."""
        return list(Experiment(self._workspace, self.experiment_name).get_runs(
            properties={TRIGGERED_BY: f"schedule:{self.id}"}))

    def get_last_pipeline_run(self):
        """The run this schedule started last, or None."""
        self._reload()
        if self._row["last_run_id"]:
            return Run.get(self._workspace, self._row["last_run_id"])
        runs = self.get_pipeline_runs()
        return runs[0] if runs else None

    def __repr__(self):
        return f"Schedule(name={self.name!r}, id={self.id!r}, status={self.status!r})"
