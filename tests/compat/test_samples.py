"""Microsoft's Azure ML SDK v1 sample notebooks, converted to scripts (samples/<case>/driver.py), run
unchanged with ``mlpipe python driver.py`` in a fresh copy of their folder.

Each test checks what the sample itself shows: its pipeline run completed, the metric it logged, the
file it produced, read back through this package's own API or the driver's output. Samples that call a
published pipeline's REST endpoint run with a real ``mlpipe serve`` in their workspace.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import start_mlpipe_serve
from mlpipe_jupyter import Experiment, PipelineDraft, PipelineEndpoint, PublishedPipeline, Schedule, Workspace
from mlpipe_jupyter.errors import RequestError
from mlpipe_jupyter.sdk.published import resolve_trigger

SAMPLES = Path(__file__).resolve().parent / "samples"
MLPIPE = Path(sys.executable).with_name("mlpipe")
TIMEOUT = 900  # the first run on a machine builds the environments the samples ask for


class Driver:
    """A finished ``mlpipe python driver.py`` in a fresh copy of one case folder."""

    def __init__(self, case: str, tmp_path: Path, serve=None, serve_args=()):
        """``serve``: the ``serve`` fixture, to run ``mlpipe serve`` in the case's workspace (made first) for
        the sample's REST calls, as a user would before running it."""
        self.work = tmp_path / case
        shutil.copytree(SAMPLES / case, self.work)
        if serve is not None:
            serve(Workspace.create(case, path=self.work), serve_args)
        # as from an activated virtualenv: its tools (uv, which environment builds use) on PATH
        path = os.pathsep.join([str(MLPIPE.parent), os.environ.get("PATH", "")])
        self.proc = subprocess.run([str(MLPIPE), "python", "driver.py"], cwd=self.work, capture_output=True,
                                   text=True, timeout=TIMEOUT, env={**os.environ, "PATH": path})
        self.out, self.err = self.proc.stdout, self.proc.stderr

    def tail(self) -> str:
        return f"exit {self.proc.returncode}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-5000:]}"

    def ok(self) -> "Driver":
        assert self.proc.returncode == 0, self.tail()
        return self

    def workspace(self) -> Workspace:
        return Workspace(self.work)

    def runs(self, experiment: str) -> list:
        """The experiment's runs, oldest first (get_runs gives the newest first, as Azure ML does), each waited for."""
        runs = list(Experiment(self.workspace(), experiment).get_runs())[::-1]
        for run in runs:
            run.wait_for_completion(raise_on_error=False)
        return runs

    def stopped_at(self, call: str):
        """The driver failed at the line calling ``call``, and the error names what is missing."""
        assert self.proc.returncode != 0, self.tail()
        # a traceback's last frame in the driver, or the one-line form "Error (at driver.py:N): message"
        lines = re.findall(r'driver\.py", line (\d+)|\(at driver\.py:(\d+)\)', self.err)
        assert lines, self.tail()
        number = int(next(n for n in lines[-1] if n))
        line = (self.work / "driver.py").read_text().splitlines()[number - 1]
        assert f"{call}(" in line, f"stopped at line {number}: {line.strip()}\n" + self.tail()
        # the error's line: a driver that submitted runs before failing has a notice of the wait after it
        message = [ln for ln in self.err.strip().splitlines() if not ln.startswith("mlpipe: waiting for")][-1]
        assert call.split(".")[-1] in message or call.split(".")[0] in message, message


