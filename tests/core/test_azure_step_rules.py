"""Step names and data links as Azure ML SDK v1 has them, each on a real pipeline of local steps.

Unnamed steps are named after their script file; names are free text (spaces too); inputs of two
steps may share a name; the last step built with an output writes it; an output's ``as_mount()``
stays an output on its step; ``run_after`` and ``StepSequence`` order steps without data.
"""
from __future__ import annotations

import io
import time

import pytest

from helpers import run_pipeline, statuses, steps_by_name, trace_lines
from mlpipe_jupyter import (Dataset, Experiment, OutputFileDatasetConfig, Pipeline, PipelineData, PipelineStep,
                            PythonScriptStep, StepSequence)
from mlpipe_jupyter.cli import main as cli_main
from mlpipe_jupyter.errors import PipelineValidationError, UserError
from mlpipe_jupyter.model.validation import problems
from mlpipe_jupyter.notebook.monitor import RunMonitor
from mlpipe_jupyter.notebook.text_monitor import TextMonitor

SCRIPTS = {
    # note.py TRACE WORD [--sleep S]: appends WORD to TRACE (after sleeping), so tests see what ran and in what order
    "note.py": """
        import argparse, time
        p = argparse.ArgumentParser()
        p.add_argument("trace"); p.add_argument("word"); p.add_argument("--sleep", type=float, default=0)
        a = p.parse_args()
        time.sleep(a.sleep)
        open(a.trace, "a").write(a.word + "\\n")
        print("noted", a.word)
    """,
    # write.py OUT TEXT: writes TEXT to OUT/value.txt
    "write.py": """
        import os, sys
        os.makedirs(sys.argv[1], exist_ok=True)
        open(os.path.join(sys.argv[1], "value.txt"), "w").write(sys.argv[2])
        print("wrote", sys.argv[2])
    """,
    # read.py TRACE LABEL [IN]: appends LABEL=<IN/value.txt, or the input named 'input' when IN is not given>
    "read.py": """
        import os, sys
        folder = sys.argv[3] if len(sys.argv) > 3 else os.environ["AZUREML_DATAREFERENCE_input"]
        text = open(os.path.join(folder, "value.txt")).read()
        open(sys.argv[1], "a").write(f"{sys.argv[2]}={text}\\n")
        print("read", text)
    """,
    # named.py TRACE LABEL: appends LABEL=<the files of the dataset input named raw_data>
    "named.py": """
        import os, sys
        from mlpipe_jupyter import Run
        ds = Run.get_context().input_datasets["raw_data"]  # a path, or a dataset
        files = sorted(os.listdir(ds)) if isinstance(ds, str) else ds.to_path()
        open(sys.argv[1], "a").write(f"{sys.argv[2]}={','.join(files)}\\n")
    """,
}


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


@pytest.fixture
def trace(tmp_path):
    return tmp_path / "trace.txt"


def note(src, trace, word, **kwargs):
    args = [str(trace), word, *kwargs.pop("extra", [])]
    return PythonScriptStep("note.py", source_directory=str(src), arguments=args, **kwargs)


def completed(run):
    assert run.get_status() == "Completed", run.get_details().get("error")
    return run


# -- 1. unnamed steps --------------------------------------------------------------------------------------------
def test_an_unnamed_step_is_named_after_its_script_file(workspace, src, trace):
    step = note(src, trace, "hello")
    assert step.name == "note.py" and isinstance(step, PipelineStep)
    assert PythonScriptStep(str(src / "note.py")).name == "note.py"  # a path: its file name

    run = completed(run_pipeline(workspace, [step]))
    found = run.find_step_run("note.py")
    assert [s.name for s in found] == ["note.py"] and found[0].get_status() == "Completed"
    assert trace_lines(trace) == ["hello"]


