"""Published pipelines, pipeline endpoints and drafts (Azure ML SDK v1's names), and ``trigger``, which
queues a run of one from a REST body (a server starts it when a slot is free, in a process of its own).

Publishing freezes a pipeline: its document plus a read-only copy of each step's snapshot, so later
edits of the notebook or the scripts change nothing (Azure uploads a snapshot too). An endpoint names
published pipelines by version ("0", "1", ...) and runs its default one. A draft keeps only the
document: it is edited until it is submitted or published.
"""
from __future__ import annotations

import json
from pathlib import Path

from mlpipe_jupyter.errors import ConflictError, NotFoundError, RequestError, UserError
from mlpipe_jupyter.model.document import relative_to
from mlpipe_jupyter.model.format import for_storage
from mlpipe_jupyter.planning.snapshot import take_snapshot
from mlpipe_jupyter.sdk.data import DataPath, get_dataset, get_dataset_by_id
from mlpipe_jupyter.sdk.datastore import Datastore
from mlpipe_jupyter.sdk.experiment import Experiment, submitted_by
from mlpipe_jupyter.sdk.pipeline import Pipeline, pipeline_from_dict
from mlpipe_jupyter.sdk.run import Run
from mlpipe_jupyter.secrets import MASK
from mlpipe_jupyter.status import Status
from mlpipe_jupyter.store import new_id, process_alive

DEFAULT_SERVER_URL = "http://127.0.0.1:8888"
TRIGGERED_BY = "mlpipe.triggeredBy"
"""The run property saying what started a published pipeline's run: sdk, rest, or schedule:<schedule id>."""
_KINDS = {"pipeline": "pipelines", "endpoint": "endpoints/Id"}  # Azure's shape: clients derive .../Name?name= from it


def running_server_url(workspace) -> str | None:
    """The URL of the workspace's server, from its record ``.mlpipe/server.json`` while its process lives."""
    try:
        record = json.loads((Path(workspace.folder) / "server.json").read_text())
        if process_alive(int(record["pid"]), None) and record.get("url"):
            return str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def endpoint_url(workspace, kind, target_id) -> str:
    """The REST URL that runs a published pipeline or endpoint: the running server's, else the default."""
    base = running_server_url(workspace) or DEFAULT_SERVER_URL
    return f"{base.rstrip('/')}/mlpipe/api/{_KINDS[kind]}/{target_id}"


# -- freezing -----------------------------------------------------------------------------------------------
def _frozen_document(workspace, doc) -> dict:
    """``doc`` (folders absolute) with each step's folder replaced by a read-only copy of its snapshot,
    kept relative to the workspace and without secrets."""
    store = workspace._store
    doc = json.loads(json.dumps(for_storage(doc)))
    for step in doc.get("steps") or []:
        source = Path(step["source_directory"])
        if step.get("hash_paths"):
            step["hash_paths"] = [_outside_made_absolute(source, hp) for hp in step["hash_paths"]]
        snapshot = take_snapshot(store, source, with_git=False)
        step["source_directory"] = str(store.frozen_source(snapshot.files, snapshot.digest))
    return relative_to(doc, workspace.path)


def _outside_made_absolute(source: Path, hash_path: str) -> str:
    """A hash path outside the step's folder (a notebook's module beside the notebook) is not in the frozen
    copy: the step still imports it where it is, so reuse follows it there, by its absolute path."""
    path = (source / hash_path).resolve()
    return hash_path if path.is_relative_to(source.resolve()) else str(path)


def _check_name(name, what):
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{what} needs a name (a non-empty string); got {name!r}.")


def publish_document(workspace, doc, name, description=None, version=None, continue_on_step_failure=None):
    """Freeze ``doc`` and record it as a new, active published pipeline."""
    _check_name(name, "A published pipeline")
    row = workspace._store.add_published_pipeline(name, description, None if version is None else str(version),
                                                  continue_on_step_failure, _frozen_document(workspace, doc))
    return PublishedPipeline(workspace, row)


def publish_pipeline(pipeline, name, description=None, version=None, continue_on_step_failure=None):
    """``Pipeline.publish``: checked first, as a submit is, then frozen."""
    pipeline.validate(raise_on_error=True)
    return publish_document(pipeline.workspace, pipeline.to_document(), name, description, version,
                            continue_on_step_failure)


