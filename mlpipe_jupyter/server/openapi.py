"""The REST API described as an OpenAPI 3 document (served at ``/mlpipe/api/openapi.json``), kept as data
beside the handlers it describes."""
from __future__ import annotations

from mlpipe_jupyter.version import __version__


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(schema_ref, description="OK"):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _path_id(name, description):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


_AUTH_ERRORS = {"401": _error("No valid token (Jupyter Server's authentication)."),
                "403": _error("No valid token, or not allowed (Jupyter Server's authentication).")}


def _trigger(what, id_description):
    return {"post": {
        "summary": f"Run a {what} (Azure ML's REST call to a published pipeline endpoint); answers at once.",
        "parameters": [_path_id("id", id_description)],
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TriggerBody"}}}},
        "responses": {"200": _ok("TriggeredRun", "The run was recorded, Queued: the server starts it in a process "
                                                 "of its own when fewer than its max_concurrent_runs run."),
                      "400": _error("Malformed JSON, an unknown field, or an unknown or ill-typed parameter."),
                      "404": _error(f"No {what} with this id."),
                      "409": _error(f"The {what} is disabled."), **_AUTH_ERRORS}}}


def _with_path_version(route):
    route["post"]["parameters"].append(_path_id("version", "the version to run (else the endpoint's default); "
                                                           "the body's PipelineVersion, if any, must agree"))
    return route


def _by_name(route):
    route["post"]["summary"] = ("Run a pipeline endpoint named in the query (Azure ML's URL by name); answers at "
                                "once.")
    route["post"]["parameters"] = [
        {"name": "name", "in": "query", "required": True, "schema": {"type": "string"},
         "description": "the pipeline endpoint's name"},
        {"name": "pipelineVersion", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "the version to run (else the endpoint's default)"}]
    route["post"]["responses"]["404"] = _error("No pipeline endpoint of this name.")
    return route


def _schedule_status(verb, effect):
    return {"post": {"summary": f"{verb} a schedule ({effect}); answers with the schedule.",
                     "parameters": [_path_id("id", "the schedule's id")],
                     "responses": {"200": _ok("Schedule"), "404": _error("No schedule with this id."),
                                   **_AUTH_ERRORS}}}


def _pipeline_status(verb, effect):
    return {"post": {"summary": f"{verb} a published pipeline ({effect}); answers with the pipeline.",
                     "parameters": [_path_id("id", "the published pipeline's id")],
                     "responses": {"200": _ok("PublishedPipeline"), "404": _error("No published pipeline with this id."),
                                   **_AUTH_ERRORS}}}


