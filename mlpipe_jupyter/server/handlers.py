"""The REST API's handlers. Each one is behind Jupyter Server's authentication; the work (which reads the
store or starts a process) runs in a worker thread, so a slow call never stalls the server.

Errors are ``{"error": {"code", "message"}}``: a bad body or parameter 400, an unknown id 404, a disabled
pipeline 409, and what Jupyter Server answers a request without a valid token (401 or 403)."""
from __future__ import annotations

import asyncio
import datetime
import json
import threading
from http import HTTPStatus

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler

from mlpipe_jupyter.errors import ConflictError, NotFoundError, RunNotFoundError, UserError
from mlpipe_jupyter.sdk.published import (TRIGGERED_BY, PipelineEndpoint, PublishedPipeline, queue_rerun, trigger,
                                          without_unknown_parameters)
from mlpipe_jupyter.sdk.run import PipelineRun, Run
from mlpipe_jupyter.sdk.schedule import Schedule
from mlpipe_jupyter.sdk.workspace import Workspace
from mlpipe_jupyter.server.openapi import OPENAPI
from mlpipe_jupyter.status import FINAL_STATUSES
from mlpipe_jupyter.tracking.follower import LogTail, log_path

FOLLOW_POLL_SECONDS = 0.2
_workspaces: dict[str, Workspace] = {}
_workspaces_lock = threading.Lock()


