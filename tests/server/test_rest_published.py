"""Published pipelines and endpoints run over HTTP, on both kinds of server: publish from the SDK, trigger
with parameters, poll the run, read metrics and a step's log (whole or followed), cancel, and the 400,
404 and 409 answers."""
import textwrap
import time

import pytest
import requests

from mlpipe_jupyter import Pipeline, PipelineParameter, PythonScriptStep, Run
from mlpipe_jupyter.sdk.published import PipelineEndpoint, PublishedPipeline

SCRIPTS = {
    "count.py": """
        import argparse
        from azureml.core import Run
        p = argparse.ArgumentParser()
        p.add_argument("--n", type=int)
        p.add_argument("--word")
        a = p.parse_args()
        print("counting", a.n, a.word)
        Run.get_context().log("result", a.n * 10)
        Run.get_context().log("word", a.word)
    """,
    "slow.py": """
        import sys, time
        print("first", flush=True)
        time.sleep(float(sys.argv[1]))
        print("second", flush=True)
    """,
}
FINAL = {"Completed", "Failed", "Canceled"}


def publish(workspace, script, name, arguments):
    src = workspace.path / "src"
    src.mkdir(exist_ok=True)
    for file, text in SCRIPTS.items():
        (src / file).write_text(textwrap.dedent(text).lstrip())
    step = PythonScriptStep(script, name=name, arguments=arguments, source_directory=str(src), allow_reuse=False)
    return Pipeline(workspace, [step]).publish(name=name)


@pytest.fixture(scope="module")
def counter(server):
    return publish(server.workspace, "count.py", "count",
                   ["--n", PipelineParameter("n", 2), "--word", PipelineParameter("word", "hello")])


@pytest.fixture(scope="module")
def slow(server):
    return publish(server.workspace, "slow.py", "slow", [PipelineParameter("seconds", 3.0)])


def trigger(server, published, **body):
    answer = server.post(f"pipelines/{published.id}", json={"ExperimentName": "rest", **body})
    assert answer.status_code == 200, answer.text
    assert answer.json()["Status"] == "Queued"
    assert answer.json()["PipelineId"] == published.id
    return answer.json()["Id"]


