"""Every bad pipeline fails at submit with a clear message, before anything runs, leaving no run behind."""
import pytest

from helpers import submit
from mlpipe_jupyter import (Experiment, PipelineData, PipelineParameter, PipelineValidationError, PythonScriptStep,
                            ScriptRunConfig, UserError)

TOUCH = "import sys\nopen(sys.argv[1], 'a').write('ran\\n')\n"


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", {"a.py": TOUCH, "b.py": TOUCH, "c.py": TOUCH})


@pytest.fixture
def trace(tmp_path):
    return tmp_path / "trace.txt"


def step(src, script, trace, **kwargs):
    args = kwargs.pop("arguments", [])
    return PythonScriptStep(script, source_directory=str(src), arguments=[str(trace), *args], **kwargs)


def assert_refused(workspace, trace, steps, *fragments, **submit_kwargs):
    with pytest.raises(UserError) as info:
        submit(workspace, steps, **submit_kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert workspace._store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert list(workspace.experiments) == []
    assert not trace.exists()
    return info.value


def test_cycle(workspace, src, trace):
    x, y = PipelineData("x"), PipelineData("y")
    a = step(src, "a.py", trace, inputs=[y], outputs=[x])
    b = step(src, "b.py", trace, inputs=[x], outputs=[y])
    c = step(src, "c.py", trace)
    error = assert_refused(workspace, trace, [c, a, b], "cycle", "a.py -> b.py -> a.py")
    assert isinstance(error, PipelineValidationError)


def test_dangling_data_link(workspace, src, trace):
    orphan = PipelineData("orphan")
    error = assert_refused(workspace, trace, [step(src, "a.py", trace, inputs=[orphan])],
                           "Step 'a.py'", "'orphan'", "no step produces")
    assert len(error.problems) == 1


def test_two_producers(workspace, src, trace):
    shared = PipelineData("shared")
    a = step(src, "a.py", trace, outputs=[shared])
    b = step(src, "b.py", trace, outputs=[shared])
    assert_refused(workspace, trace, [a, b], "'shared'", "a.py, b.py")


def test_missing_script(workspace, src, trace):
    assert_refused(workspace, trace, [step(src, "missing.py", trace), step(src, "a.py", trace)],
                   "'missing.py'", "not found", str(src))


def test_duplicate_step_names(workspace, src, trace):
    assert_refused(workspace, trace, [step(src, "a.py", trace, name="same"), step(src, "b.py", trace, name="same")],
                   "2 steps are named 'same'")


def test_unknown_compute_target(workspace, src, trace):
    assert_refused(workspace, trace, [step(src, "a.py", trace, compute_target="gpu-cluster")],
                   "'gpu-cluster'", "does not have", "local")


def test_unknown_parameter_at_submit(workspace, src, trace):
    n = PipelineParameter("n", 1)
    assert_refused(workspace, trace, [step(src, "a.py", trace, arguments=[n])], "'nn'", "known: n",
                   pipeline_parameters={"nn": 2})


def test_validate_lists_every_problem(workspace, src, trace):
    from mlpipe_jupyter import Pipeline

    orphan = PipelineData("orphan")
    steps = [step(src, "missing.py", trace), step(src, "a.py", trace, name="twice"),
             step(src, "b.py", trace, name="twice"), step(src, "c.py", trace, inputs=[orphan]),
             step(src, "a.py", trace, name="far", compute_target="nowhere")]
    problems = Pipeline(workspace, steps).validate()
    text = "\n".join(problems)
    assert len(problems) == 4, problems
    for fragment in ("'missing.py'", "named 'twice'", "'orphan'", "'nowhere'"):
        assert fragment in text
    error = assert_refused(workspace, trace, steps)
    assert error.problems == problems


def test_script_run_with_missing_script(workspace, src, trace):
    with pytest.raises(UserError, match="nope.py"):
        Experiment(workspace, "scripts").submit(ScriptRunConfig(source_directory=str(src), script="nope.py"))
    assert workspace._store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
