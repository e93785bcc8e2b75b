"""Names and settings that used to fail late (or never): each is one clear error before anything runs.

Step, data, parameter and registry names become file names, folders and environment variables;
a time limit that is not a number used to mean no limit at all. Each mistake must be refused at
construction, or listed by validation at submit, before a run is recorded.
"""
from __future__ import annotations

import pytest

from mlpipe_jupyter import (ComputeTarget, Dataset, Datastore, Experiment, LocalCompute, OutputFileDatasetConfig,
                            Pipeline, PipelineData, PipelineParameter, PythonScriptStep, ScriptRunConfig)
from mlpipe_jupyter.sdk.environment import Environment
from mlpipe_jupyter.sdk.run_config import RunConfiguration
from mlpipe_jupyter.errors import PipelineValidationError, UserError


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", {"a.py": "print('a')\n", "sub/b.py": "print('b')\n"})


def _step(src, **kwargs):
    kwargs.setdefault("source_directory", str(src))
    return PythonScriptStep(kwargs.pop("script", "a.py"), **kwargs)


def _refused_at_submit(workspace, steps, *expected):
    """Submitting raises one validation error listing each expected text; no run is recorded."""
    pipeline = Pipeline(workspace, steps)
    with pytest.raises(PipelineValidationError) as e:
        Experiment(workspace, "late").submit(pipeline)
    for text in expected:
        assert text in str(e.value), str(e.value)
    assert list(Experiment(workspace, "late").get_runs()) == []
    return e.value


# -- the time limit ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["soon", True, 0, -5, float("nan"), float("inf"), [10]])
def test_a_time_limit_that_is_not_a_positive_number_is_refused(workspace, src, bad):
    rc = RunConfiguration()
    rc.max_run_duration_seconds = bad
    err = _refused_at_submit(workspace, [_step(src, name="slow", runconfig=rc)],
                             "Step 'slow'", "max_run_duration_seconds", repr(bad))
    assert len(err.problems) == 1


def test_a_script_run_with_a_bad_time_limit_is_refused(workspace, src):
    config = ScriptRunConfig(source_directory=str(src), script="a.py", max_run_duration_seconds="soon")
    with pytest.raises(PipelineValidationError, match="max_run_duration_seconds.*'soon'"):
        Experiment(workspace, "late").submit(config)
    assert list(Experiment(workspace, "late").get_runs()) == []


@pytest.mark.parametrize("good", [None, 1, 2.5, 3600])
def test_a_positive_time_limit_is_fine(workspace, src, good):
    rc = RunConfiguration()
    rc.max_run_duration_seconds = good
    assert Pipeline(workspace, [_step(src, runconfig=rc)]).validate() == []


# -- names that become environment variables ----------------------------------------------------------------------
@pytest.mark.parametrize("key", ["a b", "x=y", "a\0b", "", "a\nb", "n\n", "9lives", "p" * 242])
def test_bad_step_param_names_are_listed(workspace, src, key):
    _refused_at_submit(workspace, [_step(src, name="s", params={key: 1})], "Step 's': parameter name")


def test_param_values_with_nul_are_listed(workspace, src):
    _refused_at_submit(workspace, [_step(src, name="s", params={"a": "x\0y", "b": PipelineParameter("b", "u\0v")})],
                       "parameter 'a'", "parameter 'b'")


def test_every_bad_environment_variable_is_listed_at_once(workspace, src):
    rc = RunConfiguration()
    rc.environment_variables = {"BAD NAME": "1", "A=B": "1", "NUL": "x\0y", "NONE": None, "OK": 3}
    env = Environment("custom")
    env.environment_variables = {"=x": "1", "LINE\n": "1", "COUNT": 3, "FINE": "yes"}
    rc.environment = env
    err = _refused_at_submit(workspace, [_step(src, name="s", runconfig=rc)],
                             "'BAD NAME'", "'A=B'", "'NUL'", "'NONE'", "'=x'", "'LINE\\n'", "'COUNT'",
                             "RunConfiguration.environment_variables", "(environment 'custom')")
    assert len(err.problems) == 7, err.problems
    assert not any("'OK'" in p or "'FINE'" in p for p in err.problems)


