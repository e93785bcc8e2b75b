"""The model registry, as Azure ML SDK v1's Model: versions, lookups, lists, files, and models that
steps register from their outputs once they succeed."""
import datetime
import json
import os
import sqlite3
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS, run_pipeline, steps_by_name
from mlpipe_jupyter import Experiment, Model, PipelineData, PythonScriptStep, Run, ScriptRunConfig, UserError
from mlpipe_jupyter.store import SCHEMA_VERSION, Store


@pytest.fixture
def files(tmp_path):
    """A one-file model and a folder model."""
    (tmp_path / "model.pkl").write_bytes(b"weights-1")
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "sub" / "w.bin").write_bytes(b"\x00\x01")
    return tmp_path


def test_each_registration_is_a_new_version_of_a_copy(workspace, files):
    first = Model.register(workspace, str(files / "model.pkl"), "clf", tags={"kind": "tree"},
                           properties={"auc": 0.9}, description="first")
    (files / "model.pkl").write_bytes(b"weights-2")
    second = Model.register(workspace, files / "model.pkl", "clf")

    assert (first.name, first.version, first.id) == ("clf", 1, "clf:1")
    assert (second.version, second.id) == (2, "clf:2")
    assert first.tags == {"kind": "tree"} and first.properties == {"auc": "0.9"} and first.description == "first"
    assert isinstance(first.created_time, datetime.datetime) and first.created_time.tzinfo is not None
    assert first.run_id is None
    with open(first.url, "rb") as f:  # a copy: changing the source later does not change version 1
        assert f.read() == b"weights-1"
    assert Model(workspace, "clf").version == 2  # the latest by default
    assert Model(workspace, "clf", version=1).description == "first"
    assert Model(workspace, id="clf:1") == first


def test_a_folder_model_and_equal_content_stored_once(workspace, files):
    a = Model.register(workspace, files / "bundle", "net")
    b = Model.register(workspace, files / "bundle", "net-copy")
    assert a.url.endswith("/bundle") and json.loads(open(f"{a.url}/config.json").read()) == {"layers": 2}
    assert a.url == b.url  # content-addressed: one read-only copy for both


def test_missing_and_invalid_models_are_clear_errors(workspace, files):
    Model.register(workspace, files / "model.pkl", "clf")
    with pytest.raises(UserError, match="Model 'nope' is not registered in workspace 'test'"):
        Model(workspace, "nope")
    with pytest.raises(UserError, match=r"Model 'clf' version 7 .*registered versions: 1\)"):
        Model(workspace, "clf", version=7)
    with pytest.raises(UserError, match="Model id 'clf' is not valid"):
        Model(workspace, id="clf")
    with pytest.raises(UserError, match="Model name 'bad/name' is not valid"):
        Model.register(workspace, files / "model.pkl", "bad/name")
    with pytest.raises(UserError, match="model_path .*missing.pkl.* of model 'x' is not an existing file"):
        Model.register(workspace, files / "missing.pkl", "x")
    with pytest.raises(UserError, match="tags must be a dict"):
        Model.register(workspace, files / "model.pkl", "x", tags=["a"])
    with pytest.raises(UserError, match=r"datasets must be a list of \(purpose, dataset\) pairs"):
        Model.register(workspace, files / "model.pkl", "x", datasets=["train"])
    assert [m.id for m in Model.list(workspace)] == ["clf:1"]  # nothing half-registered


def test_list_is_newest_first_and_filters(workspace, files):
    Model.register(workspace, files / "model.pkl", "a", tags={"stage": "dev"}, properties={"auc": "0.8"})
    Model.register(workspace, files / "bundle", "b", tags={"stage": "prod", "team": "x"})
    Model.register(workspace, files / "model.pkl", "a", tags={"stage": "prod"})

    ids = lambda models: [m.id for m in models]  # noqa: E731
    assert ids(Model.list(workspace)) == ["a:2", "b:1", "a:1"]
    assert ids(Model.list(workspace, name="a")) == ["a:2", "a:1"]
    assert ids(Model.list(workspace, latest=True)) == ["a:2", "b:1"]
    assert ids(Model.list(workspace, tags=["team"])) == ["b:1"]
    assert ids(Model.list(workspace, tags=[["stage", "prod"]])) == ["a:2", "b:1"]
    assert ids(Model.list(workspace, tags=["stage", ["team", "x"]])) == ["b:1"]
    assert ids(Model.list(workspace, properties=[["auc", "0.8"]])) == ["a:1"]
    assert Model(workspace, "a", tags=[["stage", "dev"]]).version == 1  # the latest that matches


