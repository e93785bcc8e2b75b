"""Authentication, the OpenAPI document and bad requests, on both kinds of server."""
import pytest

ROUTES = ["/mlpipe/api/openapi.json", "/mlpipe/api/pipelines", "/mlpipe/api/pipelines/{id}", "/mlpipe/api/endpoints",
          "/mlpipe/api/endpoints/{id}", "/mlpipe/api/runs/{id}", "/mlpipe/api/runs/{id}/cancel",
          "/mlpipe/api/runs/{id}/steps/{step}/log"]
ROUTES += ["/mlpipe/api/schedules", "/mlpipe/api/schedules/{id}/enable", "/mlpipe/api/schedules/{id}/disable"]
ROUTES += ["/mlpipe/api/endpoints/Id/{id}", "/mlpipe/api/endpoints/Id/{id}/{version}", "/mlpipe/api/endpoints/Name"]
ROUTES += ["/mlpipe/api/experiments", "/mlpipe/api/runs", "/mlpipe/api/runs/{id}/rerun",
           "/mlpipe/api/pipelines/{id}/enable", "/mlpipe/api/pipelines/{id}/disable"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
@pytest.mark.parametrize("method, path", [("GET", "openapi.json"), ("GET", "pipelines"), ("POST", "pipelines/x"),
                                          ("GET", "runs/x"), ("POST", "runs/x/cancel")])
def test_nothing_is_served_without_the_token(server, token, method, path):
    answer = server.request(method, path, token=token, json={"ExperimentName": "e"})
    assert answer.status_code in (401, 403)
    error = answer.json()["error"]
    assert error["code"] in ("Unauthorized", "Forbidden") and "token" in error["message"]


def test_openapi_document_describes_every_route(server):
    answer = server.get("openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"].startswith("3.")
    assert sorted(doc["paths"]) == sorted(ROUTES)
    assert doc["paths"]["/mlpipe/api/pipelines/{id}"]["post"]["responses"].keys() >= {"200", "400", "404", "409"}


def test_malformed_json_is_400(server):
    answer = server.post("pipelines/anything", data="{not json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert "not valid JSON" in answer.json()["error"]["message"]
    answer = server.post("pipelines/anything", json=["a", "list"])
    assert answer.status_code == 400 and "JSON object" in answer.json()["error"]["message"]


@pytest.mark.parametrize("kind", ["pipelines", "endpoints"])
def test_unknown_pipeline_or_endpoint_is_404(server, kind):
    answer = server.post(f"{kind}/no-such-id", json={"ExperimentName": "e"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFound"
    assert "no-such-id" in answer.json()["error"]["message"]


def test_unknown_run_and_step_are_404(server):
    answer = server.get("runs/no-such-run")
    assert answer.status_code == 404 and "no-such-run" in answer.json()["error"]["message"]
    assert server.post("runs/no-such-run/cancel").status_code == 404
    assert server.get("runs/no-such-run/steps/s/log").status_code == 404


def test_empty_workspace_lists_nothing(server):
    assert server.get("pipelines").json() == {"Value": []}
    assert server.get("endpoints").json() == {"Value": []}