def test_a_long_environment_variable_name_is_refused(workspace, src):
    rc = RunConfiguration()
    rc.environment_variables = {"V" * 256: "1"}
    _refused_at_submit(workspace, [_step(src, name="s", runconfig=rc)], "too long (256 characters; at most 255)")
    rc.environment_variables = {"V" * 255: "1", "with.dot-dash": "x"}
    assert Pipeline(workspace, [_step(src, name="s", runconfig=rc)]).validate() == []


# -- scripts stay inside their source directory -----------------------------------------------------------------
def test_a_script_outside_its_source_directory_is_listed(workspace, src, tmp_path):
    (tmp_path / "evil.py").write_text("print('evil')\n")
    steps = [_step(src, name="up", script="../evil.py"), _step(src, name="abs", script=str(tmp_path / "evil.py")),
             _step(src, name="mid", script="sub/../a.py")]
    err = _refused_at_submit(workspace, steps, "Step 'up': script '../evil.py'", "Step 'abs': script",
                             "Step 'mid': script 'sub/../a.py'", "relative path inside its source directory")
    assert len(err.problems) == 3, err.problems
    assert Pipeline(workspace, [_step(src, name="b", script="sub/b.py")]).validate() == []
    assert Pipeline(workspace, [PythonScriptStep(str(src / "a.py"))]).validate() == []  # no source_directory: fine


# -- step and data names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["prep\n", "a/b", "../x", "." * 3, "s" * 201, "a\0"])
def test_bad_step_names_are_refused_at_construction(src, name):
    with pytest.raises(UserError, match="[Ss]tep name"):
        PythonScriptStep("a.py", name=name, source_directory=str(src))


def test_step_and_data_names_of_200_characters_are_fine(workspace, src):
    out = OutputFileDatasetConfig()
    step = PythonScriptStep("a.py", name="s" * 200, source_directory=str(src), arguments=[out])
    assert len(out.name) <= 200
    PipelineData("d" * 200)
    with pytest.raises(UserError, match="PipelineData name .* too long"):
        PipelineData("d" * 201)
    assert step.name == "s" * 200


def test_a_long_default_data_reference_name_is_cut_and_kept_apart(workspace):
    store = workspace.get_default_datastore()
    a, b = store.path("p" * 300 + "/a"), store.path("p" * 300 + "/b")
    assert len(a.name) <= 200 and len(b.name) <= 200 and a.name != b.name


@pytest.mark.parametrize("name", ["x\n", "a\nb", "", "a b"])
def test_bad_parameter_names_are_refused(name):
    with pytest.raises(UserError, match="PipelineParameter name"):
        PipelineParameter(name, 1)


# -- registry names -----------------------------------------------------------------------------------------------
BAD_REGISTRY_NAMES = ["..", "a/b", "x\0y", "x\n", "-x", "_x", "r" * 251, ""]


@pytest.mark.parametrize("name", BAD_REGISTRY_NAMES)
def test_register_on_complete_names_are_checked(name):
    with pytest.raises(UserError, match="Dataset name"):
        OutputFileDatasetConfig("o").register_on_complete(name)


@pytest.mark.parametrize("name", BAD_REGISTRY_NAMES)
def test_dataset_names_are_checked(workspace, src, name):
    ds = Dataset.File.from_files(str(src))
    with pytest.raises(UserError, match="Dataset name"):
        ds.register(workspace, name)


@pytest.mark.parametrize("name", BAD_REGISTRY_NAMES)
def test_compute_target_names_are_checked(workspace, name):
    with pytest.raises(UserError, match="Compute target name"):
        ComputeTarget.create(workspace, name, LocalCompute.provisioning_configuration())
    assert set(workspace.compute_targets) == {"local", "docker"}


@pytest.mark.parametrize("name", BAD_REGISTRY_NAMES)
def test_datastore_names_are_checked_before_a_folder_is_made(workspace, tmp_path, name):
    with pytest.raises(UserError, match="Datastore name"):
        Datastore.register_local(workspace, name, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_good_registry_names_still_register(workspace, src, tmp_path):
    name = "my-data.v2_" + "r" * 239
    assert len(name) == 250
    assert Dataset.File.from_files(str(src)).register(workspace, name).name == name
    target = ComputeTarget.create(workspace, "cpu-1.small", LocalCompute.provisioning_configuration())
    assert target.name == "cpu-1.small"
    assert Datastore.register_local(workspace, "store-2.b", tmp_path / "s").name == "store-2.b"
    assert OutputFileDatasetConfig("o").register_on_complete("results.v1")._register_as == "results.v1"
