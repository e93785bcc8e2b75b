"""ParallelRunStep end to end: real worker processes over files and tables, retries, thresholds, logs."""
from pathlib import Path

import pytest

from helpers import run_pipeline, steps_by_name
from mlpipe_jupyter import (Dataset, DatasetConsumptionConfig, Environment, OutputFileDatasetConfig, ParallelRunConfig,
                            ParallelRunStep, PipelineData, PipelineParameter, PythonScriptStep, UserError)

# init() and each run() call leave a line each in a trace folder, one file per process, so the test
# sees which process did what; the first run() of a process waits for a second process to start one,
# which only happens when two really run at once.
SCORE = """
    import argparse, os, time
    from mlpipe_jupyter import EntryScript

    def trace(line):
        with open(os.path.join(args.trace, str(os.getpid())), "a") as f:
            f.write(line + "\\n")

    def init():
        global args, met
        parser = argparse.ArgumentParser()
        parser.add_argument("--trace")
        parser.add_argument("--rendezvous", type=int, default=0)
        args, _ = parser.parse_known_args()
        met = not args.rendezvous
        trace("init")
        EntryScript().logger.info("init in %s", os.getpid())
        print("printed by init")

    def run(mini_batch):
        global met
        if not met:
            os.makedirs(os.path.join(args.trace, "started"), exist_ok=True)
            open(os.path.join(args.trace, "started", str(os.getpid())), "w").close()
            deadline = time.monotonic() + 20
            while len(os.listdir(os.path.join(args.trace, "started"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            met = len(os.listdir(os.path.join(args.trace, "started"))) >= 2
            trace("met" if met else "alone")
        out = []
        for path in mini_batch:
            name = os.path.basename(path)
            if name.startswith("bad"):
                raise ValueError(f"cannot score {name}")
            if name.startswith("hang") and not os.path.exists(os.path.join(args.trace, "hung")):
                open(os.path.join(args.trace, "hung"), "w").close()
                time.sleep(60)
            if name.startswith("crash") and not os.path.exists(os.path.join(args.trace, "crashed")):
                open(os.path.join(args.trace, "crashed"), "w").close()
                os._exit(3)
            if name.startswith("skip"):
                continue  # no result: counts as a failed item
            out.append(f"{name} {len(open(path).read())}")
        trace("run " + ",".join(os.path.basename(p) for p in mini_batch))
        return out
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def make_files(folder: Path, names) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name * 2)
    return folder


def file_step(tmp_path, write_scripts, names, name="score", output_action="append_row", arguments=(), **config):
    src = write_scripts(tmp_path / "src", {"score.py": SCORE})
    ds = Dataset.File.from_files(str(make_files(tmp_path / "images", names)))
    settings = dict(error_threshold=-1, node_count=1, process_count_per_node=2, mini_batch_size=2)
    settings.update(config)
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="score.py", source_directory=str(src),
                            output_action=output_action, compute_target="local", **settings)
    output = PipelineData("scores") if output_action == "append_row" else None
    trace = tmp_path / "trace"
    trace.mkdir(exist_ok=True)
    step = ParallelRunStep(name=name, parallel_run_config=prc, inputs=[ds.as_named_input("images")], output=output,
                           arguments=["--trace", str(trace), *arguments])
    return step, trace


def run_file(step, name) -> str:
    return (step._run_dir() / name).read_text()


def traces(trace: Path) -> dict:
    return {p.name: p.read_text().splitlines() for p in trace.iterdir() if p.is_file() and p.name not in ("hung", "crashed")}


def test_files_are_scored_in_parallel_processes_and_appended_in_order(workspace, tmp_path, write_scripts):
    names = [f"img{i}.txt" for i in range(7)]
    step, trace = file_step(tmp_path, write_scripts, names, arguments=["--rendezvous", "1"])
    run = run_pipeline(workspace, [step])

    assert run.get_status() == "Completed", run.get_details().get("error")
    score = steps_by_name(run)["score"]
    rows = (score.get_output_data("scores").path / "parallel_run_step.txt").read_text().splitlines()
    assert rows == [f"{n} {len(n) * 2}" for n in names]  # every file once, in mini-batch order
    per_process = traces(trace)
    assert len(per_process) == 2  # process_count_per_node
    for lines in per_process.values():
        assert lines.count("init") == 1 and lines[0] == "init"  # init() once per worker, before any run()
        assert "met" in lines  # both ran at the same moment
    batches = sorted(line for lines in per_process.values() for line in lines if line.startswith("run "))
    assert batches == ["run img0.txt,img1.txt", "run img2.txt,img3.txt", "run img4.txt,img5.txt", "run img6.txt"]
    log = run_file(score, "logs/std_log.txt")
    assert "4 of 4 mini batches processed (0 failed); files: 7 succeeded, 0 failed." in log
    files = score.get_file_names()
    assert "logs/user/stdout/127.0.0.1/process000.stdout.txt" in files
    assert "printed by init" in run_file(score, "logs/user/stdout/127.0.0.1/process000.stdout.txt")
    assert "init in" in run_file(score, "logs/user/entry_script_log/127.0.0.1/process001.log.txt")
    assert "Result: completed." in run_file(score, "logs/job_progress_overview.txt")


def test_unchanged_resubmit_reuses_and_an_edited_entry_script_reruns(workspace, tmp_path, write_scripts):
    step, trace = file_step(tmp_path, write_scripts, ["a.txt", "b.txt"])
    first = run_pipeline(workspace, [step])
    again = run_pipeline(workspace, [step])
    assert first.get_status() == again.get_status() == "Completed"
    assert steps_by_name(again)["score"].reused

    script = tmp_path / "src" / "score.py"
    script.write_text(script.read_text().replace('f"{name} {len(open(path).read())}"', 'f"{name} edited"'))
    third = run_pipeline(workspace, [step])
    score = steps_by_name(third)["score"]
    assert not score.reused
    assert (score.get_output_data("scores").path / "parallel_run_step.txt").read_text() == "a.txt edited\nb.txt edited\n"


def test_a_failing_batch_is_retried_then_fails_the_step_over_error_threshold(workspace, tmp_path, write_scripts):
    step, _ = file_step(tmp_path, write_scripts, ["a.txt", "bad.txt", "c.txt"], mini_batch_size=1,
                        error_threshold=0, run_max_try=2, process_count_per_node=1)
    run = run_pipeline(workspace, [step])

    score = steps_by_name(run)["score"]
    assert score.get_status() == "Failed"
    error = score.get_details()["error"]["message"]
    assert "1 files failed, more than error_threshold=0" in error
    log = run_file(score, "logs/std_log.txt")
    assert "mini batch 1 (bad.txt) failed, try 1 of 2: run() raised ValueError: cannot score bad.txt" in log
    assert "try 2 of 2" in log
    assert "ValueError: cannot score bad.txt" in run_file(score, "logs/user/error/127.0.0.1/process000.txt")
    assert "try 2" in run_file(score, "logs/user/error.txt")


def test_failures_within_the_limits_leave_the_step_completed(workspace, tmp_path, write_scripts):
    step, _ = file_step(tmp_path, write_scripts, ["a.txt", "bad.txt", "c.txt", "skip.txt"], mini_batch_size=1,
                        error_threshold=-1, allowed_failed_count=-1, run_max_try=1)
    run = run_pipeline(workspace, [step])

    score = steps_by_name(run)["score"]
    assert score.get_status() == "Completed", score.get_details().get("error")
    assert (score.get_output_data("scores").path / "parallel_run_step.txt").read_text() == "a.txt 10\nc.txt 10\n"
    assert "files: 2 succeeded, 2 failed." in run_file(score, "logs/std_log.txt")


@pytest.mark.parametrize("names, limit, failed", [
    (["a.txt", "skip1.txt", "skip2.txt"], dict(error_threshold=1), "2 files failed, more than error_threshold=1"),
    (["a.txt", "b.txt", "bad.txt", "c.txt"], dict(allowed_failed_count=0),
     "1 mini batches failed, more than allowed_failed_count=0"),
    (["a.txt", "b.txt", "bad.txt", "c.txt"], dict(allowed_failed_percent=20),
     "50.0% of the mini batches failed, more than allowed_failed_percent=20"),
])
def test_each_limit_fails_the_step(workspace, tmp_path, write_scripts, names, limit, failed):
    settings = dict(error_threshold=-1, run_max_try=1, process_count_per_node=1)  # two files a batch
    settings.update(limit)
    step, _ = file_step(tmp_path, write_scripts, names, **settings)
    run = run_pipeline(workspace, [step])
    score = steps_by_name(run)["score"]
    assert score.get_status() == "Failed"
    assert failed in score.get_details()["error"]["message"]


def test_a_run_past_its_timeout_is_killed_and_retried(workspace, tmp_path, write_scripts):
    step, trace = file_step(tmp_path, write_scripts, ["a.txt", "hang.txt"], mini_batch_size=1,
                            run_invocation_timeout=1, run_max_try=2, process_count_per_node=1)
    run = run_pipeline(workspace, [step])

    score = steps_by_name(run)["score"]
    assert score.get_status() == "Completed", score.get_details().get("error")
    assert "run() did not return within run_invocation_timeout=1s" in run_file(score, "logs/std_log.txt")
    assert (score.get_output_data("scores").path / "parallel_run_step.txt").read_text() == "a.txt 10\nhang.txt 16\n"
    assert sum(lines.count("init") for lines in traces(trace).values()) == 2  # the replacement ran init() too


def test_a_worker_that_dies_is_replaced_and_its_batch_retried(workspace, tmp_path, write_scripts):
    step, _ = file_step(tmp_path, write_scripts, ["a.txt", "crash.txt", "c.txt"], mini_batch_size=1,
                        run_max_try=2, process_count_per_node=1)
    run = run_pipeline(workspace, [step])

    score = steps_by_name(run)["score"]
    assert score.get_status() == "Completed", score.get_details().get("error")
    assert "run() ended its worker process (exit code 3)" in run_file(score, "logs/std_log.txt")
    assert (score.get_output_data("scores").path / "parallel_run_step.txt").read_text() == \
        "a.txt 10\nc.txt 10\ncrash.txt 18\n"  # files in name order


def test_a_failing_init_fails_the_step_naming_it(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"score.py": "def init():\n    raise RuntimeError('no model')\n\n"
                                                       "def run(batch):\n    return batch\n"})
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="score.py", source_directory=str(src),
                            output_action="summary_only", error_threshold=-1, compute_target="local", node_count=1)
    ds = Dataset.File.from_files(str(make_files(tmp_path / "in", ["a.txt"])))
    run = run_pipeline(workspace, [ParallelRunStep("score", prc, [ds.as_named_input("files")])])
    score = steps_by_name(run)["score"]
    assert score.get_status() == "Failed"
    assert "init() of the entry script failed in process000: RuntimeError: no model" in \
        score.get_details()["error"]["message"]


TABLE_SCRIPT = """
    def init():
        pass

    def run(mini_batch):
        mini_batch["double"] = mini_batch["x"] * 2
        return mini_batch[["id", "double"]]
