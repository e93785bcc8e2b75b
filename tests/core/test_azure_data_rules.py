"""Data paths, datasets and compute targets as Azure ML SDK v1 has them, each through a real pipeline:
DataPath and dataset pipeline parameters (default and submitted), a registered dataset's id,
intermediate data read as a tabular dataset, the two default datastores, ComputeTarget objects."""
import json
import sqlite3

import pytest

from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import (ComputeTarget, DataPath, DataPathComputeBinding, Dataset, DatasetConsumptionConfig,
                            DataReference, Experiment, LocalCompute, OutputFileDatasetConfig, Pipeline,
                            PipelineData, PipelineParameter, PythonScriptStep, ScriptRunConfig, UserError,
                            Workspace)
from mlpipe_jupyter.data.tables import read_parquet
from mlpipe_jupyter.errors import PipelineValidationError
from mlpipe_jupyter.sdk.published import resolve_trigger

READ_PATH = """
import argparse, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser()
p.add_argument("--arg1")
p.add_argument("--arg2")
a = p.parse_args()
run = Run.get_context()
run.log("arg1", a.arg1)
run.log("content", open(os.path.join(a.arg2, "a.txt")).read())
run.log("same_as_env", a.arg2 == os.environ["AZUREML_DATAREFERENCE_input_datapath"])
"""


def _datapath_step(ws, src):
    store = ws.get_default_datastore()
    path_param = PipelineParameter(name="input_datapath", default_value=DataPath(store, "sample_datapath1"))
    datapath_input = (path_param, DataPathComputeBinding(mode="mount"))
    text_param = PipelineParameter(name="input_string", default_value="sample_string1")
    return PythonScriptStep(name="train_step", script_name="read.py", source_directory=str(src),
                            arguments=["--arg1", text_param, "--arg2", datapath_input], inputs=[datapath_input],
                            compute_target=ws.compute_targets["local"])


def _put(ws, datastore_name, files: dict, tmp_path):
    for rel, text in files.items():
        local = tmp_path / "upload" / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text)
    ws.datastores[datastore_name].upload(str(tmp_path / "upload"), overwrite=True, show_progress=False)


def test_datapath_parameter_default_override_and_reuse_by_content(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"read.py": READ_PATH})
    _put(workspace, "workspaceblobstore", {"sample_datapath1/a.txt": "one", "sample_datapath2/a.txt": "two",
                                           "copy_of_1/a.txt": "one"}, tmp_path)
    step = _datapath_step(workspace, src)
    store = workspace.get_default_datastore()

    first = run_pipeline(workspace, [step])
    assert first.get_status() == "Completed", first.get_details().get("error")
    assert steps_by_name(first)["train_step"].get_metrics() == {"arg1": "sample_string1", "content": "one",
                                                                "same_as_env": True}
    stored = first.get_details()["parameters"]  # a description, never the live object
    assert stored["input_datapath"] == {"kind": "data_reference", "datastore": "workspaceblobstore",
                                        "path": "sample_datapath1"}
    json.dumps(stored)

    second = run_pipeline(workspace, [step], pipeline_parameters={
        "input_datapath": DataPath(datastore=store, path_on_datastore="sample_datapath2"),
        "input_string": "sample_string2"})
    train = steps_by_name(second)["train_step"]
    assert not train.reused
    assert train.get_metrics() == {"arg1": "sample_string2", "content": "two", "same_as_env": True}
    assert second.get_details()["parameters"]["input_datapath"]["path"] == "sample_datapath2"

    # another path holding the same content is the same input: the reuse key has the content, not the path
    third = run_pipeline(workspace, [step], pipeline_parameters={"input_datapath": DataPath(store, "copy_of_1")})
    assert steps_by_name(third)["train_step"].reused

    with pytest.raises(PipelineValidationError, match="input_datapath"):
        Experiment(workspace, "e2e").submit(Pipeline(workspace, [step]), pipeline_parameters={"input_datapath": 5})


def test_datapath_parameter_pipeline_survives_a_file(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"read.py": READ_PATH})
    _put(workspace, "workspaceblobstore", {"sample_datapath1/a.txt": "one"}, tmp_path)
    Pipeline(workspace, [_datapath_step(workspace, src)]).save(tmp_path / "p.yml")
    assert "object at 0x" not in (tmp_path / "p.yml").read_text()

    loaded = Pipeline.load(workspace, tmp_path / "p.yml")
    run = Experiment(workspace, "e2e").submit(loaded)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=60)
    assert steps_by_name(run)["train_step"].get_metrics()["content"] == "one"


