"""Published pipelines, endpoints and drafts on real local pipelines, and the REST trigger's checks."""
import os
import time

import pytest

from mlpipe_jupyter import Experiment, Pipeline, PipelineParameter, PythonScriptStep, Workspace
from mlpipe_jupyter.errors import ConflictError, NotFoundError, RequestError, UserError
from mlpipe_jupyter.sdk.published import PipelineDraft, PipelineEndpoint, PublishedPipeline, endpoint_url, trigger
from mlpipe_jupyter.sdk.run import Run
from mlpipe_jupyter.server.dispatcher import Dispatcher

SCRIPT = """
import argparse
from azureml.core import Run
p = argparse.ArgumentParser()
p.add_argument("--n", type=int)
p.add_argument("--word")
a = p.parse_args()
Run.get_context().log("result", a.n * VERSION)
Run.get_context().log("word", a.word)
"""


def write(tmp_path, write_scripts, version):
    write_scripts(tmp_path / "src", {"step.py": SCRIPT.replace("VERSION", str(version))})


@pytest.fixture
def pipeline(workspace, tmp_path, write_scripts):
    write(tmp_path, write_scripts, 10)
    n, word = PipelineParameter("n", 2), PipelineParameter("word", "hello")
    step = PythonScriptStep("step.py", name="count", arguments=["--n", n, "--word", word],
                            source_directory=str(tmp_path / "src"), allow_reuse=False)
    return Pipeline(workspace, [step], description="counting")


def metrics(run):
    run.wait_for_completion(raise_on_error=True)
    return run.find_step_run("count")[0].get_metrics()


def test_publish_freezes_the_scripts_and_submits_with_parameters(workspace, pipeline, tmp_path, write_scripts):
    published = pipeline.publish(name="counter", description="d", version="1.0")
    assert (published.name, published.description, published.version, published.status) == \
        ("counter", "d", "1.0", "Active")
    assert published.parameters == {"n": 2, "word": "hello"}
    assert published.endpoint == f"http://127.0.0.1:8888/mlpipe/api/pipelines/{published.id}"
    write(tmp_path, write_scripts, 1000)  # a later edit of the script does not change what was published

    run = published.submit(workspace, "pub", pipeline_parameters={"n": 3})
    assert metrics(run) == {"result": 30, "word": "hello"}
    assert metrics(pipeline.submit("live")) == {"result": 2000, "word": "hello"}  # the live pipeline did change
    run = Experiment(workspace, "pub").submit(PublishedPipeline.get(workspace, published.id),
                                               pipeline_parameters={"word": "x"})
    assert metrics(run) == {"result": 20, "word": "x"}
    assert run.get_properties()["azureml.pipelineid"] == published.id


def test_a_hash_path_outside_the_step_folder_is_followed_where_it_is(workspace, tmp_path, write_scripts):
    """A notebook cell's step names the notebook's module by a hash path outside its folder: the frozen copy
    holds only the folder, so the published step reads (and reruns on) the module where it is."""
    write_scripts(tmp_path, {"shared.py": "FACTOR = 3\n",
                             "src/step.py": f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import shared\n"
                                            "print('factor', shared.FACTOR)\n"})  # as a cell's preamble does
    step = PythonScriptStep("step.py", name="count", source_directory=str(tmp_path / "src"),
                            hash_paths=["../shared.py"])
    published = Pipeline(workspace, [step]).publish(name="with-module")
    first = published.submit(workspace, "pub")
    first.wait_for_completion(raise_on_error=True)
    assert "factor 3" in first.find_step_run("count")[0].get_log_text()

    again = published.submit(workspace, "pub")
    again.wait_for_completion(raise_on_error=True)
    assert again.find_step_run("count")[0].reused
    (tmp_path / "shared.py").write_text("FACTOR = 4\n")
    edited = published.submit(workspace, "pub")
    edited.wait_for_completion(raise_on_error=True)
    count = edited.find_step_run("count")[0]
    assert not count.reused and "factor 4" in count.get_log_text()