"""


def test_a_table_is_cut_by_size_within_each_file_and_rows_come_back_space_separated(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"table.py": TABLE_SCRIPT})
    data = tmp_path / "table"
    data.mkdir()
    (data / "part1.csv").write_text("id,x\n" + "".join(f"{i},{i}\n" for i in range(300)))
    (data / "part2.csv").write_text("id,x\n" + "".join(f"{i},{i}\n" for i in range(300, 310)))
    expected_batches = sum(-(-f.stat().st_size // 1024) for f in data.iterdir())
    assert expected_batches >= 3
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="table.py", source_directory=str(src),
                            output_action="append_row", error_threshold=0, compute_target="local", node_count=1,
                            mini_batch_size="1KB", process_count_per_node=2, append_row_file_name="doubled.txt")
    out = OutputFileDatasetConfig("doubled")
    step = ParallelRunStep("double", prc, [Dataset.Tabular.from_delimited_files(str(data)).as_named_input("rows")],
                           output=out)
    run = run_pipeline(workspace, [step])

    assert run.get_status() == "Completed", run.get_details().get("error")
    double = steps_by_name(run)["double"]
    rows = (double.get_output_data("doubled").path / "doubled.txt").read_text().splitlines()
    assert rows == [f"{i} {2 * i}" for i in range(310)]
    log = run_file(double, "logs/std_log.txt")
    assert f"{expected_batches} mini batches (mini_batch_size=1KB)" in log
    assert "records: 310 succeeded, 0 failed." in log


def test_summary_only_writes_where_entry_script_says_and_a_parameter_sets_the_batch_size(
        workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"copy.py": """
        import os, shutil
        from mlpipe_jupyter import EntryScript

        def run(mini_batch):
            out = EntryScript().output_dir
            for path in mini_batch:
                shutil.copy(path, os.path.join(out, os.path.basename(path)))
            return [len(mini_batch)] * len(mini_batch)
    """})
    batch = PipelineParameter("batch", default_value=1)
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="copy.py", source_directory=str(src),
                            output_action="summary_only", error_threshold=0, compute_target="local", node_count=1,
                            mini_batch_size=batch, process_count_per_node=1)
    ds = Dataset.File.from_files(str(make_files(tmp_path / "in", ["a.txt", "b.txt", "c.txt"])))
    out = PipelineData("copies")
    step = ParallelRunStep("copy", prc, [ds.as_named_input("files")], output=out)
    check = PythonScriptStep("check.py", name="check", arguments=[out], source_directory=str(write_scripts(
        tmp_path / "check", {"check.py": "import os, sys\nprint(sorted(os.listdir(sys.argv[1])))\n"})))
    run = run_pipeline(workspace, [step, check], pipeline_parameters={"batch": 2})

    assert run.get_status() == "Completed", run.get_details().get("error")
    by_name = steps_by_name(run)
    assert sorted(p.name for p in by_name["copy"].get_output_data("copies").path.iterdir()) == ["a.txt", "b.txt", "c.txt"]
    assert "2 mini batches (mini_batch_size=2)" in run_file(by_name["copy"], "logs/std_log.txt")
    assert "['a.txt', 'b.txt', 'c.txt']" in run_file(by_name["check"], "logs/std_log.txt")


# -- checked before anything runs ------------------------------------------------------------------------------
def config(**changes):
    settings = dict(environment=Environment("batch"), entry_script="score.py", error_threshold=10,
                    output_action="append_row", compute_target="local", node_count=1)
    settings.update(changes)
    return ParallelRunConfig(**settings)


def test_defaults_are_azures():
    prc = config()
    assert (prc.process_count_per_node, prc.mini_batch_size, prc.logging_level, prc.run_invocation_timeout,
            prc.run_max_try, prc.append_row_file_name, prc.allowed_failed_count, prc.allowed_failed_percent) == \
        (None, None, "INFO", 60, 3, None, None, None)


@pytest.mark.parametrize("changes, culprit", [
    (dict(environment=None), "environment"),
    (dict(entry_script=""), "entry_script"),
    (dict(output_action="append"), "output_action"),
    (dict(error_threshold=-2), "error_threshold"),
    (dict(error_threshold="5"), "error_threshold"),
    (dict(allowed_failed_count=-3), "allowed_failed_count"),
    (dict(allowed_failed_percent=101), "allowed_failed_percent"),
    (dict(mini_batch_size="10 MiB"), "mini_batch_size"),
    (dict(mini_batch_size=0), "mini_batch_size"),
    (dict(process_count_per_node=0), "process_count_per_node"),
    (dict(node_count=0), "node_count"),
    (dict(run_invocation_timeout=0), "run_invocation_timeout"),
    (dict(run_max_try=0), "run_max_try"),
    (dict(logging_level="LOUD"), "logging_level"),
    (dict(append_row_file_name="out/rows.txt"), "append_row_file_name"),
    (dict(mini_batch_size=PipelineParameter("size", "big")), "mini_batch_size"),
])
def test_a_bad_setting_is_named(changes, culprit):
    with pytest.raises(UserError, match=culprit):
        config(**changes)


@pytest.mark.parametrize("case, culprit", [
    ("name", "3 to 32 lowercase"),
    ("no_output", "pass output="),
    ("unnamed_dataset", "as_named_input"),
    ("mixed_inputs", "must all be FileDatasets or all TabularDatasets \\('f' is a FileDataset, 't' is a TabularDataset"),
    ("reserved_argument", "'--mini_batch_size' is one ParallelRunStep sets itself"),
    ("positional_argument", "keyword style"),
    ("missing_entry_script", "entry_script 'missing.py' is not a file"),
])
def test_a_bad_step_is_refused_naming_the_culprit(tmp_path, write_scripts, case, culprit):
    src = write_scripts(tmp_path / "src", {"score.py": SCORE})
    files = Dataset.File.from_files(str(make_files(tmp_path / "in", ["a.txt"])))
    table = Dataset.Tabular.from_delimited_files(str(tmp_path / "in" / "a.txt"))
    kwargs = dict(name="score", parallel_run_config=config(source_directory=str(src)),
                  inputs=[files.as_named_input("files")], output=PipelineData("out"))
    kwargs.update({"name": dict(name="Score_1"), "no_output": dict(output=None),
                   "unnamed_dataset": dict(inputs=[files]),
                   "mixed_inputs": dict(inputs=[files.as_named_input("f"), table.as_named_input("t")]),
                   "reserved_argument": dict(arguments=["--mini_batch_size", "3"]),
                   "positional_argument": dict(arguments=["value"]),
                   "missing_entry_script": dict(parallel_run_config=config(source_directory=str(src),
                                                                           entry_script="missing.py"))}[case])
    with pytest.raises(UserError, match=culprit):
        ParallelRunStep(**kwargs)


def test_another_steps_output_is_the_input_and_a_side_input_reaches_every_process(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {
        "make.py": """
            import os, sys
            for i in range(3):
                open(os.path.join(sys.argv[1], f"n{i}.txt"), "w").write(str(i))
        """,
        "label.py": """
            import argparse, os

            def init():
                global labels
                parser = argparse.ArgumentParser()
                parser.add_argument("--labels")
                args, _ = parser.parse_known_args()
                labels = open(os.path.join(args.labels, "labels.txt")).read().split()

            def run(mini_batch):
                return [f"{os.path.basename(p)} {labels[int(open(p).read())]}" for p in mini_batch]
        """})
    numbers = PipelineData("numbers")
    make = PythonScriptStep("make.py", name="make", arguments=[numbers], outputs=[numbers], source_directory=str(src))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "labels.txt").write_text("zero one two")
    labels = Dataset.File.from_files(str(tmp_path / "labels")).as_named_input("labels").as_mount()
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="label.py", source_directory=str(src),
                            output_action="append_row", error_threshold=0, compute_target="local", node_count=1,
                            process_count_per_node=2, mini_batch_size=1)
    step = ParallelRunStep("label", prc, inputs=[numbers], output=PipelineData("labelled"), side_inputs=[labels],
                           arguments=["--labels", labels])
    run = run_pipeline(workspace, [make, step])

    assert run.get_status() == "Completed", run.get_details().get("error")
    label = steps_by_name(run)["label"]
    assert (label.get_output_data("labelled").path / "parallel_run_step.txt").read_text() == \
        "n0.txt zero\nn1.txt one\nn2.txt two\n"


def test_a_pipeline_parameter_chooses_the_dataset_at_submit(workspace, tmp_path, write_scripts):
    src = write_scripts(tmp_path / "src", {"names.py": "import os\n\ndef run(batch):\n"
                                                       "    return [os.path.basename(p) for p in batch]\n"})
    first = Dataset.File.from_files(str(make_files(tmp_path / "one", ["a", "b"])))
    second = Dataset.File.from_files(str(make_files(tmp_path / "two", ["x", "y", "z"]))).register(workspace, "two")
    prc = ParallelRunConfig(environment=Environment("batch"), entry_script="names.py", source_directory=str(src),
                            output_action="append_row", error_threshold=0, compute_target="local", node_count=1)
    files = PipelineParameter("files", default_value=first)
    step = ParallelRunStep("names", prc, [DatasetConsumptionConfig("images", files)], output=PipelineData("out"))

    for chosen, expected in (({}, "a\nb\n"), ({"files": second}, "x\ny\nz\n")):
        run = run_pipeline(workspace, [step], pipeline_parameters=chosen)
        assert run.get_status() == "Completed", run.get_details().get("error")
        names = steps_by_name(run)["names"]
        assert (names.get_output_data("out").path / "parallel_run_step.txt").read_text() == expected