def publish_run(run, name, description=None, version=None, continue_on_step_failure=None):
    """``PipelineRun.publish_pipeline``: what the run ran, from the document it recorded."""
    ws = run.experiment.workspace
    doc = (ws._store.get_run(run.id) or {}).get("details", {}).get("pipeline")
    if not doc:
        raise UserError(f"Run {run.id} is not a pipeline run with a recorded pipeline; it cannot be published.")
    return publish_document(ws, pipeline_from_dict(ws, doc, ws.path).to_document(), name, description, version,
                            continue_on_step_failure)


def _submit_document(workspace, doc, experiment_name, parameters, continue_on_step_failure, tags=None,
                     properties=None, queued_id=None):
    pipeline = pipeline_from_dict(workspace, doc, workspace.path)
    run = Experiment(workspace, experiment_name).submit(pipeline, tags=tags, pipeline_parameters=parameters,
                                                        continue_on_step_failure=bool(continue_on_step_failure),
                                                        _queued_id=queued_id)
    if run is not None and properties:
        workspace._store.add_properties(run.id, properties)
    return run


class PublishedPipeline:
    """A frozen pipeline that can be run by id, from here or from its REST endpoint."""

    def __init__(self, workspace, row):
        self.workspace = workspace
        self._row = row

    id = property(lambda self: self._row["id"])
    name = property(lambda self: self._row["name"])
    description = property(lambda self: self._row["description"])
    version = property(lambda self: self._row["version"])
    status = property(lambda self: self._row["status"])
    continue_on_step_failure = property(lambda self: self._row["continue_on_step_failure"])
    endpoint = property(lambda self: endpoint_url(self.workspace, "pipeline", self.id))

    @property
    def parameters(self) -> dict:
        """Parameter name -> default value (as the document keeps it)."""
        return {n: (p or {}).get("default") for n, p in (self._row["document"].get("parameters") or {}).items()}

    @staticmethod
    def get(workspace, id, **kwargs) -> "PublishedPipeline":
        row = workspace._store.published_pipeline(str(id))
        if row is None:
            raise NotFoundError(f"No published pipeline with id '{id}' in workspace '{workspace.name}'.")
        return PublishedPipeline(workspace, row)

    @staticmethod
    def list(workspace, active_only=True, **kwargs) -> list:
        """The workspace's published pipelines, newest first; only the active ones unless ``active_only=False``."""
        return [PublishedPipeline(workspace, r) for r in workspace._store.published_pipelines(active_only)]

    def _set_status(self, status):
        self.workspace._store.set_published_status(self.id, status)
        self._row = self.workspace._store.published_pipeline(self.id)

    def disable(self):
        self._set_status("Disabled")

    def enable(self):
        self._set_status("Active")

    def submit(self, workspace, experiment_name, pipeline_parameters=None, **kwargs):
        """Run it in ``experiment_name``; returns the PipelineRun at once."""
        return self._run(workspace, experiment_name, pipeline_parameters, kwargs.get("tags"))

    def _run(self, workspace, experiment_name, parameters, tags=None, triggered_by=None,
             continue_on_step_failure=None, queued_id=None):
        if self.status != "Active":
            raise ConflictError(f"Published pipeline '{self.name}' ({self.id}) is disabled; enable() it to run it.")
        check_parameters(self, parameters or {})
        if continue_on_step_failure is None:
            continue_on_step_failure = self.continue_on_step_failure
        return _submit_document(workspace, self._row["document"], experiment_name, parameters,
                                continue_on_step_failure, tags,
                                {"azureml.pipelineid": self.id, TRIGGERED_BY: triggered_by or "sdk"}, queued_id)

    def _submit_to(self, experiment, pipeline_parameters=None, pipeline_version=None, tags=None):
        """``Experiment.submit(published_pipeline)``."""
        return self._run(experiment.workspace, experiment.name, pipeline_parameters, tags)

    def __repr__(self):
        return f"PublishedPipeline(name={self.name!r}, id={self.id!r}, status={self.status!r})"


def check_parameters(published, values: dict) -> None:
    """Every name a parameter of the pipeline, every value of its default's type (a number for a number)."""
    defaults = published.parameters
    for name, value in values.items():
        if name not in defaults:
            raise RequestError(f"'{name}' is not a parameter of published pipeline '{published.name}' "
                               f"(its parameters: {', '.join(sorted(defaults)) or 'none'}).")
        expected = _expected_type(defaults[name])
        if expected is not None and not _fits(value, expected):
            shown = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
                     dict: "a DataPath or dataset"}[expected]
            raise RequestError(f"Parameter '{name}' of published pipeline '{published.name}' takes {shown}; "
                               f"got {value!r} ({type(value).__name__}).")