_STRING_MAP = {"type": "object", "additionalProperties": True}

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "mlpipe-jupyter REST API", "version": __version__,
             "description": "Run published pipelines and pipeline endpoints and watch their runs, as Azure ML "
                            "SDK v1's REST endpoints do. Authenticate as Jupyter Server does: "
                            "`Authorization: token <token>`."},
    "components": {
        "securitySchemes": {"jupyterToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                             "description": "`token <the server's token>`"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "TriggerBody": {"type": "object", "required": ["ExperimentName"], "properties": {
                "ExperimentName": {"type": "string"},
                "ParameterAssignments": {**_STRING_MAP, "description": "parameter name -> value"},
                "DataPathAssignments": {**_STRING_MAP,
                                        "description": "parameter name -> {DataStoreName, RelativePath}"},
                "DataSetDefinitionValueAssignments": {
                    **_STRING_MAP, "description": "parameter name -> {SavedDataSetReference: {Id}} or "
                                                  "{DataSetReference: {Name, Version}}"},
                "PipelineVersion": {"type": "string", "description": "an endpoint's version (default: its default)"},
                "RunSource": {"type": "string"}, "Description": {"type": "string"}, "Tags": _STRING_MAP}},
            "TriggeredRun": {"type": "object", "required": ["Id", "Status"], "properties": {
                "Id": {"type": "string"}, "Status": {"type": "string", "enum": ["Queued"]},
                "ExperimentName": {"type": "string"}, "PipelineId": {"type": "string"},
                "PipelineEndpointId": {"type": "string"}, "RunUrl": {"type": "string"},
                "IgnoredParameters": {"type": "array", "items": {"type": "string"}, "description":
                                      "names the pipeline lacks, dropped (only by a server whose unknown_parameters "
                                      "is 'ignore'; otherwise they answer 400)"}}},
            "PublishedPipeline": {"type": "object", "properties": {
                "Id": {"type": "string"}, "Name": {"type": "string"}, "Description": {"type": "string", "nullable": True},
                "Version": {"type": "string", "nullable": True}, "Status": {"type": "string"},
                "Endpoint": {"type": "string"}, "Parameters": _STRING_MAP}},
            "PipelineEndpoint": {"type": "object", "properties": {
                "Id": {"type": "string"}, "Name": {"type": "string"}, "Description": {"type": "string", "nullable": True},
                "Status": {"type": "string"}, "DefaultVersion": {"type": "string"}, "Endpoint": {"type": "string"}}},
            "PublishedPipelineList": {"type": "object", "properties": {
                "Value": {"type": "array", "items": {"$ref": "#/components/schemas/PublishedPipeline"}}}},
            "PipelineEndpointList": {"type": "object", "properties": {
                "Value": {"type": "array", "items": {"$ref": "#/components/schemas/PipelineEndpoint"}}}},
            "StepRun": {"type": "object", "properties": {
                "Id": {"type": "string"}, "Name": {"type": "string"}, "Status": {"type": "string"},
                "Reused": {"type": "boolean"}, "Error": {"type": "string", "nullable": True},
                "Metrics": _STRING_MAP, "Outputs": {**_STRING_MAP, "description": "output name -> path"}}},
            "Run": {"type": "object", "properties": {
                "Id": {"type": "string"}, "ExperimentName": {"type": "string"}, "Name": {"type": "string"},
                "Status": {"type": "string"}, "StartTimeUtc": {"type": "string", "nullable": True},
                "EndTimeUtc": {"type": "string", "nullable": True}, "Error": {"type": "string", "nullable": True},
                "TriggeredBy": {"type": "string", "description": "sdk, rest or schedule:<schedule id>"},
                "Parameters": _STRING_MAP, "Metrics": _STRING_MAP, "Outputs": _STRING_MAP,
                "Steps": {"type": "array", "items": {"$ref": "#/components/schemas/StepRun"}}}},
            "CancelResult": {"type": "object", "properties": {"Id": {"type": "string"}, "Status": {"type": "string"}}},
            "RunSummary": {"type": "object", "properties": {
                "Id": {"type": "string"}, "ExperimentName": {"type": "string"}, "Name": {"type": "string"},
                "Status": {"type": "string"}, "StartTimeUtc": {"type": "string", "nullable": True},
                "EndTimeUtc": {"type": "string", "nullable": True},
                "TriggeredBy": {"type": "string", "description": "sdk, rest or schedule:<schedule id>"},
                "Kind": {"type": "string", "enum": ["pipeline", "script"]}}},
            "RunList": {"type": "object", "properties": {
                "Value": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}}}},
            "Experiment": {"type": "object", "properties": {
                "Name": {"type": "string"}, "RunCount": {"type": "integer"},
                "LatestRun": {"allOf": [{"$ref": "#/components/schemas/RunSummary"}], "nullable": True}}},
            "ExperimentList": {"type": "object", "properties": {
                "Value": {"type": "array", "items": {"$ref": "#/components/schemas/Experiment"}}}},
            "ScheduleRecurrence": {"type": "object", "properties": {
                "Frequency": {"type": "string", "enum": ["Minute", "Hour", "Day", "Week", "Month"]},
                "Interval": {"type": "integer"}, "StartTime": {"type": "string", "nullable": True},
                "TimeZone": {"type": "string", "nullable": True},
                "Hours": {"type": "array", "items": {"type": "integer"}, "nullable": True},
                "Minutes": {"type": "array", "items": {"type": "integer"}, "nullable": True},
                "WeekDays": {"type": "array", "items": {"type": "string"}, "nullable": True},
                "TimeOfDay": {"type": "string", "nullable": True}}},
            "Schedule": {"type": "object", "properties": {
                "Id": {"type": "string"}, "Name": {"type": "string"},
                "Status": {"type": "string", "enum": ["Active", "Disabled"]},
                "PipelineId": {"type": "string", "nullable": True},
                "PipelineEndpointId": {"type": "string", "nullable": True}, "ExperimentName": {"type": "string"},
                "Recurrence": {"allOf": [{"$ref": "#/components/schemas/ScheduleRecurrence"}], "nullable": True,
                               "description": "null for a schedule that watches a datastore"},
                "DataStoreName": {"type": "string", "nullable": True},
                "PathOnDatastore": {"type": "string", "nullable": True},
                "PollingInterval": {"type": "integer", "nullable": True, "description": "minutes"},
                "LastRunId": {"type": "string", "nullable": True},
                "NextRunTimeUtc": {"type": "string", "nullable": True,
                                   "description": "ISO 8601; a datastore schedule's next poll; null when disabled"},
                "LastError": {"type": "string", "nullable": True,
                              "description": "why the last firing started no run (a disabled pipeline, ...)"}}},
            "ScheduleList": {"type": "object", "properties": {
                "Value": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}}}},
        },
    },
    "security": [{"jupyterToken": []}],
    "paths": {
        "/mlpipe/api/openapi.json": {"get": {"summary": "This document.",
                                             "responses": {"200": {"description": "OpenAPI 3 document"}, **_AUTH_ERRORS}}},
        "/mlpipe/api/pipelines": {"get": {"summary": "The active published pipelines, newest first.",
                                          "parameters": [{"name": "active_only", "in": "query", "required": False,
                                                          "schema": {"type": "boolean", "default": True},
                                                          "description": "false: the disabled ones too"}],
                                          "responses": {"200": _ok("PublishedPipelineList"), **_AUTH_ERRORS}}},
        "/mlpipe/api/pipelines/{id}": _trigger("published pipeline", "the published pipeline's id"),
        "/mlpipe/api/endpoints": {"get": {"summary": "The active pipeline endpoints.",
                                          "responses": {"200": _ok("PipelineEndpointList"), **_AUTH_ERRORS}}},
        "/mlpipe/api/endpoints/{id}": _trigger("pipeline endpoint", "the pipeline endpoint's id"),
        "/mlpipe/api/endpoints/Id/{id}": _trigger("pipeline endpoint", "the pipeline endpoint's id (the URL of its "
                                                                       "Endpoint property)"),
        "/mlpipe/api/endpoints/Id/{id}/{version}": _with_path_version(
            _trigger("pipeline endpoint version", "the pipeline endpoint's id")),
        "/mlpipe/api/endpoints/Name": _by_name(_trigger("pipeline endpoint", "")),
        "/mlpipe/api/pipelines/{id}/enable": _pipeline_status("Enable", "it can be run again"),
        "/mlpipe/api/pipelines/{id}/disable": _pipeline_status("Disable", "runs of it are refused with 409"),
        "/mlpipe/api/experiments": {"get": {
            "summary": "The experiments, each with its run count and latest run, the most recently active first.",
            "responses": {"200": _ok("ExperimentList"), **_AUTH_ERRORS}}},
        "/mlpipe/api/runs": {"get": {
            "summary": "Top-level runs (pipeline and script runs), latest first.",
            "parameters": [{"name": "experiment", "in": "query", "required": False, "schema": {"type": "string"},
                            "description": "only this experiment's runs"},
                           {"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "default": 50}}],
            "responses": {"200": _ok("RunList"), "400": _error("'limit' is not a whole number above 0."),
                          "404": _error("No experiment of this name."), **_AUTH_ERRORS}}},
        "/mlpipe/api/runs/{id}/rerun": {"post": {
            "summary": "Run a pipeline run again, in its experiment with its parameters: a published pipeline's run "
                       "triggers the pipeline again, any other resubmits the pipeline the run recorded.",
            "parameters": [_path_id("id", "the run's id (a step run's id re-runs its pipeline run)")],
            "responses": {"200": _ok("CancelResult", "The new run's Id and Status."),
                          "400": _error("The run is not a pipeline run."), "404": _error("No run with this id."),
                          "409": _error("The run's published pipeline is disabled."), **_AUTH_ERRORS}}},
        "/mlpipe/api/runs/{id}": {"get": {
            "summary": "A run: its status, and for a pipeline run its steps with their statuses, metrics and outputs.",
            "parameters": [_path_id("id", "the run's id")],
            "responses": {"200": _ok("Run"), "404": _error("No run with this id."), **_AUTH_ERRORS}}},
        "/mlpipe/api/runs/{id}/cancel": {"post": {
            "summary": "Cancel a run (the pipeline run it belongs to); answers with its status at once.",
            "parameters": [_path_id("id", "the run's id")],
            "responses": {"200": _ok("CancelResult"), "404": _error("No run with this id."), **_AUTH_ERRORS}}},
        "/mlpipe/api/runs/{id}/steps/{step}/log": {"get": {
            "summary": "A step's log as text; with follow=1 it streams until the step ends.",
            "parameters": [_path_id("id", "the pipeline run's id"),
                           _path_id("step", "the step's name (or its step run id)"),
                           {"name": "follow", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": ["0", "1"]}}],
            "responses": {"200": {"description": "The log", "content": {"text/plain": {"schema": {"type": "string"}}}},
                          "400": _error("The run is not a pipeline run."),
                          "404": _error("No run with this id, or no step of this name."), **_AUTH_ERRORS}}},
        "/mlpipe/api/schedules": {"get": {
            "summary": "Every schedule, active and disabled, newest first; a running server fires the active ones.",
            "responses": {"200": _ok("ScheduleList"), **_AUTH_ERRORS}}},
        "/mlpipe/api/schedules/{id}/enable": _schedule_status("Enable", "from the next slot after now"),
        "/mlpipe/api/schedules/{id}/disable": _schedule_status("Disable", "no more runs until it is enabled"),
    },
}