def test_list_disable_enable(workspace, pipeline):
    first = pipeline.publish(name="a")
    second = pipeline.publish(name="b")
    assert [p.name for p in PublishedPipeline.list(workspace)] == ["b", "a"]
    first.disable()
    assert PublishedPipeline.get(workspace, first.id).status == "Disabled"
    assert [p.id for p in PublishedPipeline.list(workspace)] == [second.id]
    assert {p.id for p in PublishedPipeline.list(workspace, active_only=False)} == {first.id, second.id}
    with pytest.raises(ConflictError, match="disabled"):
        first.submit(workspace, "x")
    first.enable()
    assert len(PublishedPipeline.list(workspace)) == 2
    with pytest.raises(NotFoundError, match="nope"):
        PublishedPipeline.get(workspace, "nope")


def test_publish_what_a_run_ran(workspace, pipeline, tmp_path, write_scripts):
    run = pipeline.submit("first")
    run.wait_for_completion()
    published = run.publish_pipeline(name="from-run", description="x", version="0.1", continue_on_step_failure=True)
    assert published.continue_on_step_failure is True and published.version == "0.1"
    write(tmp_path, write_scripts, 7)
    assert metrics(published.submit(workspace, "again")) == {"result": 20, "word": "hello"}


def test_endpoint_versions_and_default(workspace, pipeline, tmp_path, write_scripts):
    v0 = pipeline.publish(name="p0")
    write(tmp_path, write_scripts, 100)
    v1 = pipeline.publish(name="p1")
    endpoint = PipelineEndpoint.publish(workspace, name="ep", description="e", pipeline=v0)
    assert endpoint.default_version == "0"
    assert endpoint.endpoint.endswith(f"/mlpipe/api/endpoints/Id/{endpoint.id}")
    endpoint.add(v1)
    assert endpoint.default_version == "0"
    assert [p.id for p in endpoint.list_pipelines()] == [v0.id, v1.id]
    assert metrics(endpoint.submit("ep-run")) == {"result": 20, "word": "hello"}
    assert metrics(endpoint.submit("ep-run", pipeline_version="1")) == {"result": 200, "word": "hello"}
    assert [(v.version, v.pipeline.id) for v in endpoint.list_versions()] == [("0", v0.id), ("1", v1.id)]
    endpoint.set_default_version("1")
    assert endpoint.get_default_version() == "1"
    assert PipelineEndpoint.get(workspace, name="ep").get_pipeline().id == v1.id
    run = Experiment(workspace, "ep-run").submit(endpoint, pipeline_parameters={"n": 1}, pipeline_version="0")
    assert metrics(run) == {"result": 10, "word": "hello"}
    endpoint.add_default(v0)
    assert (endpoint.default_version, endpoint.get_pipeline("2").id) == ("2", v0.id)
    with pytest.raises(NotFoundError, match="no version '9'"):
        endpoint.set_default_version("9")
    endpoint.set_name("renamed")
    assert PipelineEndpoint.get(workspace, id=endpoint.id).name == "renamed"
    assert [e.name for e in PipelineEndpoint.list(workspace)] == ["renamed"]
    with pytest.raises(UserError, match="exists already"):
        PipelineEndpoint.publish(workspace, name="renamed", description=None, pipeline=v0)
    endpoint.disable()
    with pytest.raises(ConflictError):
        endpoint.submit("x")
    endpoint.enable()


def test_drafts_are_editable(workspace, pipeline, tmp_path, write_scripts):
    draft = PipelineDraft.create(workspace, pipeline, name="draft", experiment_name="drafts",
                                 pipeline_parameters={"n": 4}, tags={"team": "a"})
    assert [d.id for d in PipelineDraft.list(workspace, tags={"team": "a"})] == [draft.id]
    assert PipelineDraft.list(workspace, tags={"team": "b"}) == []
    write(tmp_path, write_scripts, 1)  # a draft runs the scripts as they are now
    assert metrics(draft.submit_run()) == {"result": 4, "word": "hello"}
    draft.update(pipeline_parameters={"n": 5, "word": "w"}, name="renamed")
    again = PipelineDraft.get(workspace, draft.id)
    assert (again.name, again.pipeline_parameters, again.experiment_name) == ("renamed", {"n": 5, "word": "w"}, "drafts")
    published = again.publish()
    assert published.name == "renamed"
    again.delete()
    with pytest.raises(NotFoundError):
        PipelineDraft.get(workspace, draft.id)