def test_download_tags_properties_serialize_and_delete(workspace, files, tmp_path):
    model = Model.register(workspace, files / "bundle", "net", properties={"owner": "ana"})
    target = tmp_path / "out"
    path = model.download(target_dir=str(target))
    assert path == str(target / "bundle") and (target / "bundle" / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    (target / "bundle" / "config.json").write_text("edited")  # the download is the user's own copy
    with pytest.raises(UserError, match="already exists; pass exist_ok=True"):
        model.download(target_dir=str(target))
    model.download(target_dir=str(target), exist_ok=True)
    assert (target / "bundle" / "config.json").read_text() == '{"layers": 2}'

    model.add_tags({"stage": "dev", "team": "x"})
    model.remove_tags(["team"])
    model.add_properties({"data": "v1"})
    with pytest.raises(UserError, match="properties owner already have other values"):
        model.add_properties({"owner": "bob"})
    again = Model(workspace, "net")
    assert again.tags == {"stage": "dev"} and again.properties == {"owner": "ana", "data": "v1"}
    payload = json.loads(json.dumps(again.serialize()))
    assert payload["id"] == "net:1" and payload["tags"] == {"stage": "dev"} and payload["framework"] == "Custom"
    assert Model.deserialize(workspace, payload) == again

    url = model.url
    model.delete()
    with pytest.raises(UserError, match="Model 'net' is not registered"):
        Model(workspace, "net")
    assert not os.path.exists(url)  # no other version held the same files
    assert Model.register(workspace, files / "bundle", "net").version == 2  # a deleted number is not reused


def test_datasets_and_framework_are_recorded(workspace, files):
    from mlpipe_jupyter import Dataset

    ds = Dataset.File.from_files(str(files / "model.pkl")).register(workspace, "train-data")
    model = Model.register(workspace, files / "model.pkl", "clf", datasets=[("training data", ds)],
                           model_framework=Model.Framework.SCIKITLEARN, model_framework_version="1.3")
    again = Model(workspace, "clf")
    [ref] = again.datasets["training data"]
    assert (ref["name"], ref["version"]) == ("train-data", 1)
    assert (again.model_framework, again.model_framework_version) == ("ScikitLearn", "1.3")
    assert [m.id for m in Model.list(workspace, dataset_id="train-data")] == [model.id]
    assert Model.list(workspace, model_framework="Onnx") == []


def test_child_paths_register_only_those(workspace, files):
    model = Model.register(workspace, files / "bundle", "partial", child_paths=["sub/w.bin"])
    download = model.download(target_dir=str(files / "dl"))
    listed = sorted(p.relative_to(download).as_posix() for p in Path(download).rglob("*"))
    assert listed == ["sub", "sub/w.bin"]


def test_an_older_database_is_migrated(tmp_path, files):
    folder = tmp_path / "ws"
    Store(folder).close()
    db = sqlite3.connect(folder / "mlpipe.db")
    db.execute("DROP TABLE models")
    db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    db.commit()
    db.close()

    store = Store(folder)
    assert store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    row = store.register_model("m", files / "model.pkl", tags={}, properties={}, description=None, run_id=None,
                               details={})
    assert row["version"] == 1 and store.model_path(row).read_bytes() == b"weights-1"


def test_get_model_path_outside_a_step(workspace, files, tmp_path, monkeypatch):
    Model.register(workspace, files / "model.pkl", "clf")
    Model.register(workspace, files / "bundle", "clf")
    assert Model.get_model_path("clf", _workspace=workspace).endswith("/bundle")
    assert open(Model.get_model_path("clf", version=1, _workspace=workspace), "rb").read() == b"weights-1"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="Model 'clf' was not found: outside a pipeline step pass the workspace"):
        Model.get_model_path("clf")
    # Azure's local places: the download cache azureml-models/<name>/<version>/, then ./<name>
    Model(workspace, "clf", version=1).download(target_dir=str(tmp_path / "azureml-models" / "clf" / "1"))
    assert Model.get_model_path("clf") == os.path.join("azureml-models", "clf", "1", "model.pkl")
    # a step whose compute target cannot reach the workspace (a container) is told so
    monkeypatch.setenv("MLPIPE_RUN_DIR", str(tmp_path))
    with pytest.raises(UserError, match="cannot be looked up from this step"):
        Model.get_model_path("other")


