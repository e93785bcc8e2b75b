"""What makes a step rerun, end to end: edited helper modules, parameters, regenerate_outputs, allow_reuse."""
import pytest

from helpers import CHAIN_SCRIPTS, chain_steps, run_pipeline, steps_by_name, trace_lines
from mlpipe_jupyter import PipelineData, PipelineParameter, PythonScriptStep


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", CHAIN_SCRIPTS)


def reasons(run):
    return {s.name: s.get_details()["reuse_reason"] for s in run.get_steps()}


def test_editing_a_helper_module_reruns_the_step_and_its_downstream(workspace, src, tmp_path, write_scripts):
    trace = tmp_path / "trace.txt"
    first = run_pipeline(workspace, chain_steps(src, trace))
    write_scripts(src, {"train/helper.py": "def transform(x):\n    return x * 100\n"})
    second = run_pipeline(workspace, chain_steps(src, trace))

    assert second.get_status() == "Completed"
    assert {s.name: s.reused for s in second.get_steps()} == {"prep": True, "train": False, "evaluate": False}
    assert trace_lines(trace) == ["prep", "train", "evaluate", "train", "evaluate"]
    why = reasons(second)
    assert why["train"].startswith("Rerun") and "'helper.py'" in why["train"] and "train.py" not in why["train"]
    assert steps_by_name(first)["train"].id in why["train"]
    assert "input 'model' changed" in why["evaluate"]
    assert steps_by_name(second)["evaluate"].get_metrics() == {"score": 6.0}


def test_helper_edit_with_identical_output_reuses_downstream(workspace, src, tmp_path, write_scripts):
    trace = tmp_path / "trace.txt"
    first = run_pipeline(workspace, chain_steps(src, trace))
    write_scripts(src, {"train/helper.py": "def transform(x):\n    # same result, new code\n    return 10 * x\n"})
    second = run_pipeline(workspace, chain_steps(src, trace))

    assert second.get_status() == "Completed"
    assert {s.name: s.reused for s in second.get_steps()} == {"prep": True, "train": False, "evaluate": True}
    assert trace_lines(trace) == ["prep", "train", "evaluate", "train"]
    assert "'helper.py'" in reasons(second)["train"]
    new_eval = steps_by_name(second)["evaluate"]
    assert new_eval.get_details()["reused_from"] == steps_by_name(first)["evaluate"].id
    assert new_eval.get_metrics() == {"score": 0.6}


PARAM_SCRIPTS = {
    "p/use_param.py": """
        import os, sys
        from mlpipe_jupyter import Run
        out, count, trace = sys.argv[1], sys.argv[2], sys.argv[3]
        open(trace, "a").write("use_param\\n")
        run = Run.get_context()
        run.log("count_arg", int(count))
        run.log("count_env", int(os.environ["AML_PARAMETER_count"]))
        run.log("mode_env", os.environ["AML_PARAMETER_mode"])
        open(os.path.join(out, "count.txt"), "w").write(count)
    """,
    "q/consume.py": """
        import os, sys
        trace = sys.argv[2]
        open(trace, "a").write("consume\\n")
        print("read", open(os.path.join(sys.argv[1], "count.txt")).read())
    """,
    "r/independent.py": """
        import os, sys
        open(sys.argv[1], "a").write("independent\\n")
        print("AML_PARAMETER_count" in os.environ)
    """,
}


def param_steps(src, trace):
    count = PipelineParameter("count", 3)
    mode = PipelineParameter("mode", "fast")
    out = PipelineData("counted")
    use = PythonScriptStep("use_param.py", name="use_param", source_directory=str(src / "p"), outputs=[out],
                           arguments=[out, count, str(trace)], params={"mode": mode})
    consume = PythonScriptStep("consume.py", name="consume",
                               source_directory=str(src / "q"), inputs=[out], arguments=[out, str(trace)])
    independent = PythonScriptStep("independent.py", name="independent",
                                   source_directory=str(src / "r"), arguments=[str(trace)])
    return [consume, independent, use]


def test_parameter_change_reruns_only_its_consumers(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", PARAM_SCRIPTS)
    trace = tmp_path / "trace.txt"
    first = run_pipeline(workspace, param_steps(src, trace))
    assert first.get_status() == "Completed", first.get_details().get("error")
    assert steps_by_name(first)["use_param"].get_metrics() == {"count_arg": 3, "count_env": 3, "mode_env": "fast"}
    assert "False" in steps_by_name(first)["independent"].get_log_text()

    second = run_pipeline(workspace, param_steps(src, trace), pipeline_parameters={"count": 7})
    assert second.get_status() == "Completed"
    assert second.get_details()["parameters"] == {"count": 7, "mode": "fast"}
    assert {s.name: s.reused for s in second.get_steps()} == {
        "use_param": False, "consume": False, "independent": True}
    why = reasons(second)
    assert "parameter 'count' changed from 3 to 7" in why["use_param"]
    assert "mode" not in why["use_param"]
    assert "input 'counted' changed" in why["consume"]
    assert steps_by_name(second)["use_param"].get_metrics() == {"count_arg": 7, "count_env": 7, "mode_env": "fast"}
    assert "read 7" in steps_by_name(second)["consume"].get_log_text()

    # the same value again is a reuse of the second run; the default again is a reuse of the first
    third = run_pipeline(workspace, param_steps(src, trace), pipeline_parameters={"count": 7})
    assert all(s.reused for s in third.get_steps())
    fourth = run_pipeline(workspace, param_steps(src, trace))
    assert all(s.reused for s in fourth.get_steps())
    assert trace_lines(trace).count("use_param") == 2


def test_params_dict_change_reruns_with_reason(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", PARAM_SCRIPTS)
    trace = tmp_path / "trace.txt"
    run_pipeline(workspace, param_steps(src, trace))
    second = run_pipeline(workspace, param_steps(src, trace), pipeline_parameters={"mode": "slow"})
    step = steps_by_name(second)["use_param"]
    assert not step.reused
    assert "parameter 'mode' changed from \"fast\" to \"slow\"" in step.get_details()["reuse_reason"]
    assert step.get_metrics()["mode_env"] == "slow"
    # the output is the same bytes, so its consumer is reused
    assert steps_by_name(second)["consume"].reused


def test_regenerate_outputs_reruns_everything(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    run_pipeline(workspace, chain_steps(src, trace))
    second = run_pipeline(workspace, chain_steps(src, trace), regenerate_outputs=True)
    assert second.get_status() == "Completed"
    assert not any(s.reused for s in second.get_steps())
    assert trace_lines(trace) == ["prep", "train", "evaluate"] * 2
    for reason in reasons(second).values():
        assert reason.startswith("Rerun") and "regenerate_outputs=True" in reason


def test_allow_reuse_false_reruns_that_step_only(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    run_pipeline(workspace, chain_steps(src, trace, allow_reuse=False))
    second = run_pipeline(workspace, chain_steps(src, trace, allow_reuse=False))
    assert second.get_status() == "Completed"
    assert {s.name: s.reused for s in second.get_steps()} == {"prep": False, "train": True, "evaluate": True}
    assert "allow_reuse=False" in reasons(second)["prep"]
    assert trace_lines(trace) == ["prep", "train", "evaluate", "prep"]