def test_endpoint_url_follows_a_live_server_record(workspace):
    import json, os
    record = workspace.folder / "server.json"
    record.write_text(json.dumps({"url": "http://127.0.0.1:9999/", "pid": os.getpid()}))
    assert endpoint_url(workspace, "pipeline", "abc") == "http://127.0.0.1:9999/mlpipe/api/pipelines/abc"
    record.write_text(json.dumps({"url": "http://127.0.0.1:9999/", "pid": 2 ** 22 + 12345}))
    assert endpoint_url(workspace, "endpoint", "abc") == "http://127.0.0.1:8888/mlpipe/api/endpoints/Id/abc"


@pytest.mark.parametrize("body, error, message", [
    ([], RequestError, "must be a JSON object"),
    ({}, RequestError, "needs 'ExperimentName'"),
    ({"ExperimentName": "e", "Bogus": 1}, RequestError, "unknown field.*Bogus"),
    ({"ExperimentName": "bad name!"}, RequestError, "bad name!"),
    ({"ExperimentName": "e", "ParameterAssignments": []}, RequestError, "'ParameterAssignments' must be an object"),
    ({"ExperimentName": "e", "ParameterAssignments": {"m": 1}}, RequestError, "'m' .* not a parameter"),
    ({"ExperimentName": "e", "ParameterAssignments": {"n": "3"}}, RequestError, "'n' .* takes an integer.*'3'"),
    ({"ExperimentName": "e", "ParameterAssignments": {"n": True}}, RequestError, "'n' .* takes an integer"),
    ({"ExperimentName": "e", "ParameterAssignments": {"word": 5}}, RequestError, "'word' .* takes a string"),
    ({"ExperimentName": "e", "DataPathAssignments": {"n": {"DataStoreName": "x"}}}, RequestError,
     "Data path parameter 'n' takes"),
    ({"ExperimentName": "e", "DataSetDefinitionValueAssignments": {"n": 1}}, RequestError,
     "Dataset parameter 'n' takes"),
    ({"ExperimentName": "e", "PipelineVersion": "0"}, RequestError, "applies to a pipeline endpoint"),
])
def test_trigger_rejects_a_bad_body_before_running(workspace, pipeline, body, error, message):
    published = pipeline.publish(name="p")
    with pytest.raises(error, match=message):
        trigger(workspace, "pipeline", published.id, body)
    assert workspace._store.list_runs() == []


def test_trigger_unknown_and_disabled_targets(workspace, pipeline):
    body = {"ExperimentName": "e"}
    with pytest.raises(NotFoundError, match="nope"):
        trigger(workspace, "pipeline", "nope", body)
    with pytest.raises(NotFoundError, match="nope"):
        trigger(workspace, "endpoint", "nope", body)
    published = pipeline.publish(name="p")
    endpoint = PipelineEndpoint.publish(workspace, name="ep", description=None, pipeline=published)
    with pytest.raises(NotFoundError, match="no version '3'"):
        trigger(workspace, "endpoint", endpoint.id, {**body, "PipelineVersion": "3"})
    endpoint.disable()
    with pytest.raises(ConflictError, match="disabled"):
        trigger(workspace, "endpoint", endpoint.id, body)
    published.disable()
    with pytest.raises(ConflictError, match="disabled"):
        trigger(workspace, "pipeline", published.id, body)
    assert workspace._store.list_runs() == []


def test_trigger_queues_the_run_and_a_dispatcher_starts_it_in_a_detached_process(workspace, pipeline):
    published = pipeline.publish(name="p")
    endpoint = PipelineEndpoint.publish(workspace, name="ep", description=None, pipeline=published)
    run_id = trigger(workspace, "endpoint", endpoint.id,
                     {"ExperimentName": "rest", "ParameterAssignments": {"n": 5}, "PipelineVersion": "0"})
    ws = Workspace(workspace.path)  # as another process sees the history
    row = ws._store.get_run(run_id)
    assert (row["experiment"], row["status"], row["runner_pid"]) == ("rest", "Queued", None)
    assert Run.get(ws, run_id).get_status() == "Queued"
    assert Dispatcher(str(ws.path), max_concurrent=1).tick() == [run_id]
    assert ws._store.get_run(run_id)["runner_pid"] != os.getpid()  # the run belongs to the background process
    deadline = time.time() + 60
    while ws._store.get_run(run_id)["status"] not in ("Completed", "Failed") and time.time() < deadline:
        time.sleep(0.2)
    assert ws._store.get_run(run_id)["status"] == "Completed"
    step = ws._store.child_runs(run_id)[0]
    assert {m["name"]: m["value"] for m in ws._store.get_metric_records(step["id"])}["result"] in (50, "50")