def test_a_model_outlives_the_output_it_came_from(workspace, tmp_path, write_scripts):
    """Models are apart from committed outputs: taking an output out of use leaves the model."""
    src = write_scripts(tmp_path / "src", {"make.py": """
        import sys
        open(sys.argv[1], "w").write("weights")
    """})
    out = PipelineData("out", is_directory=False)
    step = PythonScriptStep(name="make", script_name="make.py", source_directory=str(src),
                            arguments=[out], outputs=[out])
    run = run_pipeline(workspace, [step])
    assert run.get_status() == "Completed", run.get_details().get("error")
    output = steps_by_name(run)["make"].get_output_data("out")
    model = Model.register(workspace, output.path, "from-output")
    workspace._store.discard_data(output.digest)
    assert not output.path.exists()
    assert open(Model(workspace, "from-output").url).read() == "weights"


# -- models registered by runs ---------------------------------------------------------------------------------
TRAIN = """
    import os, sys
    from mlpipe_jupyter import Run
    run = Run.get_context()
    os.makedirs("outputs/net", exist_ok=True)
    open("outputs/model.pkl", "w").write("trained")
    open("outputs/net/w.txt", "w").write("net")
    pending = run.register_model("clf", "outputs/model.pkl", tags={"lr": 0.1}, description="from a step")
    print("version before the step ends:", pending.version)
    if len(sys.argv) > 1 and sys.argv[1] == "fail":
        sys.exit(3)
"""


def test_a_step_registers_its_model_once_it_succeeds(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"train.py": TRAIN})
    run = run_pipeline(workspace, [PythonScriptStep(name="train", script_name="train.py", source_directory=str(src))],
                       experiment="models")
    assert run.get_status() == "Completed", run.get_details().get("error")
    step = steps_by_name(run)["train"]
    assert "version before the step ends: None" in step.get_log_text()

    model = Model(workspace, "clf")
    assert (model.version, model.run_id, model.experiment_name) == (1, step.id, "models")
    assert model.tags == {"lr": "0.1"} and model.description == "from a step"
    assert open(model.url).read() == "trained"
    assert [m.id for m in Model.list(workspace, run_id=step.id)] == ["clf:1"]

    # after the run: a folder of the step's files, as in Azure's run.register_model
    net = step.register_model("net", model_path="outputs/net", properties={"kind": "folder"})
    assert (net.version, net.run_id) == (1, step.id) and open(f"{net.url}/w.txt").read() == "net"
    with pytest.raises(UserError, match=r"Run .* has no file or folder 'outputs/none.pkl' .*outputs/model.pkl"):
        step.register_model("none", model_path="outputs/none.pkl")


def test_a_failed_step_registers_nothing(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"train.py": TRAIN, "bad.py": """
        from mlpipe_jupyter import Run
        Run.get_context().register_model("ghost", "outputs/never-written.pkl")
    """})
    failing = PythonScriptStep(name="train", script_name="train.py", arguments=["fail"], source_directory=str(src))
    run = run_pipeline(workspace, [failing])
    assert run.get_status() == "Failed"
    bad = run_pipeline(workspace, [PythonScriptStep(name="bad", script_name="bad.py", source_directory=str(src))])
    assert bad.get_status() == "Failed"
    assert "register_model('ghost'): the run has no file or folder 'outputs/never-written.pkl'" in \
        steps_by_name(bad)["bad"].get_log_text()
    assert Model.list(workspace) == []


def test_a_script_run_registers_and_a_later_step_finds_the_model(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"train.py": TRAIN, "score.py": """
        from mlpipe_jupyter import Model
        print("model says:", open(Model.get_model_path("clf")).read())
    """})
    script_run = Experiment(workspace, "scripts").submit(ScriptRunConfig(source_directory=str(src), script="train.py"))
    script_run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    assert Model(workspace, "clf").run_id == script_run.id

    run = run_pipeline(workspace, [PythonScriptStep(name="score", script_name="score.py", source_directory=str(src))])
    assert run.get_status() == "Completed", run.get_details().get("error")
    assert "model says: trained" in steps_by_name(run)["score"].get_log_text()
    assert isinstance(Run.get(workspace, script_run.id), Run)