def test_two_unnamed_steps_of_one_script_both_run_and_explicit_duplicates_are_refused(workspace, src, trace):
    first, second = note(src, trace, "one"), note(src, trace, "two")
    run = completed(run_pipeline(workspace, [first, second]))
    assert statuses(run) == {"note.py": "Completed", "note.py (2)": "Completed"}
    assert sorted(trace_lines(trace)) == ["one", "two"]
    assert len(run.find_step_run("note.py")) == 1

    # names the user gave are never changed: two equal ones are one clear error before anything runs
    a, b = note(src, trace, "a", name="same"), note(src, trace, "b", name="same")
    with pytest.raises(PipelineValidationError, match="2 steps are named 'same'.*unique within a pipeline"):
        Experiment(workspace, "dup").submit(Pipeline(workspace, [a, b]))
    assert list(Experiment(workspace, "dup").get_runs()) == []


def test_an_unnamed_steps_own_output_is_named_after_its_numbered_name(workspace, src, trace):
    outs = [OutputFileDatasetConfig(), OutputFileDatasetConfig()]
    writers = [PythonScriptStep("write.py", source_directory=str(src), arguments=[o, str(i)])
               for i, o in enumerate(outs)]
    readers = [PythonScriptStep("read.py", name=f"r{i}", source_directory=str(src),
                                arguments=[str(trace), f"r{i}", o.as_input("input")]) for i, o in enumerate(outs)]
    run = completed(run_pipeline(workspace, readers))
    assert set(statuses(run)) == {"write.py", "write.py (2)", "r0", "r1"} and writers[1].name == "write.py (2)"
    assert sorted(o.name for o in outs) == ["write_py_2_output", "write_py_output"]
    assert sorted(trace_lines(trace)) == ["r0=0", "r1=1"]


# -- 2. names with spaces ----------------------------------------------------------------------------------------
def test_a_step_name_with_spaces_works_everywhere(workspace, src, trace, tmp_path, capsys, monkeypatch):
    cleansed = PipelineData("cleansed")
    cleanse = PythonScriptStep("write.py", name="Cleanse Green Taxi Data", source_directory=str(src),
                               arguments=[cleansed, "green"], outputs=[cleansed])
    merge = PythonScriptStep("read.py", name="Merge Taxi Data", source_directory=str(src),
                             arguments=[str(trace), "merged", cleansed], inputs=[cleansed])
    pipeline = Pipeline(workspace, [merge])
    assert pipeline.validate() == []
    run = Experiment(workspace, "spaces").submit(pipeline)
    monitor = TextMonitor(run, stream=io.StringIO())
    run.wait_for_completion(raise_on_error=False)
    completed(run)
    assert trace_lines(trace) == ["merged=green"]
    assert run.find_step_run("Cleanse Green Taxi Data")[0].get_status() == "Completed"

    # the pipeline file keeps the names; the loaded pipeline reuses both steps
    path = tmp_path / "taxi.yaml"
    pipeline.save(path)
    assert "Cleanse Green Taxi Data" in path.read_text()
    again = Experiment(workspace, "spaces").submit(Pipeline.load(workspace, path))
    again.wait_for_completion(raise_on_error=False)
    completed(again)
    assert {s.name: s.reused for s in again.get_steps()} == {"Cleanse Green Taxi Data": True, "Merge Taxi Data": True}

    # the command line: show and logs name the step; logs of one step by its name
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli_main(["show", run.id]) == 0
    shown = capsys.readouterr().out
    assert "Cleanse Green Taxi Data" in shown and "Merge Taxi Data" in shown
    assert cli_main(["logs", run.id, "--step", "Cleanse Green Taxi Data"]) == 0
    logs = capsys.readouterr().out
    assert "wrote green" in logs and "read green" not in logs

    # the notebook monitors (text and widget) show the step under its name
    monitor.wait()
    assert "Cleanse Green Taxi Data" in monitor.stream.getvalue()
    widget = RunMonitor(run)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and widget.statuses().get("Merge Taxi Data") != "completed":
        time.sleep(0.05)
    assert widget.statuses() == {"Cleanse Green Taxi Data": "completed", "Merge Taxi Data": "completed"}


@pytest.mark.parametrize("bad", ["a/b", "..", "x..y", "a\\b", "tab\there", "nul\0", "line\n", " lead", "trail ",
                                 "-dash", ".hidden", "s" * 201])
def test_names_that_would_make_unsafe_file_names_are_still_refused(src, bad):
    with pytest.raises(UserError, match="[Ss]tep name"):
        PythonScriptStep("note.py", name=bad, source_directory=str(src))