READ_DATASETS = """
import sys
from mlpipe_jupyter import Run
run = Run.get_context()
path = run.input_datasets["file_dataset"]
run.log("first_line", open(path).readline().strip())
run.log("argument_is_path", sys.argv[sys.argv.index("--param1") + 1] == str(path))
table = run.input_datasets["tabular_dataset"].to_pandas_dataframe()
run.log("rows", len(table))
run.log("columns", ",".join(table.columns))
"""


def _dataset_parameter_step(workspace, tmp_path, write_scripts, files):
    """The default datastore holding ``files``, and a step reading a file and a tabular dataset parameter
    (both defaulting to demo/titanic.csv)."""
    src = write_scripts(tmp_path / "src", {"train.py": READ_DATASETS})
    _put(workspace, "workspaceblobstore", files, tmp_path)
    store = workspace.get_default_datastore()
    file_param = PipelineParameter(name="file_ds_param",
                                   default_value=Dataset.File.from_files((store, "demo/titanic.csv")))
    tab_param = PipelineParameter(name="tabular_ds_param",
                                  default_value=Dataset.Tabular.from_delimited_files((store, "demo/titanic.csv")))
    file_input = DatasetConsumptionConfig("file_dataset", file_param).as_mount()
    tab_input = DatasetConsumptionConfig("tabular_dataset", tab_param)
    step = PythonScriptStep(name="train_step", script_name="train.py", source_directory=str(src),
                            arguments=["--param1", file_input, "--param2", tab_input], inputs=[file_input, tab_input])
    return store, step


def test_dataset_parameters_default_and_override(workspace, tmp_path, write_scripts):
    store, step = _dataset_parameter_step(workspace, tmp_path, write_scripts, {
        "demo/titanic.csv": "name,age\na,1\nb,2\nc,3\n", "demo/iris.csv": "sepal,petal,kind\n1,2,x\n"})

    first = run_pipeline(workspace, [step])
    assert first.get_status() == "Completed", first.get_details().get("error")
    assert steps_by_name(first)["train_step"].get_metrics() == {
        "first_line": "name,age", "argument_is_path": True, "rows": 3, "columns": "name,age"}
    stored = first.get_details()["parameters"]
    assert stored["tabular_ds_param"]["kind"] == "dataset"
    assert stored["tabular_ds_param"]["dataset_type"] == "tabular"
    json.dumps(stored)

    iris = {"file_ds_param": Dataset.File.from_files((store, "demo/iris.csv")),
            "tabular_ds_param": Dataset.Tabular.from_delimited_files((store, "demo/iris.csv"))}
    second = run_pipeline(workspace, [step], pipeline_parameters=iris)
    train = steps_by_name(second)["train_step"]
    assert not train.reused
    assert train.get_metrics() == {"first_line": "sepal,petal,kind", "argument_is_path": True, "rows": 1,
                                   "columns": "sepal,petal,kind"}
    again = run_pipeline(workspace, [step], pipeline_parameters=iris)
    assert steps_by_name(again)["train_step"].reused

    # a file dataset where the step needs rows: the tabular view is not there, and the step says so
    swapped = run_pipeline(workspace, [step], pipeline_parameters={"tabular_ds_param": iris["file_ds_param"]})
    assert steps_by_name(swapped)["train_step"].get_status() == "Failed"


def test_a_submission_saves_unregistered_dataset_values_and_gives_them_ids(workspace, tmp_path, write_scripts):
    """As in Azure ML: the id a dataset gets when a submission saves it names it in a REST body later."""
    store, step = _dataset_parameter_step(workspace, tmp_path, write_scripts, {
        "demo/titanic.csv": "name,age\na,1\n", "demo/iris.csv": "sepal\n1\n2\n"})
    iris = {"file_ds_param": Dataset.File.from_files((store, "demo/iris.csv")),
            "tabular_ds_param": Dataset.Tabular.from_delimited_files((store, "demo/iris.csv"))}
    assert [d.id for d in iris.values()] == [None, None]
    with pytest.raises(UserError, match="No registered or saved dataset has id 'nope'"):
        Dataset.get_by_id(workspace, "nope")

    assert run_pipeline(workspace, [step], pipeline_parameters=iris).get_status() == "Completed"
    file_id, table_id = iris["file_ds_param"].id, iris["tabular_ds_param"].id
    assert file_id and table_id and file_id != table_id
    again = Dataset.Tabular.from_delimited_files((store, "demo/iris.csv"))
    run_pipeline(workspace, [step], pipeline_parameters={"tabular_ds_param": again})
    assert again.id == table_id  # the same definition is the same saved dataset

    published = Pipeline(workspace, [step]).publish(name="by-id")
    body = {"ExperimentName": "rest", "DataSetDefinitionValueAssignments": {
        name: {"SavedDataSetReference": {"Id": ds.id}} for name, ds in iris.items()}}
    _, _, values = resolve_trigger(Workspace(workspace.path), "pipeline", published.id, body)  # another opening
    assert {n: (v.kind, v.id) for n, v in values.items()} == {"file_ds_param": ("file", file_id),
                                                              "tabular_ds_param": ("tabular", table_id)}
    run = published.submit(workspace, "rest", pipeline_parameters=values)
    run.wait_for_completion(raise_on_error=True)
    assert steps_by_name(run)["train_step"].get_metrics()["rows"] == 2  # iris, not the titanic default


