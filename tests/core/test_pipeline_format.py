"""Saving a pipeline to YAML or JSON and loading it back."""
import json
import textwrap

import pytest

from mlpipe_jupyter import (DataReference, Dataset, Datastore, Experiment, OutputFileDatasetConfig, Pipeline,
                            PipelineData, PipelineParameter, PythonScriptStep, UserError)

PREP = """
import argparse, os, shutil
p = argparse.ArgumentParser(); p.add_argument("--raw"); p.add_argument("--n"); p.add_argument("--out")
a = p.parse_args()
text = open(os.path.join(a.raw, "a.txt")).read()
open(os.path.join(a.out, "prepared.txt"), "w").write(text * int(a.n))
"""

TRAIN = """
import argparse, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--model"); p.add_argument("--rate")
a = p.parse_args()
table = Run.get_context().input_datasets["table"].to_pandas_dataframe()
text = open(os.path.join(a.data, "prepared.txt")).read()
open(os.path.join(a.model, "model.txt"), "w").write(f"{text}|{len(table)}|{a.rate}|{os.environ['AML_PARAMETER_mode']}")
"""

REPORT = """
import sys, os
open(os.path.join(sys.argv[2], "report.txt"), "w").write(open(os.path.join(sys.argv[1], "model.txt")).read())
"""


