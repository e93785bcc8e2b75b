"""A failing step: the run fails with its message, downstream steps are not run, nothing failed is reused."""
import pytest

from helpers import run_pipeline, statuses, steps_by_name, trace_lines, wait_until
from mlpipe_jupyter import ActivityFailedError, PipelineData, PythonScriptStep

SCRIPTS = {
    "ok.py": """
        import os, sys, time
        for _ in range(1200 if len(sys.argv) > 3 else 0):  # bounded wait for a file named in argv[3]
            if os.path.exists(sys.argv[3]):
                break
            time.sleep(0.05)
        open(sys.argv[2], "a").write("ok\\n")
        open(os.path.join(sys.argv[1], "x.txt"), "w").write("x")
    """,
    "bad.py": """
        import os, sys
        open(sys.argv[2], "a").write("bad\\n")
        print("reading", os.listdir(sys.argv[1]))
        print("last words: disk on fire")
        sys.exit(3)
    """,
    "after.py": """
        import sys
        open(sys.argv[1], "a").write("after\\n")
    """,
    "side.py": '''
        """Waits until the file named in argv[1] exists (bounded), then records that it ran."""
        import os, sys, time
        open(sys.argv[2] + ".started", "w").close()
        for _ in range(600):
            if os.path.exists(sys.argv[1]):
                break
            time.sleep(0.05)
        open(sys.argv[2], "a").write("side\\n")
    ''',
}


def build(src, trace, side_waits_for=None, ok_waits_for=None):
    """[ok, bad, after, side]: ok -> bad -> after, and side on its own."""
    data, dummy = PipelineData("data"), PipelineData("dummy")
    ok = PythonScriptStep("ok.py", name="ok", source_directory=str(src), outputs=[data],
                          arguments=[data, str(trace), *([str(ok_waits_for)] if ok_waits_for else [])])
    bad = PythonScriptStep("bad.py", name="bad", source_directory=str(src), inputs=[data], outputs=[dummy],
                           arguments=[data, str(trace)])
    after = PythonScriptStep("after.py", name="after",
                             source_directory=str(src), inputs=[dummy], arguments=[str(trace), dummy])
    side = PythonScriptStep("side.py", name="side", source_directory=str(src),
                            arguments=[str(side_waits_for or trace), str(trace)])
    return [ok, bad, after, side]


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


def test_failure_fails_the_run_and_skips_downstream(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    run = run_pipeline(workspace, build(src, trace)[:3])

    assert run.get_status() == "Failed"
    error = run.get_details()["error"]["message"]
    assert "bad" in error and "code 3" in error and "last words: disk on fire" in error
    assert statuses(run) == {"ok": "Completed", "bad": "Failed", "after": "Canceled"}
    steps = steps_by_name(run)
    assert steps["after"].get_details()["error"]["message"].startswith("Not run:")
    assert "'bad'" in steps["after"].get_details()["error"]["message"]
    assert "after" not in trace_lines(trace)
    # the failed step keeps its logs, but no outputs
    assert "last words: disk on fire" in steps["bad"].get_log_text()
    assert "logs/std_log.txt" in steps["bad"].get_file_names()
    assert steps["bad"].get_outputs() == {}
    with pytest.raises(ActivityFailedError, match="disk on fire"):
        run.wait_for_completion(raise_on_error=True)


def test_failed_step_is_never_reused(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    first = run_pipeline(workspace, build(src, trace)[:3])
    second = run_pipeline(workspace, build(src, trace)[:3])
    assert second.get_status() == "Failed"
    steps = steps_by_name(second)
    assert steps["ok"].reused and not steps["bad"].reused
    reason = steps["bad"].get_details()["reuse_reason"]
    assert "Failed" in reason and "only completed runs are reused" in reason
    assert steps_by_name(first)["bad"].id in reason
    assert trace_lines(trace) == ["ok", "bad", "bad"]


def build_root_failure(src, trace):
    """[bad, after, side] with bad first in the plan, so with max_concurrency=1 side starts after bad ended."""
    dummy = PipelineData("dummy")
    bad = PythonScriptStep("bad.py", name="bad",
                           source_directory=str(src), outputs=[dummy], arguments=[str(src), str(trace)])
    after = PythonScriptStep("after.py", name="after",
                             source_directory=str(src), inputs=[dummy], arguments=[str(trace), dummy])
    side = PythonScriptStep("side.py", name="side", source_directory=str(src), arguments=[str(trace), str(trace)])
    return [bad, after, side]


def test_independent_branch_continues_when_asked(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    run = run_pipeline(workspace, build_root_failure(src, trace), continue_on_step_failure=True, max_concurrency=1)
    assert run.get_status() == "Failed"
    assert statuses(run) == {"bad": "Failed", "after": "Canceled", "side": "Completed"}
    assert trace_lines(trace) == ["bad", "side"]


def test_independent_branch_is_not_started_after_a_failure(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    run = run_pipeline(workspace, build_root_failure(src, trace), continue_on_step_failure=False, max_concurrency=1)
    assert run.get_status() == "Failed"
    assert statuses(run) == {"bad": "Failed", "after": "Canceled", "side": "Canceled"}
    side = steps_by_name(run)["side"].get_details()["error"]["message"]
    assert side.startswith("Not run:") and "'bad' failed" in side
    assert "side" not in trace_lines(trace)


def test_running_independent_branch_is_stopped_after_a_failure(workspace, src, tmp_path):
    trace = tmp_path / "trace.txt"
    never = tmp_path / "never-created"
    # side is already running (waiting for a file nobody writes) when bad fails: ok waits for it to start
    steps = build(src, trace, side_waits_for=never, ok_waits_for=tmp_path / "trace.txt.started")
    run = run_pipeline(workspace, [steps[3], *steps[:3]], continue_on_step_failure=False, max_concurrency=2)
    assert run.get_status() == "Failed"
    assert statuses(run) == {"side": "Canceled", "ok": "Completed", "bad": "Failed", "after": "Canceled"}
    side = steps_by_name(run)["side"].get_details()["error"]["message"]
    assert "'bad' failed" in side
    assert "side" not in trace_lines(trace)
    wait_until(lambda: (tmp_path / "trace.txt.started").exists(), "side to have started")