def test_registered_dataset_id_and_get_by_id(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"count.py": """
        from mlpipe_jupyter import Run
        run = Run.get_context()
        run.log("rows", len(run.input_datasets["raw"].to_pandas_dataframe()))
    """})
    _put(workspace, "workspaceblobstore", {"t/one.csv": "x\n1\n2\n", "t/two.csv": "x\n1\n"}, tmp_path)
    store = workspace.get_default_datastore()
    assert Dataset.Tabular.from_delimited_files((store, "t/one.csv")).id is None  # unregistered: no id yet
    v1 = Dataset.Tabular.from_delimited_files((store, "t/one.csv")).register(workspace, "table")
    v2 = Dataset.Tabular.from_delimited_files((store, "t/two.csv")).register(workspace, "table",
                                                                             create_new_version=True)
    assert len({v1.id, v2.id}) == 2
    assert Dataset.get_by_name(workspace, "table", version=1).id == v1.id
    assert Workspace(workspace.path).datasets["table"].id == v2.id  # the latest, from another opening

    found = Dataset.get_by_id(workspace, v1.id)
    assert (found.name, found.version, found.id) == ("table", 1, v1.id)
    step = PythonScriptStep("count.py", source_directory=str(src), inputs=[found.as_named_input("raw")])
    run = run_pipeline(workspace, [step])
    assert steps_by_name(run)["count.py"].get_metrics() == {"rows": 2}

    with pytest.raises(UserError, match="no-such-id"):
        Dataset.get_by_id(workspace, "no-such-id")


WRITE_TABLES = """
import argparse, os
import pandas as pd
p = argparse.ArgumentParser()
p.add_argument("--csv")
p.add_argument("--pq")
a = p.parse_args()
frame = pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", "c"]})
os.makedirs(a.csv, exist_ok=True)
frame.to_csv(os.path.join(a.csv, "part1.csv"), sep=";", index=False)
os.makedirs(a.pq, exist_ok=True)
frame.iloc[:2].to_parquet(os.path.join(a.pq, "part1.parquet"))
"""

READ_TABLES = """
from mlpipe_jupyter import Run
run = Run.get_context()
delimited = run.input_datasets["csv_table"].to_pandas_dataframe()
parquet = run.input_datasets["pq_table"].to_pandas_dataframe()
run.log("csv_sum", int(delimited["n"].sum()))
run.log("csv_columns", ",".join(delimited.columns))
run.log("pq_sum", int(parquet["n"].sum()))
run.log("pq_s", ",".join(parquet["s"]))
"""


def test_intermediate_data_read_as_tabular_datasets(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"write.py": WRITE_TABLES, "read.py": READ_TABLES})
    csv_data = PipelineData("csv_data").as_dataset()
    pq_data = OutputFileDatasetConfig("pq_data").read_parquet_files()
    writer = PythonScriptStep("write.py", name="write", source_directory=str(src),
                              arguments=["--csv", csv_data, "--pq", pq_data], outputs=[csv_data])
    reader = PythonScriptStep("read.py", name="read", source_directory=str(src),
                              inputs=[csv_data.parse_delimited_files(separator=";").as_named_input("csv_table"),
                                      pq_data.as_input("pq_table")])
    run = run_pipeline(workspace, [reader])
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert steps_by_name(run)["read"].get_metrics() == {"csv_sum": 6, "csv_columns": "n,s", "pq_sum": 3,
                                                        "pq_s": "a,b"}