# -- 3. inputs of the same name in two steps ----------------------------------------------------------------------
def test_two_steps_may_each_have_an_input_of_the_same_name(workspace, src, trace, tmp_path, write_scripts):
    green = Dataset.File.from_files(str(write_scripts(tmp_path / "green", {"g.csv": "1\n"})))
    yellow = Dataset.File.from_files(str(write_scripts(tmp_path / "yellow", {"y.csv": "2\n"})))
    first, second = PipelineData("first"), PipelineData("second")
    steps = [
        PythonScriptStep("named.py", name="green", source_directory=str(src), arguments=[str(trace), "green"],
                         inputs=[green.as_named_input("raw_data")]),
        PythonScriptStep("named.py", name="yellow", source_directory=str(src), arguments=[str(trace), "yellow"],
                         inputs=[yellow.as_named_input("raw_data")]),
        PythonScriptStep("write.py", name="w1", source_directory=str(src), arguments=[first, "A"], outputs=[first]),
        PythonScriptStep("write.py", name="w2", source_directory=str(src), arguments=[second, "B"], outputs=[second]),
        PythonScriptStep("read.py", name="read first", source_directory=str(src), arguments=[str(trace), "r1"],
                         inputs=[first.as_input("input")]),
        PythonScriptStep("read.py", name="read second", source_directory=str(src), arguments=[str(trace), "r2"],
                         inputs=[second.as_input("input")]),
    ]
    pipeline = Pipeline(workspace, steps)
    completed(run_pipeline(workspace, steps))
    assert sorted(trace_lines(trace)) == ["green=g.csv", "r1=A", "r2=B", "yellow=y.csv"]

    # saved and loaded, each step still reads its own data under the shared input name
    doc = pipeline.to_dict(base_dir=tmp_path)
    assert {"raw_data", "raw_data_2"} <= set(doc["data"])
    loaded = Pipeline.from_dict(workspace, doc, base_dir=tmp_path)
    trace.unlink()
    rerun = Experiment(workspace, "e2e").submit(loaded, regenerate_outputs=True)
    rerun.wait_for_completion(raise_on_error=False)
    completed(rerun)
    assert sorted(trace_lines(trace)) == ["green=g.csv", "r1=A", "r2=B", "yellow=y.csv"]


# -- 4. one producer: the last step built with the output --------------------------------------------------------
def test_rebuilding_the_steps_of_a_cell_keeps_one_producer(workspace, src, trace):
    data = PipelineData("data")  # "an earlier cell", run once

    def cell(text):  # "the cell that builds the steps", run again and again
        write = PythonScriptStep("write.py", name="write", source_directory=str(src), arguments=[data, text],
                                 outputs=[data])
        read = PythonScriptStep("read.py", name="read", source_directory=str(src),
                                arguments=[str(trace), "read", data], inputs=[data])
        return write, read

    cell("old")
    write, read = cell("new")
    pipeline = Pipeline(workspace, [read])
    assert [s.name for s in pipeline.steps] == ["read", "write"] and pipeline.steps[1] is write
    assert pipeline.validate() == []
    completed(run_pipeline(workspace, [read]))
    assert trace_lines(trace) == ["read=new"]

    # two steps of one pipeline writing the same data is still an error
    other = PythonScriptStep("write.py", name="other", source_directory=str(src), arguments=[data, "x"],
                             outputs=[data])
    problems = Pipeline(workspace, [write, other, read]).validate()
    assert any("Data 'data' is written by 2 steps (other, write)" in p for p in problems), problems


# -- 5. an OutputFileDatasetConfig's modes ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["as_mount", "as_upload"])
def test_an_output_config_in_its_mode_stays_the_output_of_its_step(workspace, src, trace, mode):
    out = OutputFileDatasetConfig("prepped")
    prep = PythonScriptStep("write.py", name="prep", source_directory=str(src),
                            arguments=[getattr(out, mode)(), "ready"])
    by_mount = PythonScriptStep("read.py", name="by mount", source_directory=str(src),
                                arguments=[str(trace), "mount", out.as_mount()])
    by_input = PythonScriptStep("read.py", name="by input", source_directory=str(src),
                                arguments=[str(trace), "input", out.as_input("input")])
    assert prep.outputs == [out] and prep.inputs == []
    assert by_mount.outputs == [] and by_mount.inputs == [out]
    run = completed(run_pipeline(workspace, [by_mount, by_input]))
    assert set(statuses(run)) == {"prep", "by mount", "by input"}
    assert sorted(trace_lines(trace)) == ["input=ready", "mount=ready"]


