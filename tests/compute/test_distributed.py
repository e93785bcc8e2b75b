"""Distributed steps (PyTorchConfiguration, MpiConfiguration) on local compute and in Docker: the
processes start with the variables frameworks read and really meet over MASTER_ADDR/MASTER_PORT, rank
0's output is the step log and every rank's log is kept, a failing rank stops the rest, and the
number of processes is part of the reuse key."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distributed_scripts import ONE_RANK_FAILS, RENDEZVOUS
from helpers import WAIT_SECONDS, pids_with, run_pipeline, steps_by_name, wait_until
from mlpipe_jupyter import (Experiment, MpiConfiguration, PipelineData, PythonScriptStep, PyTorchConfiguration,
                            ScriptRunConfig, TensorflowConfiguration, UserError)
from mlpipe_jupyter.compat.exports import resolve
from mlpipe_jupyter.sdk.pipeline import Pipeline, pipeline_from_dict, pipeline_to_dict, pipeline_to_document


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", {"meet.py": RENDEZVOUS, "fails.py": ONE_RANK_FAILS})


def submit_script(ws, src, script, config, **kwargs):
    run = Experiment(ws, "dist").submit(ScriptRunConfig(str(src), script, distributed_job_config=config, **kwargs))
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    return run


def rank_variables(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if " variables " in line:
            found.append(dict(ast.literal_eval(line.split(" variables ", 1)[1])))  # a printed sorted item list
    return found


def test_two_pytorch_processes_meet_and_every_rank_keeps_its_log(workspace, src):
    run = submit_script(workspace, src, "meet.py", PyTorchConfiguration(process_count=2))
    assert run.get_status() == "Completed", run.get_details().get("error")
    log = (run.get_details()["logFiles"])
    step_log = open(log["logs/std_log.txt"]).read()
    assert "rank 0 met ranks [1]" in step_log
    assert rank_variables(step_log) == [{"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "NODE_RANK": "0",
                                         "OMPI_COMM_WORLD_RANK": None, "OMPI_COMM_WORLD_SIZE": None}]
    rank1 = open(log["user_logs/std_log_process_1.txt"]).read()
    assert "rank 1 got welcome" in rank1 and "rank 0" not in rank1
    assert open(log["user_logs/std_log_process_0.txt"]).read() == step_log
    assert "outputs/met.txt" in run.get_file_names()


def test_mpi_processes_get_the_open_mpi_variables_on_every_node(workspace, src):
    run = submit_script(workspace, src, "meet.py", MpiConfiguration(process_count_per_node=2, node_count=2))
    assert run.get_status() == "Completed", run.get_details().get("error")
    logs = run.get_details()["logFiles"]
    texts = [open(logs[f"user_logs/std_log_process_{r}.txt"]).read() for r in range(4)]
    seen = [rank_variables(t)[0] for t in texts]
    assert [(v["RANK"], v["LOCAL_RANK"], v["NODE_RANK"], v["OMPI_COMM_WORLD_RANK"]) for v in seen] == \
        [("0", "0", "0", "0"), ("1", "1", "0", "1"), ("2", "0", "1", "2"), ("3", "1", "1", "3")]
    assert {v["WORLD_SIZE"] for v in seen} == {v["OMPI_COMM_WORLD_SIZE"] for v in seen} == {"4"}
    assert "rank 0 met ranks [1, 2, 3]" in texts[0]


def test_a_failing_rank_fails_the_step_stops_the_others_and_says_which(workspace, src):
    run = submit_script(workspace, src, "fails.py", PyTorchConfiguration(process_count=2))
    assert run.get_status() == "Failed"
    error = run.get_details()["error"]["message"]
    assert "exited with code 3" in error and "rank 1" in error, error
    step_log = open(run.get_details()["logFiles"]["logs/std_log.txt"]).read()
    assert "[rank 1] rank 1 gives up" in step_log
    assert "rank 0 waiting" in step_log  # it was running, and was stopped


def test_a_pipeline_step_runs_distributed_through_its_runconfig_and_reuses_by_process_count(workspace, src):
    def build(count):
        out = PipelineData("met", datastore=workspace.get_default_datastore())
        config = ScriptRunConfig(str(src), "meet.py", distributed_job_config=PyTorchConfiguration(process_count=count))
        return PythonScriptStep("meet.py", name="train", arguments=[out], outputs=[out], source_directory=str(src),
                                runconfig=config.run_config)

    first = run_pipeline(workspace, [build(2)])
    assert first.get_status() == "Completed"
    step = steps_by_name(first)["train"]
    assert open(step.get_details()["logFiles"]["user_logs/std_log_process_1.txt"]).read().count("welcome") == 1
    assert pipeline_to_document(Pipeline(workspace, [build(2)]))["steps"][0]["distributed"] == \
        {"kind": "pytorch", "process_count_per_node": 2, "node_count": 1, "backend": "Nccl"}
    document = pipeline_to_dict(Pipeline(workspace, [build(2)]))
    assert pipeline_to_document(pipeline_from_dict(workspace, document))["steps"][0]["distributed"] == \
        document["steps"][0]["distributed"]
    again = run_pipeline(workspace, [build(2)])
    assert steps_by_name(again)["train"].reused
    three = run_pipeline(workspace, [build(3)])
    train = steps_by_name(three)["train"]
    assert not train.reused
    assert "distributed setting changed" in train.get_details()["reuse_reason"]
    assert "rank 0 met ranks [1, 2]" in open(train.get_details()["logFiles"]["logs/std_log.txt"]).read()


def test_bad_distributed_settings_are_refused_where_they_are_written(src):
    with pytest.raises(UserError, match="divide evenly"):
        ScriptRunConfig(str(src), "meet.py", distributed_job_config=PyTorchConfiguration(process_count=3, node_count=2))
    with pytest.raises(UserError, match="process_count_per_node"):
        ScriptRunConfig(str(src), "meet.py", distributed_job_config=MpiConfiguration(process_count_per_node=0))
    with pytest.raises(UserError, match="PyTorchConfiguration, MpiConfiguration"):
        ScriptRunConfig(str(src), "meet.py", distributed_job_config=object())
    with pytest.warns(UserWarning, match="one process"):
        ScriptRunConfig(str(src), "meet.py", distributed_job_config=TensorflowConfiguration())


def test_azure_defaults_and_import_path():
    assert vars(PyTorchConfiguration()) == {"communication_backend": "Nccl", "process_count": None, "node_count": 1}
    assert vars(MpiConfiguration()) == {"process_count_per_node": 1, "node_count": 1}
    assert resolve("azureml.core.runconfig", "PyTorchConfiguration") is PyTorchConfiguration
    assert resolve("azureml.core.runconfig", "MpiConfiguration") is MpiConfiguration


def test_an_azure_driver_trains_with_two_processes_unchanged(tmp_path, write_scripts):
    write_scripts(tmp_path / "src", {"meet.py": RENDEZVOUS})
    (tmp_path / "driver.py").write_text(textwrap.dedent("""
        from azureml.core import Workspace, Experiment, ScriptRunConfig
        from azureml.core.runconfig import PyTorchConfiguration
        ws = Workspace.from_config()
        src = ScriptRunConfig(source_directory="src", script="meet.py", compute_target="local",
                              distributed_job_config=PyTorchConfiguration(process_count=2))
        run = Experiment(ws, "pytorch-distr").submit(src)
        run.wait_for_completion(show_output=True)
        print("files", sorted(f for f in run.get_file_names() if f.startswith("user_logs/std_log_process")))
    """))
    done = subprocess.run([str(Path(sys.executable).with_name("mlpipe")), "python", "driver.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rank 0 met ranks [1]" in done.stdout
    assert "files ['user_logs/std_log_process_0.txt', 'user_logs/std_log_process_1.txt']" in done.stdout


def test_two_processes_meet_inside_one_container(workspace, src, tmp_path, docker_engine):
    out = PipelineData("met", datastore=workspace.get_default_datastore())
    config = ScriptRunConfig(str(src), "meet.py", distributed_job_config=PyTorchConfiguration(process_count=2))
    train = PythonScriptStep("meet.py", name="train", arguments=[out], outputs=[out], source_directory=str(src),
                             compute_target="docker", runconfig=config.run_config)
    run = run_pipeline(workspace, [train])
    assert run.get_status() == "Completed", run.get_details().get("error")
    step = steps_by_name(run)["train"]
    logs = step.get_details()["logFiles"]
    assert "rank 0 met ranks [1]" in open(logs["logs/std_log.txt"]).read()
    assert "rank 1 cwd /mlpipe/wd" in open(logs["user_logs/std_log_process_1.txt"]).read()  # in the container
    step.get_output_data("met").download(str(tmp_path / "got"))
    assert [p.read_text() for p in (tmp_path / "got").rglob("met.txt")] == ["1"]


def test_cancel_stops_every_rank(workspace, src):
    (src / "sleepy.py").write_text("import os, time\nprint('rank', os.environ['RANK'], 'up', flush=True)\n"
                                   "time.sleep(600)\n")
    marker = str(src / "sleepy-marker")  # an argument: what finds the ranks' processes from out here
    run = Experiment(workspace, "dist").submit(ScriptRunConfig(
        str(src), "sleepy.py", arguments=[marker], distributed_job_config=PyTorchConfiguration(process_count=3)))
    wait_until(lambda: len(pids_with(marker)) >= 4, "three ranks and their launcher to run")
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"
    wait_until(lambda: not pids_with(marker), "no rank left running", timeout=15)
