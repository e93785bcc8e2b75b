"""The ``mlpipe`` command, run for real as a subprocess in a temporary workspace."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlpipe_jupyter import Run, Workspace

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
CLI = [sys.executable, "-m", "mlpipe_jupyter.cli"]

PREP = """\
import argparse, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser(); p.add_argument("--out"); p.add_argument("--n", type=int)
a = p.parse_args()
print("prep writing", a.n)
open(os.path.join(a.out, "data.txt"), "w").write(str(a.n))
Run.get_context().log("rows", a.n)
"""
TRAIN = """\
import argparse, os
from mlpipe_jupyter import Run
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--model"); p.add_argument("--scale")
a = p.parse_args()
n = int(open(os.path.join(a.data, "data.txt")).read())
print("train read", n, "scale", a.scale)
open(os.path.join(a.model, "model.txt"), "w").write(f"{n} * {a.scale}")
run = Run.get_context(); run.log("acc", 0.5); run.log("acc", 0.9)
"""
SLOW = """\
import os, sys, time
print("started", flush=True)
for _ in range(1200):  # waits for the test to create the gate file (or to be stopped)
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.05)
print("after gate", flush=True)
"""
BOOM = """\
print("about to fail")
raise SystemExit("boom: bad input data")
"""


def cli(*args, cwd):
    return subprocess.run([*CLI, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=60)


class Live:
    """A CLI process whose stdout lines can be awaited one by one."""

    def __init__(self, *args, cwd):
        self.proc = subprocess.Popen([*CLI, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.seen: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, text, timeout=30) -> str:
        while True:
            line = self._lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"process ended before printing {text!r}; saw {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def finish(self, timeout=30) -> tuple[int, str, str]:
        rc = self.proc.wait(timeout=timeout)
        rest = []
        while (line := self._lines.get(timeout=timeout)) is not None:
            rest.append(line)
        self.seen += rest
        return rc, "\n".join(self.seen), self.proc.stderr.read()


@pytest.fixture
def gate(tmp_path):
    """The file a slow step waits for; created at teardown too, so a failed test leaves nothing running."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def run_id_of(output: str) -> str:
    return next(w for w in output.split() if w.startswith("run_"))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace made by `mlpipe init`, with saved pipelines, and three runs of the 2-step one."""
    from mlpipe_jupyter import Pipeline, PipelineData, PipelineParameter, PythonScriptStep, Workspace

    root = tmp_path_factory.mktemp("cliws")
    init = cli("init", "demo", cwd=root)
    assert init.returncode == 0, init.stderr
    src = root / "src"
    src.mkdir()
    for name, text in (("prep.py", PREP), ("train.py", TRAIN), ("slow.py", SLOW), ("boom.py", BOOM)):
        (src / name).write_text(text)
    workspace = Workspace(root)
    n, scale, gate = PipelineParameter("n", 5), PipelineParameter("scale", 2.0), PipelineParameter("gate", "none")
    data, model = PipelineData("data"), PipelineData("model")
    prep = PythonScriptStep("prep.py", name="prep", source_directory=str(src), arguments=["--out", data, "--n", n],
                            outputs=[data])
    train = PythonScriptStep("train.py", name="train", source_directory=str(src), inputs=[data], outputs=[model],
                             arguments=["--data", data, "--model", model, "--scale", scale])
    Pipeline(workspace, [train]).save(root / "pipe.yaml")
    slow = PythonScriptStep("slow.py", name="slow", source_directory=str(src), arguments=[gate], allow_reuse=False)
    Pipeline(workspace, [slow]).save(root / "slow.yaml")
    Pipeline(workspace, [PythonScriptStep("boom.py", name="boom", source_directory=str(src))]).save(root / "boom.json")
    (root / "bad.yaml").write_text("steps: 3\n")

    first = cli("run", "pipe.yaml", cwd=root)
    second = cli("run", "pipe.yaml", cwd=root)
    changed = cli("run", "pipe.yaml", "--param", "scale=3", cwd=root)
    return {"root": root, "init": init, "first": first, "second": second, "changed": changed}


def test_init_creates_a_workspace_once(ws):
    assert "Created workspace 'demo'" in ws["init"].stdout
    assert (ws["root"] / ".mlpipe" / "config.json").is_file()
    again = cli("init", "demo", cwd=ws["root"])
    assert again.returncode == 2 and again.stderr.startswith("mlpipe: error:") and "already exists" in again.stderr


def test_run_streams_steps_and_ends_with_a_summary(ws):
    r = ws["first"]
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "[prep] prep writing 5" in out and "[train] train read 5 scale 2.0" in out
    assert "==> prep: Completed" in out and "==> train: Completed" in out
    assert "[prep] metric rows = 5" in out
    assert "status=Completed" in out and out.count("Rerun: no earlier run of this step") == 2


def test_second_run_reuses_both_steps_and_says_why(ws):
    r = ws["second"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "==> prep: Completed (reused)" in r.stdout and "==> train: Completed (reused)" in r.stdout
    assert r.stdout.count("Reused: nothing changed since step run") == 2
    assert "train read" not in r.stdout


def test_param_change_reruns_only_the_consumer(ws):
    r = ws["changed"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "==> prep: Completed (reused)" in r.stdout
    assert "[train] train read 5 scale 3" in r.stdout
    assert "parameter 'scale' changed from 2.0 to 3" in r.stdout


def test_runs_lists_a_table_newest_first(ws):
    r = cli("runs", "--experiment", "pipe", cwd=ws["root"])
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.strip().splitlines()
    assert header.split() == ["ID", "EXPERIMENT", "STATUS", "STARTED", "DURATION", "REUSED", "RAN"]
    ids = [run_id_of(ws[k].stdout) for k in ("changed", "second", "first")]
    assert [row.split()[0] for row in rows] == ids
    # id, experiment, status, date, time, duration, reused, ran
    assert [row.split()[2] for row in rows] == ["Completed"] * 3
    assert [tuple(row.split()[6:]) for row in rows] == [("1", "1"), ("2", "0"), ("0", "2")]
    assert len(cli("runs", "--limit", "1", cwd=ws["root"]).stdout.strip().splitlines()) == 2
    assert "No runs in experiment 'nothing'" in cli("runs", "-e", "nothing", cwd=ws["root"]).stdout


def test_show_explains_each_step_with_metrics_and_outputs(ws):
    run_id = run_id_of(ws["changed"].stdout)
    r = cli("show", run_id, cwd=ws["root"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"Run {run_id}" in out and "status=Completed" in out and "scale=3" in out
    assert "why: Reused: nothing changed" in out and "why: Rerun: parameter 'scale' changed from 2.0 to 3" in out
    prep = Run.get(Workspace(ws["root"]), run_id).find_step_run("prep")[0]
    data_path = prep.get_output_data("data").path
    assert Path(data_path).is_dir()
    assert f"prep: outputs: data -> {data_path}; metrics: rows=5" in out  # where to look next
    assert "train: outputs: model -> " in out and "; metrics: acc=[2 values, last 0.9]" in out


def test_a_run_is_named_by_a_unique_beginning_of_its_id_or_latest(ws):
    changed, first = run_id_of(ws["changed"].stdout), run_id_of(ws["first"].stdout)
    by_prefix = cli("show", changed[:-3], cwd=ws["root"])
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert f"Run {changed}" in by_prefix.stdout
    latest = cli("logs", "latest", "--step", "train", cwd=ws["root"])  # the newest run: the changed one
    assert latest.stdout.splitlines() == ["train read 5 scale 3"], latest.stderr
    several = cli("show", "run_", cwd=ws["root"])
    assert several.returncode == 2 and "is the beginning of several runs" in several.stderr
    assert changed in several.stderr and first in several.stderr


def test_logs_of_all_steps_or_one(ws):
    run_id = run_id_of(ws["changed"].stdout)
    r = cli("logs", run_id, cwd=ws["root"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[prep] prep writing 5", "[train] train read 5 scale 3"]
    one = cli("logs", run_id, "--step", "train", cwd=ws["root"])
    assert one.stdout.splitlines() == ["train read 5 scale 3"]
    bad = cli("logs", run_id, "--step", "nope", cwd=ws["root"])
    assert bad.returncode == 2 and "has no step named 'nope'" in bad.stderr


def test_logs_follow_from_another_process_prints_new_lines_until_the_run_ends(ws, gate):
    runner = Live("run", "slow.yaml", "--param", f"gate={gate}", cwd=ws["root"])
    run_id = run_id_of(runner.wait_for("started; Ctrl-C"))
    runner.wait_for("[slow] started")
    follower = Live("logs", run_id, "--follow", cwd=ws["root"])
    assert follower.wait_for("started") == "[slow] started"
    gate.touch()  # only now can the step print its next line
    rc, out, err = follower.finish()
    assert rc == 0, err
    assert out.splitlines()[-1] == "[slow] after gate"
    assert f"run {run_id} Completed" in err
    rc, out, _ = runner.finish()
    assert rc == 0 and "[slow] after gate" in out


def test_cancel_from_another_process_stops_a_detached_run(ws, gate):
    submitted = cli("run", "slow.yaml", "--detach", "--param", f"gate={gate}", cwd=ws["root"])
    assert submitted.returncode == 0, submitted.stderr
    run_id = run_id_of(submitted.stdout)
    follower = Live("logs", run_id, "--follow", cwd=ws["root"])
    follower.wait_for("[slow] started")
    r = cli("cancel", run_id, cwd=ws["root"])
    assert r.returncode == 0, r.stderr
    assert f"Run {run_id}: Canceled" in r.stdout
    rc, out, err = follower.finish()
    assert rc == 0 and "after gate" not in out and "Canceled" in err
    shown = cli("show", run_id, cwd=ws["root"]).stdout
    assert "status=Canceled" in shown and "Canceled by the user" in shown
    assert "already ended (Canceled)" in cli("cancel", run_id, cwd=ws["root"]).stdout


def test_ctrl_c_cancels_the_run_and_exits_130(ws, gate):
    runner = Live("run", "slow.yaml", "--param", f"gate={gate}", cwd=ws["root"])
    run_id = run_id_of(runner.wait_for("started; Ctrl-C"))
    runner.wait_for("[slow] started")
    runner.proc.send_signal(signal.SIGINT)
    rc, out, err = runner.finish()
    assert rc == 130
    assert "Canceling run" in err and "Traceback" not in err
    assert "status=Canceled" in out
    assert "status=Canceled" in cli("show", run_id, cwd=ws["root"]).stdout


def test_failing_pipeline_exits_1_with_the_error(ws):
    r = cli("run", "boom.json", cwd=ws["root"])
    assert r.returncode == 1
    assert "==> boom: Failed" in r.stdout and "status=Failed" in r.stdout
    assert "exited with code 1: boom: bad input data" in r.stdout


@pytest.mark.parametrize("args, expected", [
    (["run", "pipe.yaml", "--param", "oops"], "--param 'oops' is not of the form NAME=VALUE"),
    (["run", "missing.yaml"], "'missing.yaml' does not exist"),
    (["run", "bad.yaml"], "must be a mapping with a 'steps' list"),
    (["run", "bad.yaml", "--detach"], "must be a mapping with a 'steps' list"),
    (["show", "run_nope"], "No run with id 'run_nope'"),
    (["logs", "run_nope"], "No run with id 'run_nope'"),
    (["cancel", "run_nope"], "No run with id 'run_nope'"),
])
def test_user_errors_are_one_line_and_exit_2(ws, args, expected):
    r = cli(*args, cwd=ws["root"])
    assert r.returncode == 2
    assert r.stderr.startswith("mlpipe: error:") and expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_pipeline_lists_its_problems_and_runs_nothing(ws):
    r = cli("run", "pipe.yaml", "--param", "zz=1", cwd=ws["root"])
    assert r.returncode == 2 and r.stderr.startswith("mlpipe: error: The pipeline is not valid")
    assert "Parameter 'zz' was given at submit" in r.stderr and "Traceback" not in r.stderr
    listed = cli("runs", "-e", "pipe", cwd=ws["root"]).stdout.strip().splitlines()
    assert len(listed) == 1 + 3  # header and the fixture's three runs: the invalid one left no run behind


def test_no_workspace_is_a_one_line_error(tmp_path):
    r = cli("runs", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("mlpipe: error: No workspace found") and "mlpipe init" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def loaded_by_command(root, argv: list, modules: tuple) -> tuple[int, str]:
    """The exit code of an mlpipe command run in a fresh interpreter, and which of ``modules`` it imported
    (as the text of a list)."""
    code = (f"import sys; from mlpipe_jupyter.cli import main; code = main({argv!r}); "
            f"print(code, [m for m in {modules!r} if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    code, _, loaded = r.stdout.strip().splitlines()[-1].partition(" ")
    return int(code), loaded


def test_runs_does_not_load_the_runner_yaml_or_fsspec(ws):
    assert loaded_by_command(ws["root"], ["runs"], ("yaml", "fsspec", "mlpipe_jupyter.running.runner")) == (0, "[]")


def test_run_of_a_pipeline_file_does_not_load_ipython_or_widgets(ws):
    """`mlpipe run` starts in a terminal: the notebook's parsers it shares with the magics stay light."""
    assert loaded_by_command(ws["root"], ["run", "pipe.yaml"], ("IPython", "ipywidgets", "ipykernel")) == (0, "[]")