def poll(server, run_id, until=lambda run: run["Status"] in FINAL, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.get(f"runs/{run_id}").json()
        if until(run):
            return run
        time.sleep(0.2)
    pytest.fail(f"run {run_id} did not get there in {timeout}s: {run}")


def test_trigger_with_parameters_runs_to_completion(server, counter):
    run_id = trigger(server, counter, ParameterAssignments={"n": 4})
    run = poll(server, run_id)

    assert run["Status"] == "Completed", run
    assert run["ExperimentName"] == "rest" and run["Parameters"]["n"] == 4
    [step] = run["Steps"]
    assert (step["Name"], step["Status"], step["Reused"]) == ("count", "Completed", False)
    assert step["Metrics"] == {"result": 40, "word": "hello"}
    log = server.get(f"runs/{run_id}/steps/count/log")
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert "counting 4 hello" in log.text
    assert server.get(f"runs/{run_id}/steps/{step['Id']}/log").text == log.text  # by step run id too
    assert Run.get(server.workspace, run_id).get_properties()["azureml.pipelineid"] == counter.id


def test_listed_with_their_endpoint_urls(server, counter):
    listed = {p["Id"]: p for p in server.get("pipelines").json()["Value"]}
    p = listed[counter.id]
    assert (p["Name"], p["Status"], p["Parameters"]) == ("count", "Active", {"n": 2, "word": "hello"})
    assert p["Endpoint"].endswith(f"/mlpipe/api/pipelines/{counter.id}")
    if server.kind == "mlpipe serve":  # its record makes the endpoints point at it
        assert p["Endpoint"] == f"{server.url}mlpipe/api/pipelines/{counter.id}"
        assert PublishedPipeline.get(server.workspace, counter.id).endpoint == p["Endpoint"]


@pytest.mark.parametrize("assignments, culprit", [({"nope": 1}, "'nope'"), ({"n": "four"}, "'n'")])
def test_unknown_or_ill_typed_parameter_is_400_naming_it(server, counter, assignments, culprit):
    answer = server.post(f"pipelines/{counter.id}", json={"ExperimentName": "rest", "ParameterAssignments": assignments})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest" and culprit in answer.json()["error"]["message"]


def test_missing_experiment_name_is_400(server, counter):
    answer = server.post(f"pipelines/{counter.id}", json={"ParameterAssignments": {"n": 1}})
    assert answer.status_code == 400 and "ExperimentName" in answer.json()["error"]["message"]


def test_disabled_pipeline_is_409(server, counter):
    other = publish(server.workspace, "count.py", "disabled-one",
                    ["--n", PipelineParameter("n", 1), "--word", PipelineParameter("word", "x")])
    other.disable()
    answer = server.post(f"pipelines/{other.id}", json={"ExperimentName": "rest"})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "Conflict" and "disabled" in answer.json()["error"]["message"]
    assert other.id not in {p["Id"] for p in server.get("pipelines").json()["Value"]}


def test_endpoint_runs_its_default_version(server, counter):
    endpoint = PipelineEndpoint.publish(server.workspace, f"ep-{server.kind.split()[0]}", "an endpoint", counter)
    listed = {e["Id"]: e for e in server.get("endpoints").json()["Value"]}
    assert listed[endpoint.id]["DefaultVersion"] == "0"
    assert listed[endpoint.id]["Endpoint"].endswith(f"/mlpipe/api/endpoints/Id/{endpoint.id}")

    answer = server.post(f"endpoints/{endpoint.id}", json={"ExperimentName": "via-endpoint",
                                                            "ParameterAssignments": {"word": "hi"}})
    assert answer.status_code == 200 and answer.json()["PipelineEndpointId"] == endpoint.id
    run = poll(server, answer.json()["Id"])
    assert run["Status"] == "Completed" and run["Steps"][0]["Metrics"] == {"result": 20, "word": "hi"}

    answer = server.post(f"endpoints/{endpoint.id}", json={"ExperimentName": "e", "PipelineVersion": "7"})
    assert answer.status_code == 404 and "7" in answer.json()["error"]["message"]
    endpoint.disable()
    assert server.post(f"endpoints/{endpoint.id}", json={"ExperimentName": "e"}).status_code == 409


def test_endpoint_by_name_and_by_id_with_a_version_as_azure_spells_them(server, counter):
    """The URLs the Azure sample derives from ``endpoint.endpoint``: ``.../Id/<id>/<version>`` and, cut
    before "Id", ``.../Name?name=<name>&pipelineVersion=<version>``."""
    name = f"named-{server.kind.split()[0]}"
    endpoint = PipelineEndpoint.publish(server.workspace, name, "by name", counter)
    other = publish(server.workspace, "count.py", f"count-v1-{server.kind.split()[0]}",
                    ["--n", PipelineParameter("n", 5), "--word", PipelineParameter("word", "v1")])
    endpoint.add_default(other)  # version "1" is the default now; "0" is counter
    url = endpoint.endpoint
    assert url.startswith(server.url) and url.endswith(f"/mlpipe/api/endpoints/Id/{endpoint.id}")
    by_name = url.split("Id", 1)[0] + f"Name?name={name}"
    body = {"ExperimentName": "by-url"}

    answers = [requests.post(u, headers={"Authorization": f"token {server.token}"}, json=body, timeout=60)
               for u in (url, url + "/0", by_name, by_name + "&pipelineVersion=0")]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    words = [poll(server, a.json()["Id"])["Steps"][0]["Metrics"]["word"] for a in answers]
    assert words == ["v1", "hello", "v1", "hello"]  # the default version, or the one the URL names

    answer = server.post(f"endpoints/Id/{endpoint.id}/0", json={**body, "PipelineVersion": "1"})
    assert answer.status_code == 400 and "give one of them" in answer.json()["error"]["message"]
    answer = server.post("endpoints/Name?name=nobody", json=body)
    assert answer.status_code == 404 and "nobody" in answer.json()["error"]["message"]
    assert server.post("endpoints/Name", json=body).status_code == 400


def test_follow_streams_the_log_until_the_step_ends(server, slow):
    run_id = trigger(server, slow, ParameterAssignments={"seconds": 3.0})
    poll(server, run_id, until=lambda run: run.get("Steps") and run["Steps"][0]["Status"] == "Running")
    seen, status_at_first = b"", None
    with server.request("GET", f"runs/{run_id}/steps/slow/log", params={"follow": "1"}, stream=True) as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_content(chunk_size=None):
            seen += chunk
            if status_at_first is None and b"first" in seen:
                status_at_first = server.get(f"runs/{run_id}").json()["Steps"][0]["Status"]
    assert status_at_first == "Running"  # the first line came while the step still ran
    assert seen.decode().splitlines() == ["first", "second"]
    assert poll(server, run_id)["Status"] == "Completed"


def test_cancel_a_running_run(server, slow):
    run_id = trigger(server, slow, ParameterAssignments={"seconds": 600.0})
    poll(server, run_id, until=lambda run: run.get("Steps") and run["Steps"][0]["Status"] == "Running")
    answer = server.post(f"runs/{run_id}/cancel")
    assert answer.status_code == 200
    assert answer.json()["Id"] == run_id and answer.json()["Status"] in ("CancelRequested", "Canceled")
    run = poll(server, run_id, timeout=60)
    assert run["Status"] == "Canceled" and run["Steps"][0]["Status"] == "Canceled"
    assert "first" in server.get(f"runs/{run_id}/steps/slow/log").text
    assert server.post(f"runs/{run_id}/cancel").json()["Status"] == "Canceled"  # an ended run stays as it is


def test_a_server_set_to_ignore_unknown_parameters_drops_them_and_says_so(tmp_path):
    """Azure ML's lenient way, for clients that send names the pipeline lacks: the run goes ahead with the
    rest, and the answer lists what was dropped."""
    from helpers import start_mlpipe_serve

    from mlpipe_jupyter import Workspace
    workspace = Workspace.create("lenient", path=tmp_path / "ws")
    published = publish(workspace, "count.py", "count",
                        ["--n", PipelineParameter("n", 2), "--word", PipelineParameter("word", "hello")])
    server = start_mlpipe_serve(workspace, tmp_path, args=["--unknown-parameters", "ignore"])
    try:
        answer = server.post(f"pipelines/{published.id}", json={
            "ExperimentName": "rest", "ParameterAssignments": {"n": 3, "nope": 1, "2": "city"}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["IgnoredParameters"] == ["nope", "2"]
        run = poll(server, answer.json()["Id"])
        assert run["Status"] == "Completed" and run["Parameters"] == {"n": 3, "word": "hello"}, run
        ill_typed = server.post(f"pipelines/{published.id}", json={
            "ExperimentName": "rest", "ParameterAssignments": {"n": "three"}})
        assert ill_typed.status_code == 400 and "'n'" in ill_typed.json()["error"]["message"]
    finally:
        server.stop()