def _expected_type(default):
    for t in (bool, int, float, str, dict):
        if isinstance(default, t):
            return t
    return None


def _fits(value, expected) -> bool:
    if expected is dict:
        return hasattr(value, "to_dict") or isinstance(value, dict)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


# -- endpoints ----------------------------------------------------------------------------------------------
class PipelineEndpoint:
    """A name for a sequence of published pipelines ("0", "1", ...); runs its default version unless told."""

    def __init__(self, workspace, row):
        self.workspace = workspace
        self._row = row

    id = property(lambda self: self._row["id"])
    name = property(lambda self: self._row["name"])
    description = property(lambda self: self._row["description"])
    status = property(lambda self: self._row["status"])
    default_version = property(lambda self: self._row["default_version"])
    endpoint = property(lambda self: endpoint_url(self.workspace, "endpoint", self.id))

    @staticmethod
    def publish(workspace, name, description, pipeline, **kwargs) -> "PipelineEndpoint":
        """A new endpoint whose version "0" (its default) is ``pipeline`` (a PublishedPipeline or a Pipeline)."""
        _check_name(name, "A pipeline endpoint")
        published = _as_published(workspace, pipeline, name, description)
        row = workspace._store.add_endpoint(name, description, published.id)
        if row is None:
            raise UserError(f"A pipeline endpoint named '{name}' exists already; add the pipeline to it with "
                            f"PipelineEndpoint.get(ws, name='{name}').add_default(pipeline).")
        return PipelineEndpoint(workspace, row)

    @staticmethod
    def get(workspace, id=None, name=None, **kwargs) -> "PipelineEndpoint":
        if (id is None) == (name is None):
            raise UserError("PipelineEndpoint.get takes an id or a name (one of them).")
        row = workspace._store.endpoint(endpoint_id=None if id is None else str(id), name=name)
        if row is None:
            raise NotFoundError(f"No pipeline endpoint with {'id' if id is not None else 'name'} "
                                f"'{id if id is not None else name}' in workspace '{workspace.name}'.")
        return PipelineEndpoint(workspace, row)

    @staticmethod
    def list(workspace, active_only=True, **kwargs) -> list:
        return [PipelineEndpoint(workspace, r) for r in workspace._store.endpoints(active_only)]

    def _reload(self):
        self._row = self.workspace._store.endpoint(endpoint_id=self.id)

    def add(self, pipeline):
        """``pipeline`` as the next version; the default stays."""
        self.workspace._store.add_endpoint_version(self.id, _as_published(self.workspace, pipeline, self.name).id)
        self._reload()

    def add_default(self, pipeline):
        """``pipeline`` as the next version, and the default."""
        self.workspace._store.add_endpoint_version(self.id, _as_published(self.workspace, pipeline, self.name).id,
                                                   make_default=True)
        self._reload()

    def set_default(self, pipeline):
        """Make the version holding ``pipeline`` the default (added first if it is not there)."""
        published = _as_published(self.workspace, pipeline, self.name)
        for v in self.workspace._store.endpoint_versions(self.id):
            if v["pipeline_id"] == published.id:
                return self.set_default_version(v["version"])
        self.add_default(published)

    def set_default_version(self, version):
        self._version_row(version)
        self.workspace._store.update_endpoint(self.id, default_version=str(version))
        self._reload()

    def _version_row(self, version) -> dict:
        versions = self.workspace._store.endpoint_versions(self.id)
        for v in versions:
            if v["version"] == str(version):
                return v
        raise NotFoundError(f"Pipeline endpoint '{self.name}' has no version {version!r} "
                            f"(its versions: {', '.join(v['version'] for v in versions)}).")

    def get_default_version(self) -> str:
        return self.default_version

    def list_versions(self) -> list:
        """Each version with its published pipeline (``.version``, ``.pipeline_id``, ``.pipeline``), in order."""
        return [PipelineIdVersion(v["version"], PublishedPipeline.get(self.workspace, v["pipeline_id"]))
                for v in self.workspace._store.endpoint_versions(self.id)]

    def get_pipeline(self, version=None) -> PublishedPipeline:
        """The published pipeline of ``version`` (default: the default version)."""
        v = self._version_row(self.default_version if version is None else version)
        return PublishedPipeline.get(self.workspace, v["pipeline_id"])

    def list_pipelines(self, active_only=True) -> list:
        """The published pipelines of its versions, in version order."""
        found = [PublishedPipeline.get(self.workspace, v["pipeline_id"])
                 for v in self.workspace._store.endpoint_versions(self.id)]
        return [p for p in found if p.status == "Active" or not active_only]

    def set_name(self, name):
        _check_name(name, "A pipeline endpoint")
        if not self.workspace._store.update_endpoint(self.id, name=name):
            raise UserError(f"A pipeline endpoint named '{name}' exists already.")
        self._reload()

    def disable(self):
        self.workspace._store.update_endpoint(self.id, status="Disabled")
        self._reload()

    def enable(self):
        self.workspace._store.update_endpoint(self.id, status="Active")
        self._reload()

    def _pipeline_to_run(self, pipeline_version) -> PublishedPipeline:
        if self.status != "Active":
            raise ConflictError(f"Pipeline endpoint '{self.name}' ({self.id}) is disabled; enable() it to run it.")
        return self.get_pipeline(pipeline_version)

    def submit(self, experiment_name, pipeline_parameters=None, pipeline_version=None, **kwargs):
        """Run the default version (or ``pipeline_version``) in ``experiment_name``; returns its PipelineRun."""
        return self._pipeline_to_run(pipeline_version).submit(self.workspace, experiment_name, pipeline_parameters,
                                                              tags=kwargs.get("tags"))

    def _submit_to(self, experiment, pipeline_parameters=None, pipeline_version=None, tags=None):
        """``Experiment.submit(endpoint, pipeline_version=...)``."""
        return self._pipeline_to_run(pipeline_version)._run(experiment.workspace, experiment.name,
                                                            pipeline_parameters, tags)

    def __repr__(self):
        return f"PipelineEndpoint(name={self.name!r}, id={self.id!r}, default_version={self.default_version!r})"