@pytest.fixture
def pipeline(workspace, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    for name, text in {"prep.py": PREP, "train.py": TRAIN, "report.py": REPORT}.items():
        (project / "src" / name).write_text(textwrap.dedent(text))
    ext = tmp_path / "external"
    (ext / "raw").mkdir(parents=True)
    (ext / "raw" / "a.txt").write_text("ab")
    (ext / "t.csv").write_text("k,v\n1,2\n3,4\n")
    store = Datastore.register_local(workspace, "external", ext)
    results = Datastore.register_local(workspace, "results", tmp_path / "results")

    n = PipelineParameter("n", 3)
    rate = PipelineParameter("rate", 0.5)
    raw = DataReference(store, "raw", "raw")
    table = Dataset.Tabular.from_delimited_files((store, "t.csv"), separator=",").as_named_input("table")
    prepared = PipelineData("prepared")
    model = OutputFileDatasetConfig("model", destination=(results, "models/{run-id}")).register_on_complete("m")
    report = PipelineData("report")
    src = str(project / "src")
    prep = PythonScriptStep("prep.py", name="prep", source_directory=src,
                            arguments=["--raw", raw, "--n", n, "--out", prepared], outputs=[prepared])
    train = PythonScriptStep("train.py", name="train", source_directory=src,
                             arguments=["--data", prepared.as_input("data"), "--model", model, "--rate", rate],
                             inputs=[table], outputs=[model], params={"mode": "fast"})
    rep = PythonScriptStep("report.py", name="report", source_directory=src, arguments=[model, report],
                           inputs=[model], outputs=[report], allow_reuse=False)
    prep.position = {"x": 10, "y": 20}
    train.position = {"x": 200, "y": 20}
    return Pipeline(workspace, [rep], description="format test")


def _submit(workspace, p, **kw):
    run = Experiment(workspace, "fmt").submit(p, **kw)
    run.wait_for_completion(raise_on_error=False)
    assert run.get_status() == "Completed", [(s.name, s.get_details().get("error")) for s in run.get_steps()]
    return run


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_preserves_everything_and_reuses(workspace, pipeline, tmp_path, suffix):
    path = tmp_path / "project" / f"p{suffix}"
    pipeline.save(path)
    if suffix == ".json":
        json.loads(path.read_text())
    loaded = Pipeline.load(workspace, path)
    base = tmp_path / "project"
    assert loaded.to_dict(base) == pipeline.to_dict(base)

    steps = {s.name: s for s in loaded.steps}
    assert set(steps) == {"prep", "train", "report"}
    assert steps["prep"].position == {"x": 10, "y": 20} and steps["report"].position is None
    assert steps["report"].allow_reuse is False and steps["train"].allow_reuse is True
    assert steps["train"].params == {"mode": "fast"}
    assert {n: p.default_value for n, p in loaded.parameters().items()} == {"n": 3, "rate": 0.5}
    prepared_out = steps["prep"].outputs[0]
    assert [u.name for u in loaded.upstream(steps["train"])] == ["prep"]
    assert [d for n, d, _ in steps["train"].input_items() if n == "data"] == [prepared_out]  # the link survived
    assert steps["train"].outputs[0].destination[0].name == "results"
    assert steps["train"].outputs[0]._register_as == "m"
    assert loaded.description == "format test"

    first = _submit(workspace, pipeline)
    second = _submit(workspace, loaded)
    for name in ("prep", "train"):
        one, two = first.get_step(name), second.get_step(name)
        assert two.reused, two.get_details()["reuse_reason"]
        assert two.get_details()["reused_from"] == one.id
    assert not second.get_step("report").reused
    model = second.get_step("report").get_output_data("report").path / "report.txt"
    assert model.read_text() == "ababab|2|0.5|fast"

    # parameters stay parameters after loading: a new value reruns the steps that use it
    third = _submit(workspace, Pipeline.load(workspace, path), pipeline_parameters={"rate": 0.25})
    assert third.get_step("prep").reused and not third.get_step("train").reused
    assert "parameter 'rate'" in third.get_step("train").get_details()["reuse_reason"]


def test_pipeline_folder_can_move(workspace, pipeline, tmp_path):
    path = tmp_path / "project" / "p.yaml"
    pipeline.save(path)
    moved = tmp_path / "moved"
    (tmp_path / "project").rename(moved)
    loaded = Pipeline.load(workspace, moved / "p.yaml")
    assert {s.source_directory for s in loaded.steps} == {str(moved / "src")}


def test_data_used_in_arguments_and_inputs_stays_one_input(workspace, tmp_path):
    ext = Datastore.register_local(workspace, "ext", tmp_path / "ext")
    (tmp_path / "ext" / "x.csv").write_text("a\n1\n")
    (tmp_path / "s.py").write_text("")
    named = Dataset.Tabular.from_delimited_files((ext, "x.csv")).as_named_input("x")
    data = PipelineData("d")
    producer = PythonScriptStep("s.py", name="make", source_directory=str(tmp_path), arguments=[data], outputs=[data])
    binding = data.as_input("din")
    consumer = PythonScriptStep("s.py", name="use", source_directory=str(tmp_path),
                                arguments=[named, binding], inputs=[named, binding])
    p = Pipeline(workspace, [producer, consumer])
    p.save(tmp_path / "p.yaml")
    loaded = Pipeline.load(workspace, tmp_path / "p.yaml")
    use = loaded.find_step("use")
    assert [name for name, _, _ in use.input_items()] == ["x", "din"]
    assert loaded.validate() == []


def test_two_different_data_objects_with_one_name_are_refused(workspace, tmp_path):
    (tmp_path / "s.py").write_text("")
    a, b = PipelineData("same"), PipelineData("same")
    s1 = PythonScriptStep("s.py", name="one", source_directory=str(tmp_path), arguments=[a], outputs=[a])
    s2 = PythonScriptStep("s.py", name="two", source_directory=str(tmp_path), arguments=[b], outputs=[b])
    with pytest.raises(UserError, match="'same'"):
        Pipeline(workspace, [s1, s2]).save(tmp_path / "p.yaml")


@pytest.mark.parametrize("text, fragment", [
    ("steps: [unclosed", "could not be parsed"),
    ("description: no steps here\n", "'steps'"),
    ("- just\n- a list\n", "'steps'"),
    ("steps:\n  - name: a\n    script: a.py\n    arguments: [{data: ghost}]\n", "'ghost'"),
    ("steps:\n  - name: a\n    script: a.py\n    arguments: [{param: p}]\n", "parameter 'p'"),
    ("steps:\n  - name: a\n", "'script'"),
    ("steps:\n  - name: a\n    script: a.py\n    inputs: [{data: r}]\n"
     "data:\n  r: {kind: data_reference, datastore: nowhere, path: x}\n", "'nowhere'"),
    ("steps:\n  - name: a\n    script: a.py\n    inputs: [{data: r}]\ndata:\n  r: {kind: mystery}\n", "'mystery'"),
])
def test_malformed_files_give_a_clear_error(workspace, tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        Pipeline.load(workspace, path)
    assert fragment in str(e.value) and "bad.yaml" in str(e.value)


def test_malformed_json_and_missing_file(workspace, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"steps": [')
    with pytest.raises(UserError, match="bad.json.*could not be parsed"):
        Pipeline.load(workspace, path)
    with pytest.raises(UserError, match="does not exist"):
        Pipeline.load(workspace, tmp_path / "none.yaml")


def test_environment_limits_hash_paths_and_registered_datasets_survive(workspace, tmp_path):
    from mlpipe_jupyter import Environment, RunConfiguration

    (tmp_path / "s.py").write_text("")
    (tmp_path / "extra.cfg").write_text("x")
    ext = Datastore.register_local(workspace, "ext", tmp_path / "ext")
    (tmp_path / "ext" / "f.txt").write_text("f")
    registered = Dataset.File.from_files((ext, "f.txt")).register(workspace, "files")
    env = Environment("custom")
    env.environment_variables = {"MODE": "1"}
    env.python.conda_dependencies.add_pip_package("numpy==2.0")
    rc = RunConfiguration()
    rc.environment = env
    rc.max_run_duration_seconds = 30
    step = PythonScriptStep("s.py", name="one", source_directory=str(tmp_path), runconfig=rc,
                            inputs=[registered.as_named_input("files").as_download()], hash_paths=["extra.cfg"])
    p = Pipeline(workspace, [step])
    p.save(tmp_path / "p.yaml")
    loaded = Pipeline.load(workspace, tmp_path / "p.yaml")
    assert loaded.to_dict(tmp_path) == p.to_dict(tmp_path)
    one = loaded.find_step("one")
    assert one.runconfig.environment.content_hash == env.content_hash
    assert one.runconfig.max_run_duration_seconds == 30 and one.hash_paths == ["extra.cfg"]
    (name, dataset, mode), = one.input_items()
    assert (name, dataset.name, dataset.version, mode) == ("files", "files", 1, "download")
