"""The magics in an IPython shell of the test process (no kernel): parsing, recording, editing and
submitting, and every bad argument as one short UsageError."""
from __future__ import annotations

import pytest
import yaml
from IPython.core.error import UsageError

from nbhelpers import EVALUATE, PREP, TRAIN, write_helper

CASES = [
    ("%pipeline submit", "The pipeline has no steps yet"),
    ("%%step prep --bogus\nx = 1", "%%step: unrecognized arguments: --bogus"),
    ("%%step\nx = 1", "%%step: the following arguments are required: name"),
    ("%%step bad/name\nx = 1", "%%step: step name 'bad/name' is not valid"),
    ("%%step prep --param n\nx = 1", "%%step prep: --param 'n' is not of the form NAME=VALUE"),
    ("%%step prep --param =3\nx = 1", "%%step prep: --param '=3' is not of the form NAME=VALUE"),
    ("%%step train --inputs data\nx = 1",
     "Step 'train': input 'data' is not an output of any recorded step (outputs: none yet)"),
    ("%%step prep --inputs bad-name\nx = 1", "%%step prep: input name 'bad-name' is not valid"),
    ("%%step prep --compute gpu\nx = 1", "Step 'prep': no compute target named 'gpu' (known: "),
    ("%%step prep --inputs raw=nostore:x.csv\nx = 1", "no datastore named 'nostore'"),
    ("%%step prep --inputs raw=dataset:missing\nx = 1", "'missing' is registered (registered: none)"),
    ("%%step prep\n!ls", "The cell of step 'prep' is not plain Python"),
    ("%%step prep --environment nosuch\nx = 1", "No environment 'nosuch' in workspace"),
    ("%%step prep --outputs data\nx = 1", None),  # a valid step, for the cases below
    ("%%step other --outputs data\nx = 1", "Step 'other': output 'data' is already written by step 'prep'"),
    ("%pipeline remove nope", "The pipeline has no step named 'nope' (steps: prep)"),
    ("%pipeline frobnicate", "%pipeline: argument COMMAND: invalid choice: 'frobnicate'"),
    ("%pipeline submit --param oops", "%pipeline submit: --param 'oops' is not of the form NAME=VALUE"),
    ("%pipeline submit --bogus", "%pipeline submit: unrecognized arguments: --bogus"),
    ("%pipeline submit --param nope=1", "Parameter 'nope' was given at submit, but no step uses"),
    ("%pipeline submit --experiment 'bad name'", "Experiment name 'bad name' is not valid"),
    ("%pipeline load missing.yaml", "missing.yaml' does not exist"),
    ("%pipeline save-notebook", "This kernel does not know its notebook file"),
    ("%pipeline runs --experiment", "%pipeline runs: argument --experiment: expected one argument"),
    ("%pipeline export 'unclosed", "%pipeline: No closing quotation"),
]


def test_each_bad_argument_is_one_short_usage_error(ip):
    for source, expected in CASES:
        error = ip.run_error(source)
        if expected is None:
            assert error is None, f"{source!r} should have worked: {error!r}"
            continue
        assert isinstance(error, UsageError), f"{source!r} raised {error!r}"
        assert expected in str(error), f"{source!r}: expected {expected!r} in {str(error)!r}"
        assert len(str(error).strip().splitlines()) <= 3, f"{source!r}: not short: {error}"


def test_record_steps_validate_and_remove(ip, tmp_path, capsys):
    write_helper(tmp_path)
    for cell in (PREP, TRAIN, EVALUATE):
        ip.run(cell.strip())
    ip.run("%pipeline steps")
    listed = capsys.readouterr().out
    assert "train" in listed and "in: data" in listed and "out: model" in listed
    ip.run("%pipeline validate")
    assert "The pipeline is valid (3 steps: prep, train, evaluate)." in capsys.readouterr().out
    ip.run("%pipeline remove train")
    assert "Steps evaluate now take an input nobody produces." in capsys.readouterr().out
    with pytest.raises(Exception, match="dangling data link"):
        ip.run("%pipeline validate")


def test_submit_wait_reuse_and_runs_without_widgets(ip, tmp_path, capsys):
    """In a shell without a widget front end the text monitor follows the run."""
    write_helper(tmp_path)
    for cell in (PREP, TRAIN):
        ip.run(cell.strip())
    first = ip.run("%pipeline submit --wait")
    out = capsys.readouterr().out
    assert "[prep] prep wrote 3 hello" in out and "==> train: Completed [2/2 done]" in out
    second = ip.run("%pipeline submit --wait")
    assert [s.reused for s in second.get_steps()] == [True, True]
    ip.run("%pipeline runs")
    runs = capsys.readouterr().out
    assert first.id in runs and second.id in runs and "Completed" in runs


def test_export_load_and_clear(ip, tmp_path, capsys):
    write_helper(tmp_path)
    for cell in (PREP, TRAIN):
        ip.run(cell.strip())
    ip.run("%pipeline export pipe.yaml")
    doc = yaml.safe_load((tmp_path / "pipe.yaml").read_text())
    assert [s["name"] for s in doc["steps"]] == ["prep", "train"] and doc["parameters"] == {"n": {"default": 3}}
    ip.run("%pipeline clear")
    ip.run("%pipeline steps")
    assert "No steps yet" in capsys.readouterr().out
    ip.run("%pipeline load pipe.yaml")
    ip.run(EVALUATE.strip())  # a cell links to an output of a loaded step
    run = ip.run("%pipeline submit --wait")
    assert {s.name: s.get_status() for s in run.get_steps()} == {"prep": "Completed", "train": "Completed",
                                                                 "evaluate": "Completed"}