@pytest.fixture
def serve(tmp_path):
    """Starts a real ``mlpipe serve`` on a free port of 127.0.0.1 in a workspace; stopped after the test."""
    servers = []

    def start(workspace, args=()):
        servers.append(start_mlpipe_serve(workspace, tmp_path / "server", args=args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def rest_runs(driver, experiment: str) -> list:
    """The experiment's runs, each started by a REST call (run property mlpipe.triggeredBy)."""
    runs = driver.runs(experiment)
    assert runs, f"no run in experiment {experiment}\n" + driver.tail()
    assert {r.get_properties().get("mlpipe.triggeredBy") for r in runs} == {"rest"}
    return runs


def answered_ids(driver) -> list:
    """The run ids the driver printed from the REST answers (``Submitted pipeline run:  <Id>``)."""
    return re.findall(r"^Submitted pipeline run:\s+(\S+)$", driver.out, re.M)


def step_logs(run) -> dict:
    return {step.name: step.get_log_text() for step in run.get_steps()}


def completed(runs) -> list:
    return [r.get_status() for r in runs]


# -- pipelines ---------------------------------------------------------------------------------------------
def test_pipelines_getting_started(tmp_path):
    d = Driver("pipelines_getting_started", tmp_path).ok()
    first, = d.runs("Hello_World1")
    second, = d.runs("Hello_World2")
    assert completed([first, second]) == ["Completed", "Completed"], d.tail()
    logs = step_logs(second)
    assert sorted(logs) == ["compare_step", "extract_step", "train_step"]
    assert "In train.py" in logs["train_step"] and "In extract.py" in logs["extract_step"]
    assert "Upload call completed" in d.out


def test_pipelines_data_dependency(tmp_path):
    d = Driver("pipelines_data_dependency", tmp_path).ok()
    run, = d.runs("Data_dependency_sample")
    assert run.get_status() == "Completed", d.tail()
    for name in ("processed_data1", "processed_data2", "processed_data3"):
        assert f"\tname: {name}" in d.out
    logs = step_logs(run)
    compare = next(text for name, text in logs.items() if "compare" in name)
    assert re.search(r"Argument 1: \S*Titanic\.csv", compare), compare
    assert (d.work / "outputs").is_dir(), "the train step's output was not downloaded to ./outputs"


def test_pipelines_modulestep(tmp_path):
    d = Driver("pipelines_modulestep", tmp_path).ok()
    run, = d.runs("testmodulestesp")
    assert run.get_status() == "Completed", d.tail()
    logs = "\n".join(step_logs(run).values())
    # initialNum=17 and 2, then (sum, product) of the previous step's two files, twice
    first = (17 + 2, 17 * 2)
    middle = (sum(first), first[0] * first[1])
    end = (sum(middle), middle[0] * middle[1])
    for s, p in (first, middle, end):
        assert f"results: sum: {s} , product: {p}" in logs, logs[-3000:]


def test_nyc_taxi_regression(tmp_path):
    d = Driver("nyc_taxi_regression", tmp_path).ok()
    run, = d.runs("NYCTaxi_Tutorial_Pipelines")
    assert run.get_status() == "Completed", d.tail()
    names = {step.name: step.get_status() for step in run.get_steps()}
    assert names == {n: "Completed" for n in ("Cleanse Green Taxi Data", "Cleanse Yellow Taxi Data", "Merge Taxi Data",
                                              "Filter Taxi Data", "Normalize Taxi Data", "Transform Taxi Data",
                                              "Train Test Data Split")}
    # the driver downloaded each step's output as the sample does (outputs/<name>/azureml/<run>/<name>/)
    import pandas as pd

    transformed, = (d.work / "outputs" / "transformed_data").rglob("processed.parquet")
    assert "pickup_weekday" in pd.read_parquet(transformed).columns


# -- ParallelRunStep ---------------------------------------------------------------------------------------
def test_prs_tabular_iris(tmp_path):
    d = Driver("prs_tabular_iris", tmp_path).ok()
    rows = len((SAMPLES / "prs_tabular_iris" / "iris" / "iris.csv").read_text().splitlines()) - 1
    assert f"Prediction has  {rows}  rows" in d.out, d.tail()


def test_prs_partition_per_folder(tmp_path):
    d = Driver("prs_partition_per_folder", tmp_path).ok()
    uploads = re.findall(r"^datastore\.upload\('test_files/", (SAMPLES / "prs_partition_per_folder" / "driver.py")
                         .read_text(), re.M)
    assert f"Prediction has {len(uploads)} rows" in d.out, d.tail()


def test_prs_partition_per_column(tmp_path):
    d = Driver("prs_partition_per_column", tmp_path).ok()
    rows = len((SAMPLES / "prs_partition_per_column" / "oj.csv").read_text().splitlines()) - 1
    assert f"Prediction has  {rows}  rows" in d.out, d.tail()


# -- training and run tracking ------------------------------------------------------------------------------
def test_train_on_local(tmp_path):
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error
    from sklearn.model_selection import train_test_split

    d = Driver("train_on_local", tmp_path).ok()
    X_train, X_test, y_train, y_test = train_test_split(*load_diabetes(return_X_y=True), test_size=0.2, random_state=0)
    alphas = np.arange(0.0, 1.0, 0.05)
    mses = [mean_squared_error(Ridge(alpha=a).fit(X_train, y_train).predict(X_test), y_test) for a in alphas]
    best = int(np.argmin(mses))
    assert f"When alpha is {alphas[best]:0.2f}, we have min MSE {mses[best]:0.2f}." in d.out, d.tail()
    assert "--> Name: best_ridge_model" in d.out
    runs = d.runs("train-on-local")
    assert runs and all(r.get_status() == "Completed" for r in runs), completed(runs)


def test_train_on_amlcompute(tmp_path):
    d = Driver("train_on_amlcompute", tmp_path).ok()
    runs = d.runs("train-on-amlcompute")
    assert completed(runs) == ["Completed", "Completed"], d.tail()
    for run in runs:
        metrics = run.get_metrics()
        assert len(metrics["alpha"]) == len(metrics["mse"]) == 20


def test_using_environments(tmp_path):
    d = Driver("using_environments", tmp_path).ok()
    run, = d.runs("environment-example")
    assert run.get_status() == "Completed", d.tail()
    assert re.search(r"Name myenv \t version 1\b", d.out), d.tail()


def test_logging_api(tmp_path):
    d = Driver("logging_api", tmp_path).ok()
    run, = d.runs("logging-api-test")
    metrics = run.get_metrics()
    assert metrics["Magic Number"] == 42 * 2 and metrics["Category"] == "Red"
    assert metrics["Fibonacci"] == [2 * v for v in (0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)]
    assert len(metrics["Sigmoid"]) == 20
    assert "logging-api/myfile.txt" in run.get_file_names()
    assert (d.work / "files" / "myfile.txt").read_text() == "This is an output file that will be uploaded.\n"
    assert run.get_tags().get("Competition Rank") in (1, "1")


def test_manage_runs(tmp_path):
    d = Driver("manage_runs", tmp_path).ok()
    assert "Has it completed? Completed" in d.out, d.tail()
    runs = d.runs("explore-runs")
    with_children = [r for r in runs if len(list(r.get_children())) == 5]
    assert len(with_children) == 2, [len(list(r.get_children())) for r in runs]  # the script's and the driver's
    assert any(p.is_file() for p in (d.work / "snapshots").rglob("*")), "restore_snapshot wrote nothing"


# -- samples that publish, schedule or draft a pipeline: their REST calls go to a real `mlpipe serve` ---------
def test_pipelines_datapath_parameter_runs_through_the_rest_endpoint(tmp_path, serve):
    d = Driver("pipelines_datapath_parameter", tmp_path, serve=serve).ok()
    first, second = d.runs("showcasing-datapath")
    assert completed([first, second]) == ["Completed", "Completed"]
    assert "sample_string1" in step_logs(first)["train_step"]
    assert "sample_string2" in step_logs(second)["train_step"]
    rest, = rest_runs(d, "MyRestPipeline")
    assert answered_ids(d) == [rest.id] and rest.get_status() == "Completed"
    assert "sample_string3" in step_logs(rest)["train_step"]  # the REST body's ParameterAssignments
    schedule, = Schedule.list(d.workspace(), active_only=False)
    assert (schedule.name, schedule.status) == ("Datastore_trigger_schedule", "Disabled")


def test_pipelines_dataset_parameter_runs_through_the_rest_endpoint(tmp_path, serve):
    d = Driver("pipelines_dataset_parameter", tmp_path, serve=serve).ok()
    first, second = d.runs("showcasing-dataset")
    assert completed([first, second]) == ["Completed", "Completed"]
    assert "Braund, Mr. Owen Harris" in step_logs(first)["train_step"]
    assert "sepal.length" in step_logs(second)["train_step"]
    published, = d.runs("publishedexperiment")
    assert published.get_status() == "Completed"
    # the REST body names the iris datasets by the ids the submissions before it saved them under
    rest, = rest_runs(d, "MyRestPipeline")
    assert answered_ids(d) == [rest.id] and rest.get_status() == "Completed"
    log = step_logs(rest)["train_step"]
    assert "sepal.length" in log and "Braund" not in log, log


def test_pipelines_publish_rest_endpoint_runs_through_the_rest_endpoint(tmp_path, serve):
    d = Driver("pipelines_publish_rest_endpoint", tmp_path, serve=serve).ok()
    names = {p.name for p in PublishedPipeline.list(d.workspace())}
    assert names == {"My_New_Pipeline", "My_New_Pipeline2"}  # published from the pipeline and from its run
    rest, = rest_runs(d, "My_Pipeline1")
    assert answered_ids(d) == [rest.id] and rest.get_status() == "Completed", d.tail()
    compare = "\n".join(step_logs(rest).values())
    assert "Argument 4: 45" in compare, compare  # the REST body's ParameterAssignments {"pipeline_arg": 45}


def test_pipelines_schedule_runs_to_the_end(tmp_path):
    d = Driver("pipelines_schedule", tmp_path).ok()
    ws = d.workspace()
    assert [e.name for e in PipelineEndpoint.list(ws)] == ["ScheduledPipelineEndpoint"]
    schedules = {s.name: s for s in Schedule.list(ws, active_only=False)}
    assert {name: s.status for name, s in schedules.items()} == {
        "My_Updated_Schedule": "Disabled", "My_Schedule": "Disabled", "My_Endpoint_Schedule": "Active"}, d.tail()
    assert schedules["My_Updated_Schedule"].recurrence.frequency == "Hour"  # the update's new recurrence
    assert schedules["My_Schedule"].datastore_name == "workspaceblobstore"
    assert "Count: 1" in d.out  # get_schedules_for_pipeline_endpoint_id found the endpoint's schedule


def test_pipelines_versioned_endpoints_runs_through_azures_by_name_url(tmp_path, serve):
    """The sample posts to Azure's by-name URL (``.../Name?name=NewName&pipelineVersion=0``, built from the
    endpoint's URL) a body assigning parameters "1" and "2" that its pipeline does not have. Azure ignores
    such names; our server refuses them unless started with ``--unknown-parameters ignore``, as here, when
    the run is queued and the answer lists the names it dropped."""
    d = Driver("pipelines_versioned_endpoints", tmp_path, serve=serve,
               serve_args=["--unknown-parameters", "ignore"]).ok()
    assert "endpoints/Name?name=NewName&pipelineVersion=0" in d.out, d.tail()
    endpoint, = PipelineEndpoint.list(d.workspace())
    assert endpoint.name == "NewName"  # set_name before the REST call
    assert [v.version for v in endpoint.list_versions()] == ["0", "1"]
    rest, = rest_runs(d, "default_pipeline")
    assert answered_ids(d) == [rest.id], d.tail()
    # its step passes no --input_data to train.py, which opens it: it fails there, as on Azure (and as the
    # drafts sample's does)
    assert rest.get_status() == "Failed", d.tail()
    log, = step_logs(rest).values()
    assert "In train.py" in log and "os.path.join(args.input_data)" in log, log
    assert rest.get_properties()["azureml.pipelineid"] == endpoint.get_pipeline("0").id
    # by default the same body is refused, naming the parameter the pipeline lacks
    body = {"ExperimentName": "default_pipeline", "RunSource": "SDK", "PipelineVersion": "0",
            "ParameterAssignments": {"1": "united", "2": "city"}}
    lacking = r"'1' in 'ParameterAssignments' is not a parameter .*\(its parameters: none\)"
    with pytest.raises(RequestError, match=lacking):
        resolve_trigger(d.workspace(), "endpoint", endpoint.id, body)


def test_pipelines_drafts(tmp_path):
    d = Driver("pipelines_drafts", tmp_path).ok()
    run, = d.runs("pipeline_draft_sample")
    step, = run.get_steps()
    assert step.name == "New_Training_Step"  # the updated draft ran
    # the sample's step passes no --input_data to train.py, which opens it: it fails there, as on Azure
    assert run.get_status() == "Failed"
    assert "In train.py" in step.get_log_text() and "os.path.join(args.input_data)" in step.get_log_text()
    draft, = PipelineDraft.list(d.workspace(), tags={"dev": "true"})
    assert draft.name == "UpdatedPipelineDraft"
    assert [p.name for p in PublishedPipeline.list(d.workspace())] == ["UpdatedPipelineDraft"]


pytestmark = pytest.mark.timeout(TIMEOUT + 60)