class ApiError(tornado.web.HTTPError):
    """An HTTP error whose message is the one paragraph the client reads."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message.replace("%", "%%"))
        self.message = message


def _status_of(error: UserError) -> int:
    if isinstance(error, (NotFoundError, RunNotFoundError)):
        return 404
    if isinstance(error, ConflictError):
        return 409
    return 400


class _Handler(APIHandler):
    """What every handler shares: the workspace, JSON errors, work off the event loop.

    Each method is also checked by Jupyter Server's authorizer on the resource ``mlpipe``: reading is
    "read", cancelling or enabling "write", and starting a run (trigger, re-run) "execute", as running code
    in a kernel is; so a deployment's authorizer can let a user watch runs without starting them."""

    auth_resource = "mlpipe"

    def workspace(self) -> Workspace:
        path = self.settings["mlpipe_workspace"]
        with _workspaces_lock:
            if path not in _workspaces:
                try:
                    _workspaces[path] = Workspace.from_config(path)
                except UserError as e:
                    raise ApiError(503, f"This server has no workspace: {e} Start it in a workspace, or set "
                                        "c.MlpipeServer.workspace (mlpipe serve --workspace PATH).") from None
            return _workspaces[path]

    async def in_thread(self, fn, *args):
        """``fn(workspace, *args)`` in a worker thread; a UserError becomes its HTTP error."""
        def work():
            return fn(self.workspace(), *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except UserError as e:
            raise ApiError(_status_of(e), str(e)) from None

    def send_error_json(self, status: int, message: str) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        phrase = HTTPStatus(status).phrase.replace(" ", "") if status in HTTPStatus._value2member_map_ else "Error"
        self.finish(json.dumps({"error": {"code": phrase, "message": message}}))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            return self.send_error_json(status_code, exc.message)
        message = getattr(exc, "log_message", None) or self._reason
        if status_code >= 500 and not isinstance(exc, tornado.web.HTTPError):
            message = f"Internal error: {type(exc).__name__}: {exc}"
        if status_code == 403 and getattr(self, "current_user", None) and str(message).startswith("User is not"):
            return self.send_error_json(status_code, f"{message} (Jupyter Server's authorizer refused it.)")
        if status_code in (401, 403):  # Jupyter Server's answer, with what a REST client has to do
            message = (f"{message}: not authenticated. Send the server's token as the header "
                       "'Authorization: token <token>' (mlpipe serve prints it and writes it to .mlpipe/server.token).")
        return self.send_error_json(status_code, message)

    def send_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as e:
            raise ApiError(400, f"The request body is not valid JSON: {e}.") from None
        if not isinstance(body, dict):
            raise ApiError(400, f"The request body must be a JSON object; got {type(body).__name__}.")
        return body


# -- published pipelines and endpoints ---------------------------------------------------------------------
def _pipeline_json(p: PublishedPipeline) -> dict:
    return {"Id": p.id, "Name": p.name, "Description": p.description, "Version": p.version, "Status": p.status,
            "Endpoint": p.endpoint, "Parameters": p.parameters}


def _endpoint_json(e: PipelineEndpoint) -> dict:
    return {"Id": e.id, "Name": e.name, "Description": e.description, "Status": e.status,
            "DefaultVersion": e.default_version, "Endpoint": e.endpoint}


class PipelinesHandler(_Handler):
    """The active ones, as ``PublishedPipeline.list``; ``?active_only=false`` adds the disabled ones."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        active_only = self.get_query_argument("active_only", "true").lower() not in ("false", "0", "no")
        self.send_json({"Value": await self.in_thread(
            lambda ws: [_pipeline_json(p) for p in PublishedPipeline.list(ws, active_only=active_only)])})


class EndpointsHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.send_json({"Value": await self.in_thread(lambda ws: [_endpoint_json(e) for e in PipelineEndpoint.list(ws)])})


class _TriggerHandler(_Handler):
    kind = ""
    id_field = ""

    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, target_id):
        await self.trigger(target_id, self.json_body())

    async def trigger(self, target_id, body):
        ignored = []
        if self.settings.get("mlpipe_unknown_parameters") == "ignore":
            body, ignored = await self.in_thread(without_unknown_parameters, self.kind, target_id, body)
        run_id = await self.in_thread(trigger, self.kind, target_id, body)
        answer = {"Id": run_id, "Status": "Queued", "ExperimentName": body.get("ExperimentName"),
                  self.id_field: target_id, "RunUrl": self.request.full_url().split("/mlpipe/api/")[0]
                  + f"/mlpipe/api/runs/{run_id}"}
        if ignored:
            answer["IgnoredParameters"] = ignored
        self.send_json(answer)


class PipelineTriggerHandler(_TriggerHandler):
    kind, id_field = "pipeline", "PipelineId"


class EndpointTriggerHandler(_TriggerHandler):
    """``endpoints/Id/{id}[/{version}]`` (Azure's shape; ``endpoints/{id}`` too): a version in the path is the
    body's ``PipelineVersion``."""
    kind, id_field = "endpoint", "PipelineEndpointId"

    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, target_id, version=None):
        body = self.json_body()
        await self.trigger(target_id, body if version is None else _with_version(body, version))


class EndpointByNameHandler(EndpointTriggerHandler):
    """``endpoints/Name?name=N[&pipelineVersion=V]``, Azure's URL for an endpoint by name."""

    @tornado.web.authenticated
    @authorized("execute")
    async def post(self):
        name = self.get_query_argument("name", "")
        if not name:
            raise ApiError(400, "Name the pipeline endpoint: endpoints/Name?name=NAME[&pipelineVersion=V].")
        endpoint = await self.in_thread(lambda ws: PipelineEndpoint.get(ws, name=name))
        version, body = self.get_query_argument("pipelineVersion", None), self.json_body()
        await self.trigger(endpoint.id, body if version is None else _with_version(body, version))


def _with_version(body: dict, version: str) -> dict:
    given = body.get("PipelineVersion")
    if given is not None and str(given) != version:
        raise ApiError(400, f"The URL asks for version {version} of the pipeline endpoint and the body's "
                            f"PipelineVersion for {given}; give one of them.")
    return {**body, "PipelineVersion": version}


# -- runs ------------------------------------------------------------------------------------------------------
def _outputs(run) -> dict:
    outputs = run.get_outputs() if hasattr(run, "get_outputs") else {}
    return {name: str(o.get_port_data_reference().path) for name, o in outputs.items()}


def _run_json(ws, run_id) -> dict:
    run = Run.get(ws, run_id)
    row = run._row
    details = run.get_details()
    data = {"Id": run.id, "ExperimentName": row["experiment"], "Name": row["name"], "Status": row["status"],
            "StartTimeUtc": details["startTimeUtc"], "EndTimeUtc": details["endTimeUtc"],
            "Error": row["error"], "TriggeredBy": _triggered_by(row),
            "Parameters": row["details"].get("parameters") or {},
            "Metrics": run.get_metrics(), "Outputs": _outputs(run)}
    if isinstance(run, PipelineRun):
        data["Steps"] = [{"Id": s.id, "Name": s.name, "Status": s.get_status(), "Reused": s.reused,
                          "Error": s._row["error"], "Traceback": (s._row["details"] or {}).get("traceback"),
                          "Metrics": s.get_metrics(), "Outputs": _outputs(s)}
                         for s in run.steps_in_plan_order()]
    return data


def _step_row(ws, run_id, step) -> dict:
    run = Run.get(ws, run_id)
    if not isinstance(run, PipelineRun):
        raise ApiError(400, f"Run {run_id} is not a pipeline run; it has no steps.")
    for row in ws._store.child_runs(run.id):
        if step in (row["name"], row["id"]):
            return row
    names = ", ".join(r["name"] for r in ws._store.child_runs(run.id)) or "none yet"
    raise ApiError(404, f"Run {run_id} has no step '{step}' (its steps: {names}).")


def _cancel(ws, run_id) -> dict:
    run = Run.get(ws, run_id)
    top = run.parent or run
    if top.get_status() not in FINAL_STATUSES:
        top.cancel()
    return {"Id": top.id, "Status": top.get_status()}


class RunHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id):
        self.send_json(await self.in_thread(_run_json, run_id))


class CancelHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id):
        self.send_json(await self.in_thread(_cancel, run_id))


class StepLogHandler(_Handler):
    """A step's log as text; ``?follow=1`` streams it until the step ends."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id, step):
        follow = self.get_query_argument("follow", "0").lower() in ("1", "true", "yes")
        row = await self.in_thread(_step_row, run_id, step)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        tail = LogTail()
        while True:
            row = await self.in_thread(lambda ws: ws._store.get_run(row["id"]))
            final = not follow or row["status"] in FINAL_STATUSES
            path = await self.in_thread(lambda ws: log_path(ws._store, row))
            for data in await self.in_thread(lambda ws: list(tail.read(path, final))):
                self.write(data)
            await self.flush()
            if final:
                break
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
        self.finish()


# -- experiments, run lists, re-runs and published pipelines' status (the lab's runs sidebar) -------------------
def _iso_z(ts) -> str | None:
    return None if ts is None else _utc(ts).replace("+00:00", "Z")


def _triggered_by(row) -> str:
    """What started a run: its property (sdk, rest, schedule:<id>), else the SDK (a notebook or a script)."""
    return (row["details"].get("properties") or {}).get(TRIGGERED_BY) or "sdk"


def _run_summary(row) -> dict:
    return {"Id": row["id"], "ExperimentName": row["experiment"], "Name": row["name"], "Status": row["status"],
            "StartTimeUtc": _iso_z(row["started"]), "EndTimeUtc": _iso_z(row["ended"]),
            "TriggeredBy": _triggered_by(row), "Kind": row["kind"]}


def _experiments(ws) -> list:
    """Each experiment with its run count and latest run, the most recently active first."""
    found = []
    for name in ws._store.experiment_names():
        rows = ws._store.list_runs(name)
        found.append({"Name": name, "RunCount": len(rows), "LatestRun": _run_summary(rows[0]) if rows else None,
                      "_created": rows[0]["created"] if rows else 0})
    found.sort(key=lambda e: e.pop("_created"), reverse=True)
    return found


def _runs(ws, experiment, limit) -> list:
    if experiment is not None and experiment not in ws._store.experiment_names():
        raise NotFoundError(f"No experiment named '{experiment}' in this workspace.")
    return [_run_summary(row) for row in ws._store.list_runs(experiment, limit=limit)]


class ExperimentsHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.send_json({"Value": await self.in_thread(_experiments)})


class RunsHandler(_Handler):
    """``?experiment=NAME`` (default: all) and ``?limit=N`` (default 50), latest first."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        experiment = self.get_query_argument("experiment", None) or None
        limit = self.get_query_argument("limit", "50")
        if not limit.isdigit() or int(limit) < 1:
            raise ApiError(400, f"'limit' must be a whole number above 0; got {limit!r}.")
        self.send_json({"Value": await self.in_thread(_runs, experiment, int(limit))})


