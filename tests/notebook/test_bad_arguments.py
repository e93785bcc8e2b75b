"""Each bad magic argument prints one short UsageError naming the problem, never a traceback."""
from __future__ import annotations

from nbhelpers import errors, stream

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


def test_each_bad_argument_gives_one_short_usage_error(notebook):
    nb = notebook(["%load_ext mlpipe_jupyter"] + [c for c, _ in CASES], allow_errors=True)
    for cell, (source, expected) in zip(nb.cells[1:], CASES):
        err = stream(cell, "stderr")
        assert not errors(cell), f"{source!r} raised: {errors(cell)}"
        assert "Traceback" not in err and "File \"" not in err, f"{source!r} printed a traceback:\n{err}"
        if expected is None:
            assert err == "", f"{source!r} should have worked:\n{err}"
            continue
        assert err.startswith("UsageError: "), f"{source!r}: {err!r}"
        assert expected in err, f"{source!r}: expected {expected!r} in {err!r}"
        assert len(err.strip().splitlines()) <= 3, f"{source!r}: not short:\n{err}"