# -- 6. order without data ----------------------------------------------------------------------------------------
def test_run_after_orders_steps_without_data_and_leaves_reuse_alone(workspace, src, trace, tmp_path):
    slow = note(src, trace, "slow", name="slow", extra=["--sleep", "0.5"])
    fast = note(src, trace, "fast", name="fast")
    fast.run_after(slow)
    pipeline = Pipeline(workspace, [fast])  # the step it runs after is pulled in, like a producer
    assert [s.name for s in pipeline.steps] == ["fast", "slow"]
    completed(run_pipeline(workspace, [fast]))
    assert trace_lines(trace) == ["slow", "fast"]

    # the order survives the file format
    doc = pipeline.to_dict(base_dir=tmp_path)
    assert [s.get("run_after") for s in doc["steps"]] == [["slow"], None]
    loaded = Pipeline.from_dict(workspace, doc, base_dir=tmp_path)
    assert [o.name for o in loaded.runs_after(loaded.find_step("fast"))] == ["slow"]

    # ordering only: a rerun of the earlier step does not make the later one rerun
    changed = note(src, trace, "slow2", name="slow", extra=["--sleep", "0.5"])
    later = note(src, trace, "fast", name="fast")
    later.run_after(changed)
    again = completed(run_pipeline(workspace, [later]))
    assert {s.name: s.reused for s in again.get_steps()} == {"slow": False, "fast": True}


def test_a_failed_step_stops_the_steps_that_run_after_it(workspace, src, trace):
    broken = PythonScriptStep("note.py", name="broken", source_directory=str(src), arguments=[])
    after = note(src, trace, "after", name="after")
    after.run_after(broken)
    run = run_pipeline(workspace, [after])
    assert statuses(run)["broken"] == "Failed" and statuses(run)["after"] != "Completed"
    assert trace_lines(trace) == []


def test_run_after_cycles_and_unknown_steps_are_listed(workspace, src, trace):
    a, b = note(src, trace, "a", name="a"), note(src, trace, "b", name="b")
    a.run_after(b)
    b.run_after(a)
    assert any("cycle" in p for p in Pipeline(workspace, [a, b]).validate())
    with pytest.raises(UserError, match="cannot run after itself"):
        a.run_after(a)
    doc = Pipeline(workspace, [note(src, trace, "c", name="c")]).to_document()
    doc["steps"][0]["run_after"] = ["ghost"]
    assert "Step 'c' runs after 'ghost', which is not a step of this pipeline." in problems(doc)


def test_a_step_sequence_runs_its_steps_in_order(workspace, src, trace, tmp_path):
    a = note(src, trace, "a", name="a", extra=["--sleep", "0.4"])
    b1 = note(src, trace, "b1", name="b1", extra=["--sleep", "0.2"])
    b2 = note(src, trace, "b2", name="b2", extra=["--sleep", "0.2"])
    c = note(src, trace, "c", name="c")
    pipeline = Pipeline(workspace, StepSequence(steps=[a, [b1, b2], c]))
    assert [s.name for s in pipeline.steps] == ["a", "b1", "b2", "c"]
    run = Experiment(workspace, "seq").submit(pipeline)
    run.wait_for_completion(raise_on_error=False)
    completed(run)
    lines = trace_lines(trace)
    assert lines[0] == "a" and sorted(lines[1:3]) == ["b1", "b2"] and lines[3] == "c"
    # the steps themselves stay unordered: another pipeline of them runs side by side
    assert Pipeline(workspace, [c]).steps == [c]
    doc = pipeline.to_dict(base_dir=tmp_path)
    assert {s["name"]: s.get("run_after") for s in doc["steps"]} == {
        "a": None, "b1": ["a"], "b2": ["a"], "c": ["b1", "b2"]}