class PipelineIdVersion:
    """One version of an endpoint and the published pipeline it names."""

    def __init__(self, version, pipeline):
        self.version, self.pipeline, self.pipeline_id = version, pipeline, pipeline.id

    def __repr__(self):
        return f"PipelineIdVersion(version={self.version!r}, pipeline_id={self.pipeline_id!r})"


def _as_published(workspace, pipeline, name, description=None) -> PublishedPipeline:
    if isinstance(pipeline, PublishedPipeline):
        return pipeline
    if isinstance(pipeline, Pipeline):
        return publish_pipeline(pipeline, name, description)
    raise UserError(f"A pipeline endpoint takes a PublishedPipeline (or a Pipeline to publish), not "
                    f"{type(pipeline).__name__}.")


# -- drafts -------------------------------------------------------------------------------------------------
class PipelineDraft:
    """An editable pipeline kept in the workspace with what its runs need (experiment, parameters, tags)."""

    def __init__(self, workspace, row):
        self.workspace = workspace
        self._row = row

    id = property(lambda self: self._row["id"])
    name = property(lambda self: self._row["name"])
    description = property(lambda self: self._row["description"])
    experiment_name = property(lambda self: self._row["experiment_name"])
    pipeline_parameters = property(lambda self: self._row["parameters"])
    tags = property(lambda self: self._row["tags"])
    continue_on_step_failure = property(lambda self: self._row["continue_on_step_failure"])

    @staticmethod
    def create(workspace, pipeline, name, description=None, experiment_name=None, pipeline_parameters=None,
               tags=None, continue_on_step_failure=False, **kwargs) -> "PipelineDraft":
        _check_name(name, "A pipeline draft")
        row = workspace._store.add_draft(name=name, description=description, experiment_name=experiment_name,
                                         parameters=_plain_parameters(pipeline_parameters), tags=tags or {},
                                         continue_on_step_failure=continue_on_step_failure,
                                         document=_draft_document(workspace, pipeline))
        return PipelineDraft(workspace, row)

    @staticmethod
    def get(workspace, id, **kwargs) -> "PipelineDraft":
        row = workspace._store.draft(str(id))
        if row is None:
            raise NotFoundError(f"No pipeline draft with id '{id}' in workspace '{workspace.name}'.")
        return PipelineDraft(workspace, row)

    @staticmethod
    def list(workspace, tags=None, **kwargs) -> list:
        """Newest first; ``tags`` keeps the drafts having each of those tags with that value."""
        drafts = [PipelineDraft(workspace, r) for r in workspace._store.drafts()]
        return [d for d in drafts if all(d.tags.get(k) == v for k, v in (tags or {}).items())]

    def get_graph(self) -> Pipeline:
        """The draft's pipeline as SDK objects."""
        return pipeline_from_dict(self.workspace, self._row["document"], self.workspace.path)

    def update(self, pipeline=None, name=None, description=None, experiment_name=None, tags=None,
               pipeline_parameters=None, continue_on_step_failure=None):
        """Change what is given; the rest stays."""
        fields = {k: v for k, v in dict(name=name, description=description, experiment_name=experiment_name,
                                        tags=tags, continue_on_step_failure=continue_on_step_failure).items()
                  if v is not None}
        if name is not None:
            _check_name(name, "A pipeline draft")
        if pipeline_parameters is not None:
            fields["parameters"] = _plain_parameters(pipeline_parameters)
        if pipeline is not None:
            fields["document"] = _draft_document(self.workspace, pipeline)
        self.workspace._store.update_draft(self.id, **fields)
        self._row = self.workspace._store.draft(self.id)

    def submit_run(self):
        """Run the draft as it is now in its experiment; returns the PipelineRun."""
        if not self.experiment_name:
            raise UserError(f"Pipeline draft '{self.name}' has no experiment_name; update(experiment_name=...) first.")
        return _submit_document(self.workspace, self._row["document"], self.experiment_name,
                                self.pipeline_parameters or None, self.continue_on_step_failure, self.tags)

    def publish(self, **kwargs) -> PublishedPipeline:
        """Freeze the draft as a published pipeline of its name and description."""
        return publish_pipeline(self.get_graph(), self.name, self.description,
                                continue_on_step_failure=self.continue_on_step_failure)

    def delete(self):
        self.workspace._store.delete_draft(self.id)

    def __repr__(self):
        return f"PipelineDraft(name={self.name!r}, id={self.id!r})"


