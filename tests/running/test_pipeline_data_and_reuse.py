"""A prep -> train -> evaluate chain through PipelineData, then an unchanged resubmit that reuses it all."""
import json

import pytest

from helpers import CHAIN_SCRIPTS, chain_steps, run_pipeline, statuses, steps_by_name, trace_lines
from mlpipe_jupyter import Pipeline


@pytest.fixture
def chain(tmp_path, write_scripts):
    write_scripts(tmp_path / "src", CHAIN_SCRIPTS)
    trace = tmp_path / "trace.txt"
    return chain_steps(tmp_path / "src", trace), trace


@pytest.mark.parametrize("layout", ["reversed", "nested", "last_only"])
def test_files_flow_through_pipeline_data(workspace, chain, layout):
    (prep, train, evaluate), trace = chain
    steps = {"reversed": [evaluate, train, prep], "nested": [[evaluate], [[train], prep]],
             "last_only": [evaluate]}[layout]
    run = run_pipeline(workspace, steps)

    assert run.get_status() == "Completed", run.get_details().get("error")
    assert statuses(run) == {"prep": "Completed", "train": "Completed", "evaluate": "Completed"}
    assert trace_lines(trace) == ["prep", "train", "evaluate"]  # producers ran before their consumers
    by_name = steps_by_name(run)
    assert (by_name["prep"].get_output_data("data").path / "numbers.txt").read_text() == "0\n1\n2\n3"
    assert json.loads((by_name["train"].get_output_data("model").path / "model.json").read_text()) == {"total": 60}
    assert by_name["evaluate"].get_metrics() == {"score": 0.6}


def test_producers_are_pulled_in(workspace, chain):
    (prep, train, evaluate), _ = chain
    assert [s.name for s in Pipeline(workspace, [evaluate]).steps] == ["evaluate", "train", "prep"]


def test_unchanged_resubmit_reuses_every_step(workspace, chain, tmp_path):
    (prep, train, evaluate), trace = chain
    first = run_pipeline(workspace, [evaluate])
    assert first.get_status() == "Completed"
    second = run_pipeline(workspace, [prep, train, evaluate])

    assert second.get_status() == "Completed"
    assert second.id != first.id
    assert trace_lines(trace) == ["prep", "train", "evaluate"]  # nothing ran a second time
    old, new = steps_by_name(first), steps_by_name(second)
    for name in ("prep", "train", "evaluate"):
        step = new[name]
        assert step.get_status() == "Completed"
        assert step.reused and not old[name].reused
        assert step.id != old[name].id
        details = step.get_details()
        assert details["reuse_reason"].startswith("Reused")
        assert details["reused_from"] == old[name].id

    # results of the reused steps are readable through the new run, from the same committed data
    assert new["train"].get_metrics() == {"total": 60}
    assert new["evaluate"].get_metrics() == {"score": 0.6}
    assert new["train"].get_output_data("model").path == old["train"].get_output_data("model").path
    assert new["prep"].get_output_data("data").path == old["prep"].get_output_data("data").path
    names = new["evaluate"].get_file_names()
    assert "outputs/report.txt" in names and "logs/std_log.txt" in names
    target = new["evaluate"].download_file("outputs/report.txt", str(tmp_path / "report.txt"))
    assert open(target).read() == "score=0.6\n"
    assert "evaluate score 0.6" in new["evaluate"].get_log_text()


def test_reuse_works_across_experiments_and_third_submit(workspace, chain):
    (prep, train, evaluate), trace = chain
    run_pipeline(workspace, [evaluate], experiment="one")
    run_pipeline(workspace, [evaluate], experiment="one")
    third = run_pipeline(workspace, [evaluate], experiment="two")
    assert third.get_status() == "Completed"
    assert all(s.reused for s in third.get_steps())
    assert trace_lines(trace) == ["prep", "train", "evaluate"]
    # a reuse of a reuse still points at the run that did the work
    first_train = steps_by_name(next(r for r in workspace.experiments["one"].get_runs()
                                     if not any(s.reused for s in r.get_steps())))["train"]
    assert steps_by_name(third)["train"].get_details()["reused_from"] == first_train.id