def test_parquet_without_an_engine_names_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(UserError, match="pip install pyarrow"):
        read_parquet([str(tmp_path)])


def test_default_datastores_on_new_and_existing_workspaces(workspace, tmp_path, write_scripts):
    assert {"workspaceblobstore", "workspacefilestore"} <= set(workspace.datastores)
    assert workspace.get_default_datastore().name == "workspaceblobstore"
    db = sqlite3.connect(workspace.folder / "mlpipe.db")  # a workspace made before there were two
    with db:
        db.execute("DELETE FROM datastores WHERE name='workspacefilestore'")
    db.close()
    assert "workspacefilestore" not in workspace.datastores
    reopened = Workspace(workspace.path)
    assert "workspacefilestore" in reopened.datastores

    _put(reopened, "workspacefilestore", {"shared/a.txt": "from the file store"}, tmp_path)
    src = write_scripts(tmp_path / "src", {"cat.py": """
        import sys
        from mlpipe_jupyter import Run
        Run.get_context().log("text", open(sys.argv[1] + "/a.txt").read())
    """})
    ref = DataReference(reopened.datastores["workspacefilestore"], "shared", "shared")
    run = run_pipeline(reopened, [PythonScriptStep("cat.py", source_directory=str(src), arguments=[ref])])
    assert steps_by_name(run)["cat.py"].get_metrics() == {"text": "from the file store"}


def test_compute_targets_are_objects_and_targets_are_honoured(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"hello.py": "print('hello')\n"})
    targets = workspace.compute_targets
    assert isinstance(targets["local"], ComputeTarget) and targets["local"].type == "local"
    ComputeTarget.create(workspace, "mine", LocalCompute.provisioning_configuration())
    mine = workspace.compute_targets["mine"]
    assert (mine.name, mine.type) == ("mine", "local")

    by_object = PythonScriptStep("hello.py", name="by_object", source_directory=str(src), compute_target=mine)
    by_name = PythonScriptStep("hello.py", name="by_name", source_directory=str(src), compute_target="mine")
    run = run_pipeline(workspace, [by_object, by_name])
    assert {s.name: s.get_details()["target"] for s in run.get_steps()} == {"by_object": "mine", "by_name": "mine"}

    exp = Experiment(workspace, "scripts")
    config = ScriptRunConfig(source_directory=str(src), script="hello.py")
    config.run_config.target = "mine"
    script_run = exp.submit(config)
    script_run.wait_for_completion(timeout_seconds=60)
    assert script_run.get_details()["target"] == "mine"
    assert exp.submit(ScriptRunConfig(str(src), "hello.py", compute_target=mine)).get_details()["target"] == "mine"

    for unknown in (ScriptRunConfig(str(src), "hello.py", compute_target="gpu-cluster"),
                    PythonScriptStep("hello.py", source_directory=str(src), compute_target="gpu-cluster")):
        with pytest.raises(PipelineValidationError, match="gpu-cluster"):
            exp.submit(unknown if isinstance(unknown, ScriptRunConfig) else Pipeline(workspace, [unknown]))
    assert len(list(exp.get_runs())) == 2  # the refused submits left no run behind


LIST_PATH = """
import os, sys
from mlpipe_jupyter import Run
Run.get_context().log("files", sorted(os.listdir(sys.argv[2])))
"""


def test_a_datapath_to_a_missing_path_is_an_empty_folder_until_data_arrives(workspace, tmp_path, write_scripts):
    """As Azure mounts it: an empty folder and a warning naming the path; the data's arrival reruns the step."""
    src = write_scripts(tmp_path / "src", {"read.py": LIST_PATH})
    store = workspace.get_default_datastore()
    path_param = PipelineParameter(name="where", default_value=DataPath(store, "not_yet"))
    binding = (path_param, DataPathComputeBinding(mode="mount"))
    step = PythonScriptStep(name="list", script_name="read.py", source_directory=str(src),
                            arguments=["--in", binding], inputs=[binding])
    with pytest.warns(UserWarning, match="'not_yet' does not exist on datastore 'workspaceblobstore'"):
        first = run_pipeline(workspace, [step])
    assert steps_by_name(first)["list"].get_metrics() == {"files": []}
    _put(workspace, "workspaceblobstore", {"not_yet/a.txt": "here"}, tmp_path)
    second = run_pipeline(workspace, [step])
    listed = steps_by_name(second)["list"]
    assert not listed.reused and listed.get_metrics() == {"files": ["a.txt"]}