def _draft_document(workspace, pipeline) -> dict:
    if not isinstance(pipeline, Pipeline):
        raise UserError(f"A pipeline draft holds a Pipeline, not {type(pipeline).__name__}.")
    return relative_to(for_storage(pipeline.to_document()), workspace.path)


def _plain_parameters(values) -> dict:
    for name, value in (values or {}).items():
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise UserError(f"Pipeline draft parameter '{name}' has value {value!r}; a draft keeps strings, "
                            "numbers and booleans.")
    return dict(values or {})


# -- REST trigger -------------------------------------------------------------------------------------------
def resolve_trigger(workspace, kind, target_id, body):
    """(published pipeline, experiment name, parameter values) for a REST body, every part checked."""
    if kind not in _KINDS:
        raise RequestError(f"Unknown kind {kind!r}; expected 'pipeline' or 'endpoint'.")
    if not isinstance(body, dict):
        raise RequestError(f"The request body must be a JSON object; got {type(body).__name__}.")
    known = {"ExperimentName", "ParameterAssignments", "DataPathAssignments", "DataSetDefinitionValueAssignments",
             "PipelineVersion", "RunSource", "Description", "Tags"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise RequestError(f"The request body has unknown field(s) {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(known))}).")
    experiment_name = body.get("ExperimentName")
    if not isinstance(experiment_name, str) or not experiment_name:
        raise RequestError("The request body needs 'ExperimentName', a non-empty string.")
    try:
        Experiment(workspace, experiment_name)
    except UserError as e:
        raise RequestError(str(e)) from None
    published = _published_for(workspace, kind, target_id, body.get("PipelineVersion"))
    values = {}
    for field in _ASSIGNMENTS:
        given = {} if body.get(field) is None else body[field]
        if not isinstance(given, dict):
            raise RequestError(f"'{field}' must be an object of parameter name to value; got {given!r}.")
        for name, value in given.items():
            if name not in published.parameters:
                raise RequestError(f"'{name}' in '{field}' is not a parameter of published pipeline "
                                   f"'{published.name}' (its parameters: "
                                   f"{', '.join(sorted(published.parameters)) or 'none'}). Azure ML ignores such "
                                   "names; this server refuses them so that a misspelt name never runs the default "
                                   "unnoticed (a server started with unknown_parameters 'ignore' drops them).")
            if field == "DataPathAssignments":
                value = _data_path(workspace, name, value)
            elif field == "DataSetDefinitionValueAssignments":
                value = _dataset(workspace, name, value)
            values[name] = value
    check_parameters(published, values)
    return published, experiment_name, values


def _published_for(workspace, kind, target_id, version):
    """The active published pipeline a trigger of ``kind``/``target_id`` (at ``version``) runs."""
    if kind == "pipeline":
        if version is not None:
            raise RequestError("'PipelineVersion' applies to a pipeline endpoint, not to a published pipeline.")
        published = PublishedPipeline.get(workspace, target_id)
        if published.status != "Active":
            raise ConflictError(f"Published pipeline '{published.name}' ({published.id}) is disabled.")
        return published
    if version is not None and not isinstance(version, (str, int)):
        raise RequestError(f"'PipelineVersion' must be a string such as \"0\"; got {version!r}.")
    endpoint = PipelineEndpoint.get(workspace, id=target_id)
    published = endpoint._pipeline_to_run(None if version is None else str(version))
    if published.status != "Active":
        raise ConflictError(f"Version {version or endpoint.default_version} of pipeline endpoint "
                            f"'{endpoint.name}' is a disabled published pipeline.")
    return published


_ASSIGNMENTS = ("ParameterAssignments", "DataPathAssignments", "DataSetDefinitionValueAssignments")


def without_unknown_parameters(workspace, kind, target_id, body) -> tuple[dict, list[str]]:
    """``body`` without the assignments to names the pipeline does not have, and those names: what a server
    set to Azure's lenient way (``unknown_parameters = "ignore"``) runs. Anything else wrong is left for
    ``resolve_trigger`` to name."""
    if not isinstance(body, dict):
        return body, []
    try:
        published = _published_for(workspace, kind, target_id, body.get("PipelineVersion"))
    except UserError:
        return body, []
    body, dropped = dict(body), []
    for field in _ASSIGNMENTS:
        if isinstance(body.get(field), dict):
            dropped += [name for name in body[field] if name not in published.parameters]
            body[field] = {n: v for n, v in body[field].items() if n in published.parameters}
    return body, dropped


def _data_path(workspace, name, value):
    if not isinstance(value, dict) or not isinstance(value.get("DataStoreName"), str) \
            or not isinstance(value.get("RelativePath"), str):
        raise RequestError(f"Data path parameter '{name}' takes {{\"DataStoreName\": ..., \"RelativePath\": ...}} "
                           f"(two strings); got {value!r}.")
    try:
        return DataPath(Datastore(workspace, value["DataStoreName"]), value["RelativePath"])
    except UserError as e:
        raise RequestError(f"Data path parameter '{name}': {e}") from None


def _dataset(workspace, name, value):
    try:
        if isinstance(value, dict) and isinstance(value.get("SavedDataSetReference"), dict):
            return get_dataset_by_id(workspace, value["SavedDataSetReference"]["Id"])
        if isinstance(value, dict) and isinstance(value.get("DataSetReference"), dict):
            ref = value["DataSetReference"]
            return get_dataset(workspace, ref["Name"], ref.get("Version") or "latest")
    except (UserError, KeyError) as e:
        raise RequestError(f"Dataset parameter '{name}': {e}") from None
    raise RequestError(f"Dataset parameter '{name}' takes {{\"SavedDataSetReference\": {{\"Id\": ...}}}} or "
                       f"{{\"DataSetReference\": {{\"Name\": ..., \"Version\": ...}}}}; got {value!r}.")


def trigger(workspace, kind, target_id, body: dict, triggered_by: str = "rest",
            continue_on_step_failure: bool | None = None) -> str:
    """Check the REST body and queue the run of the published pipeline (or the endpoint's version); returns
    its id at once. A server's dispatcher starts it when a slot is free (``start_queued``), in a process of
    its own. ``continue_on_step_failure`` (a schedule's) overrides the published pipeline's when given."""
    published, experiment_name, _ = resolve_trigger(workspace, kind, target_id, body)
    store = workspace._store
    store.ensure_experiment(experiment_name)
    run_id = new_id("run")
    details = {"submitted_by": submitted_by(), "published_pipeline_id": published.id,
               "properties": {"azureml.pipelineid": published.id, TRIGGERED_BY: triggered_by}}
    if kind == "endpoint":
        details["pipeline_endpoint_id"] = str(target_id)
    store.queue_run(dict(id=run_id, experiment=experiment_name, kind="pipeline", parent_id=None,
                         name=experiment_name, details=details),
                    {"kind": kind, "target_id": str(target_id), "pipeline_id": published.id, "body": body,
                     "triggered_by": triggered_by, "continue_on_step_failure": continue_on_step_failure})
    return run_id


def queue_document(workspace, doc, experiment_name, parameters, triggered_by: str = "rest") -> str:
    """Queue a run of a recorded pipeline document (a re-run of a run that was not published), to be started
    by a server's dispatcher as a trigger is; returns its id at once."""
    Experiment(workspace, experiment_name)  # its name checked now
    workspace._store.ensure_experiment(experiment_name)
    run_id = new_id("run")
    details = {"submitted_by": submitted_by(), "properties": {TRIGGERED_BY: triggered_by}}
    workspace._store.queue_run(dict(id=run_id, experiment=experiment_name, kind="pipeline", parent_id=None,
                                    name=experiment_name, details=details),
                               {"kind": "document", "document": doc, "experiment": experiment_name,
                                "parameters": parameters or {}, "triggered_by": triggered_by})
    return run_id


def _repeatable_parameters(details) -> dict:
    """The parameter values a run recorded that can be given again: a masked secret or a data reference is
    left out, so it takes its default."""
    return {k: v for k, v in (details.get("parameters") or {}).items()
            if isinstance(v, (str, int, float, bool)) and v != MASK}


def queue_rerun(workspace, run_id) -> str:
    """Queue a pipeline run (or a step's pipeline run) again, in its experiment with its parameters: a
    published pipeline's run triggers that pipeline again, any other the document it recorded."""
    run = Run.get(workspace, run_id)
    row = (run.parent or run)._row
    if row["kind"] != "pipeline":
        raise RequestError(f"Run {row['id']} is not a pipeline run; only pipeline runs can be re-run.")
    details = row["details"]
    parameters = _repeatable_parameters(details)
    published_id = (details.get("properties") or {}).get("azureml.pipelineid")
    if published_id:
        body = {"ExperimentName": row["experiment"], "ParameterAssignments": parameters}
        return trigger(workspace, "pipeline", published_id, body)
    if not details.get("pipeline"):
        raise RequestError(f"Run {row['id']} recorded no pipeline document, so it cannot be re-run.")
    return queue_document(workspace, details["pipeline"], row["experiment"], parameters)


def submit_again(run):
    """Submit the pipeline a pipeline run (or a step's pipeline run) ran, again in this process, in its
    experiment with its parameters (as ``queue_rerun``, without the queue): the new ``PipelineRun``."""
    row = (run.parent or run)._row
    details = row["details"]
    if row["kind"] != "pipeline" or not details.get("pipeline"):
        raise UserError(f"Run {row['id']} is not a pipeline run that recorded its pipeline, so it cannot be "
                        "submitted again.")
    return _submit_document(run.experiment.workspace, details["pipeline"], row["experiment"],
                            _repeatable_parameters(details) or None, False)


def start_queued(workspace, run_id):
    """Plan and start a queued run a server has claimed, in this process; the run, or None when it was
    canceled meanwhile. What makes it fail now (the pipeline disabled since) is recorded on the run."""
    store = workspace._store
    request = store.queued_request(run_id)
    if request is None:
        raise NotFoundError(f"No queued run with id '{run_id}'.")
    try:
        if request["kind"] == "document":
            run = _submit_document(workspace, request["document"], request["experiment"],
                                   request["parameters"] or None, False,
                                   properties={TRIGGERED_BY: request["triggered_by"]}, queued_id=run_id)
            if run is None:
                store.mark_run(run_id, Status.CANCELED, "Canceled before it started.")
            return run
        _, experiment_name, values = resolve_trigger(workspace, request["kind"], request["target_id"],
                                                     request["body"])
        # the version queued, even if the endpoint's default has changed since
        published = PublishedPipeline.get(workspace, request["pipeline_id"])
        run = published._run(workspace, experiment_name, values, triggered_by=request["triggered_by"],
                             continue_on_step_failure=request["continue_on_step_failure"], queued_id=run_id)
    except UserError as e:
        store.mark_run(run_id, Status.FAILED, str(e))
        raise
    if run is None:
        store.mark_run(run_id, Status.CANCELED, "Canceled before it started.")
    return run