class RerunHandler(_Handler):
    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, run_id):
        self.send_json({"Id": await self.in_thread(queue_rerun, run_id), "Status": "Queued"})


# -- schedules -------------------------------------------------------------------------------------------------
def _utc(ts) -> str | None:
    return None if ts is None else datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat()


def _schedule_json(s: Schedule) -> dict:
    rec = s.recurrence
    recurrence = None if rec is None else {
        "Frequency": rec.frequency, "Interval": rec.interval, "StartTime": rec.to_dict()["start_time"],
        "TimeZone": rec.to_dict()["time_zone"], "Hours": rec.hours, "Minutes": rec.minutes,
        "WeekDays": rec.week_days, "TimeOfDay": rec.time_of_day}
    return {"Id": s.id, "Name": s.name, "Status": s.status, "PipelineId": s.pipeline_id,
            "PipelineEndpointId": s.pipeline_endpoint_id, "ExperimentName": s.experiment_name,
            "Recurrence": recurrence, "DataStoreName": s.datastore_name, "PathOnDatastore": s.path_on_datastore,
            "PollingInterval": s.polling_interval, "LastRunId": s.last_run_id,
            "NextRunTimeUtc": _utc(s.next_run_time) if s.status == "Active" else None, "LastError": s.last_error}


class SchedulesHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.send_json({"Value": await self.in_thread(
            lambda ws: [_schedule_json(s) for s in Schedule.list(ws, active_only=False)])})


def _switch(ws, kind, target_id, action) -> dict:
    """Enable or disable a published pipeline or a schedule; its JSON as it is now."""
    cls, to_json = (PublishedPipeline, _pipeline_json) if kind == "pipelines" else (Schedule, _schedule_json)
    target = cls.get(ws, target_id)
    getattr(target, action)()  # the route allows only enable and disable
    return to_json(cls.get(ws, target_id))


class SwitchHandler(_Handler):
    """``pipelines/{id}/enable|disable`` and ``schedules/{id}/enable|disable``."""

    @tornado.web.authenticated
    @authorized
    async def post(self, kind, target_id, action):
        self.send_json(await self.in_thread(_switch, kind, target_id, action))


class OpenApiHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.send_json(OPENAPI)


_ID = r"([^/]+)"
HANDLERS = [
    ("openapi.json", OpenApiHandler),
    ("pipelines", PipelinesHandler),
    (f"pipelines/{_ID}", PipelineTriggerHandler),
    ("endpoints", EndpointsHandler),
    ("endpoints/Name", EndpointByNameHandler),
    (f"endpoints/Id/{_ID}", EndpointTriggerHandler),
    (f"endpoints/Id/{_ID}/{_ID}", EndpointTriggerHandler),
    (f"endpoints/{_ID}", EndpointTriggerHandler),
    (f"runs/{_ID}", RunHandler),
    (f"runs/{_ID}/cancel", CancelHandler),
    (f"runs/{_ID}/steps/{_ID}/log", StepLogHandler),
    ("experiments", ExperimentsHandler),
    ("runs", RunsHandler),
    (f"runs/{_ID}/rerun", RerunHandler),
    (f"(pipelines|schedules)/{_ID}/(enable|disable)", SwitchHandler),
    ("schedules", SchedulesHandler),
]
