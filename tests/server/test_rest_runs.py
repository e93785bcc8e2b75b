"""What the lab's runs sidebar reads and does over HTTP, on both kinds of server: experiments, run lists
latest first with what started each run, re-running a run, and disabling and enabling a published
pipeline; with the 400 and 404 answers."""
import textwrap
import time

import pytest

from mlpipe_jupyter import Experiment, Pipeline, PipelineParameter, PythonScriptStep

SCRIPT = """
    import argparse
    from azureml.core import Run
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int)
    a = p.parse_args()
    print("times ten", a.n)
    Run.get_context().log("result", a.n * 10)
"""
FINAL = {"Completed", "Failed", "Canceled"}


def make_pipeline(workspace):
    src = workspace.path / "src"
    src.mkdir(exist_ok=True)
    (src / "times.py").write_text(textwrap.dedent(SCRIPT).lstrip())
    step = PythonScriptStep("times.py", name="times", arguments=["--n", PipelineParameter("n", 1)],
                            source_directory=str(src), allow_reuse=False)
    return Pipeline(workspace, [step])


@pytest.fixture(scope="module")
def published(server):
    return make_pipeline(server.workspace).publish(name="times")


def poll(server, run_id, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.get(f"runs/{run_id}").json()
        if run.get("Status") in FINAL:
            return run
        time.sleep(0.2)
    pytest.fail(f"run {run_id} did not end in {timeout}s: {run}")


def trigger(server, published, experiment, n):
    answer = server.post(f"pipelines/{published.id}",
                         json={"ExperimentName": experiment, "ParameterAssignments": {"n": n}})
    assert answer.status_code == 200, answer.text
    return answer.json()["Id"]


def test_experiments_and_runs_latest_first_with_what_started_them(server, published):
    first = trigger(server, published, "listed", 2)
    assert poll(server, first)["Status"] == "Completed"
    second = trigger(server, published, "listed", 3)
    assert poll(server, second)["Status"] == "Completed"
    sdk_run = Experiment(server.workspace, "from-sdk").submit(make_pipeline(server.workspace),
                                                              pipeline_parameters={"n": 5})
    sdk_run.wait_for_completion()

    runs = server.get("runs", params={"experiment": "listed"}).json()["Value"]
    assert [r["Id"] for r in runs] == [second, first]
    assert {(r["ExperimentName"], r["Status"], r["TriggeredBy"], r["Kind"]) for r in runs} == \
        {("listed", "Completed", "rest", "pipeline")}
    assert runs[0]["StartTimeUtc"].endswith("Z") and runs[0]["EndTimeUtc"] >= runs[0]["StartTimeUtc"]
    assert [r["Id"] for r in server.get("runs", params={"experiment": "listed", "limit": 1}).json()["Value"]] \
        == [second]
    assert server.get("runs").json()["Value"][0]["Id"] == sdk_run.id  # every experiment's runs, latest first

    [sdk_summary] = server.get("runs", params={"experiment": "from-sdk"}).json()["Value"]
    assert (sdk_summary["Id"], sdk_summary["TriggeredBy"]) == (sdk_run.id, "sdk")
    assert server.get(f"runs/{second}").json()["TriggeredBy"] == "rest"
    assert server.get(f"runs/{sdk_run.id}").json()["TriggeredBy"] == "sdk"

    experiments = {e["Name"]: e for e in server.get("experiments").json()["Value"]}
    assert experiments["listed"]["RunCount"] == 2 and experiments["listed"]["LatestRun"]["Id"] == second
    assert experiments["from-sdk"]["RunCount"] == 1 and experiments["from-sdk"]["LatestRun"]["Id"] == sdk_run.id
    names = [e["Name"] for e in server.get("experiments").json()["Value"]]
    assert names.index("from-sdk") < names.index("listed")  # the most recently active first


def test_run_lists_refuse_bad_queries(server):
    for limit in ("0", "-1", "many"):
        answer = server.get("runs", params={"limit": limit})
        assert answer.status_code == 400 and "'limit'" in answer.json()["error"]["message"], answer.text
    answer = server.get("runs", params={"experiment": "no-such-experiment"})
    assert answer.status_code == 404 and "no-such-experiment" in answer.json()["error"]["message"]


def test_rerun_of_a_published_pipelines_run_triggers_it_again(server, published):
    original = trigger(server, published, "rerun", 7)
    poll(server, original)
    answer = server.post(f"runs/{original}/rerun")
    assert answer.status_code == 200, answer.text
    new_id = answer.json()["Id"]
    assert new_id != original
    run = poll(server, new_id)
    assert (run["Status"], run["ExperimentName"], run["Parameters"]["n"], run["TriggeredBy"]) == \
        ("Completed", "rerun", 7, "rest")
    assert run["Steps"][0]["Metrics"] == {"result": 70}
    # a step's id re-runs its pipeline run
    step_id = run["Steps"][0]["Id"]
    again = server.post(f"runs/{step_id}/rerun").json()["Id"]
    assert poll(server, again)["Parameters"]["n"] == 7


def test_rerun_of_a_submitted_pipeline_resubmits_its_document(server):
    original = Experiment(server.workspace, "resubmit").submit(make_pipeline(server.workspace),
                                                               pipeline_parameters={"n": 4})
    original.wait_for_completion()
    answer = server.post(f"runs/{original.id}/rerun")
    assert answer.status_code == 200, answer.text
    assert answer.json()["Status"] == "Queued"  # started by the dispatcher, outside the server's process
    run = poll(server, answer.json()["Id"])
    assert (run["Status"], run["ExperimentName"], run["Parameters"]["n"]) == ("Completed", "resubmit", 4)
    assert server.workspace._store.get_run(run["Id"])["runner_pid"] not in (None, server.proc.pid)
    assert run["Steps"][0]["Metrics"] == {"result": 40}
    assert [r["Id"] for r in server.get("runs", params={"experiment": "resubmit"}).json()["Value"]] == \
        [run["Id"], original.id]


def test_rerun_of_an_unknown_run_is_404(server):
    answer = server.post("runs/no-such-run/rerun")
    assert answer.status_code == 404 and "no-such-run" in answer.json()["error"]["message"]


def test_disable_and_enable_a_published_pipeline(server):
    pipeline = make_pipeline(server.workspace).publish(name="toggled")
    answer = server.post(f"pipelines/{pipeline.id}/disable")
    assert answer.status_code == 200 and answer.json()["Status"] == "Disabled", answer.text
    assert pipeline.id not in [p["Id"] for p in server.get("pipelines").json()["Value"]]
    everyone = server.get("pipelines", params={"active_only": "false"}).json()["Value"]
    assert {p["Id"]: p["Status"] for p in everyone}[pipeline.id] == "Disabled"
    refused = server.post(f"pipelines/{pipeline.id}", json={"ExperimentName": "toggled"})
    assert refused.status_code == 409, refused.text

    answer = server.post(f"pipelines/{pipeline.id}/enable")
    assert answer.status_code == 200 and answer.json()["Status"] == "Active", answer.text
    assert poll(server, trigger(server, pipeline, "toggled", 1))["Status"] == "Completed"

    missing = server.post("pipelines/no-such-pipeline/disable")
    assert missing.status_code == 404 and "no-such-pipeline" in missing.json()["error"]["message"]
