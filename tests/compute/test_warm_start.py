"""Warm starts (MLPIPE_WARM_START=1): a local step forked from a helper that preloaded its imports must
be indistinguishable from the same step started cold, and a helper that cannot be trusted is not used."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from helpers import WAIT_SECONDS, kill_hard, pids_with, runner_process, wait_until, working_in
from mlpipe_jupyter import (Environment, Experiment, Pipeline, PythonScriptStep, Run, RunConfiguration,
                            ScriptRunConfig, Workspace)
from mlpipe_jupyter.compute import local, warm
from mlpipe_jupyter.notebook.monitor import RunMonitor

PROBE = """
    import atexit, json, os, random, signal, sys, threading
    import numpy
    atexit.register(lambda: print("atexit ran", flush=True))
    wd = os.getcwd()
    seen = {
        "argv": sys.argv, "cwd_is_wd": os.path.basename(wd) == "wd", "name": __name__,
        "file": __file__.replace(wd, "<wd>"), "path": [p.replace(wd, "<wd>") for p in sys.path],
        "env": sorted(k for k in os.environ if not k.startswith(("MLPIPE_RUN", "AZUREML_RUN", "MLPIPE_ROOT"))),
        "stdin": sys.stdin.read(), "signals": {s.name: str(signal.getsignal(s)) for s in
                                                (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD)},
        "threads": threading.active_count(), "pid": os.getpid(), "orig_argv": sys.orig_argv,
        "modules_main": sys.modules["__main__"].__file__ == __file__,
        "random": random.random(), "numpy": float(numpy.random.rand()),
    }
    print("PROBE " + json.dumps(seen), flush=True)
"""

FAILS = """
    import sys
    def inner():
        raise ValueError("bad value " + sys.argv[1])
    inner()
"""


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", {"probe.py": PROBE, "fails.py": FAILS,
                                            "exits.py": "import sys\nprint('bye')\nsys.exit(int(sys.argv[1]))\n",
                                            "killed.py": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
                                            "interrupted.py": "raise KeyboardInterrupt\n",
                                            "sleepy.py": "import sys, time\nprint('up', flush=True)\n"
                                                         "time.sleep(600)\n"})


@pytest.fixture
def warm_on(monkeypatch):
    monkeypatch.setenv(warm.SETTING, "1")
    yield
    warm.POOL.stop_all()


def run_step(ws, src, script, *args, runconfig=None, **kwargs):
    step = PythonScriptStep(script, arguments=list(args), source_directory=str(src), allow_reuse=False,
                            runconfig=runconfig, **kwargs)
    run = Experiment(ws, "warm").submit(Pipeline(ws, [step]))
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    return run.get_steps()[0]


def probe(step) -> dict:
    line = next(ln for ln in step.get_log_text().splitlines() if ln.startswith("PROBE "))
    return json.loads(line[len("PROBE "):])


def both(ws, src, monkeypatch, script, *args):
    """The same step cold, then warm (twice, so the second surely ran in a ready helper)."""
    monkeypatch.setenv(warm.SETTING, "0")
    cold = run_step(ws, src, script, *args)
    monkeypatch.setenv(warm.SETTING, "1")
    run_step(ws, src, script, *args)
    hot = run_step(ws, src, script, *args)
    assert hot.get_details()["start"]["warm"] is True, hot.get_details()["start"]
    assert "start" not in cold.get_details()  # warm starts off: nothing to say
    return cold, hot


def test_a_warm_step_sees_what_a_cold_one_sees(workspace, src, monkeypatch, warm_on):
    cold, hot = both(workspace, src, monkeypatch, "probe.py", "--lr", "0.1")
    seen_cold, seen_hot = probe(cold), probe(hot)
    for key in ("random", "numpy"):
        seen_cold.pop(key), seen_hot.pop(key)
    assert (set(seen_hot["env"]) - set(seen_cold["env"]), set(seen_cold["env"]) - set(seen_hot["env"])) == (set(), set())
    assert seen_hot == seen_cold
    assert seen_hot["argv"] == ["probe.py", "--lr", "0.1"] and seen_hot["name"] == "__main__"
    assert seen_hot["stdin"] == "" and seen_hot["threads"] == 1
    assert "atexit ran" in hot.get_log_text() and "atexit ran" in cold.get_log_text()
    assert hot.get_details()["start"]["seconds"] < 1


def test_a_warm_step_reads_pythonpath_as_a_cold_interpreter_does(workspace, src, monkeypatch, warm_on):
    """Python makes each entry absolute and drops repeats (site.removeduppaths): the package's own folder
    given again, a relative entry, an empty one, a trailing slash."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([local.PACKAGE_PARENT, "rel/dir", "", str(src) + "/"]))
    cold, hot = both(workspace, src, monkeypatch, "probe.py")
    assert probe(hot)["path"] == probe(cold)["path"]


def test_a_script_in_a_subfolder_imports_its_neighbours_warm_too(workspace, src, monkeypatch, warm_on):
    """``python sub/main.py`` puts the script's own folder first on the path, not the working folder."""
    (src / "sub").mkdir()
    (src / "sub" / "neighbour.py").write_text("WHERE = 'next to the script'\n")
    (src / "sub" / "main.py").write_text("import sys\nprint('FIRST', sys.path[0], flush=True)\n"
                                         "from neighbour import WHERE\nprint(WHERE)\n")
    first = lambda s: _normalized(next(ln for ln in s.get_log_text().splitlines() if ln.startswith("FIRST ")))  # noqa
    cold, hot = both(workspace, src, monkeypatch, "sub/main.py")
    assert hot.get_status() == "Completed" and "next to the script" in hot.get_log_text(), hot.get_log_text()
    assert first(hot) == first(cold) and first(hot).endswith("/<wd>/sub")
    monkeypatch.setenv("PYTHONSAFEPATH", "1")  # then the script's folder is not put first
    cold, hot = both(workspace, src, monkeypatch, "sub/main.py")
    assert hot.get_status() == cold.get_status() == "Failed" and first(hot) == first(cold)


def test_two_warm_steps_draw_different_random_numbers(workspace, src, warm_on):
    first, second = run_step(workspace, src, "probe.py"), run_step(workspace, src, "probe.py")
    third = run_step(workspace, src, "probe.py")
    assert second.get_details()["start"]["warm"] and third.get_details()["start"]["warm"]
    draws = [(probe(s)["random"], probe(s)["numpy"]) for s in (first, second, third)]
    assert len({d[0] for d in draws}) == 3 and len({d[1] for d in draws}) == 3


@pytest.mark.parametrize("script,args,code", [("exits.py", ["3"], 3), ("exits.py", ["0"], 0),
                                              ("killed.py", [], -signal.SIGTERM),
                                              ("interrupted.py", [], -signal.SIGINT), ("fails.py", ["x"], 1)])
def test_exit_codes_signals_and_tracebacks_are_those_of_a_cold_step(workspace, src, monkeypatch, warm_on,
                                                                    script, args, code):
    cold, hot = both(workspace, src, monkeypatch, script, *args)
    assert hot.get_status() == cold.get_status()
    assert hot.get_details().get("error") == cold.get_details().get("error") or \
        hot.get_details()["error"]["message"] == cold.get_details()["error"]["message"]
    strip = lambda s: s.get_log_text().replace(s.get_details()["runId"], "<id>")  # noqa: E731
    assert _normalized(strip(hot)) == _normalized(strip(cold))
    if script == "fails.py":
        assert 'line 3, in inner' in hot.get_log_text() and "forkserver" not in hot.get_log_text()
        assert hot.get_details()["traceback"] if "traceback" in hot.get_details() else True


def _normalized(log: str) -> str:
    import re

    return re.sub(r"step-[^/]+/wd", "<wd>", log)


def test_nothing_a_warm_step_started_outlives_it(workspace, src, tmp_path, warm_on):
    marker = str(tmp_path / "warm-daemon-marker")
    (src / "daemon.py").write_text(
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "time.sleep(600)', sys.argv[1]], start_new_session=True)\nprint('left a daemon', flush=True)\n")
    run_step(workspace, src, "exits.py", "0")
    step = run_step(workspace, src, "daemon.py", marker)
    assert step.get_status() == "Completed" and step.get_details()["start"]["warm"]
    wait_until(lambda: not pids_with(marker), "the daemon to end with the step", timeout=15)


def test_a_step_that_asks_to_start_cold_does(workspace, src, warm_on):
    config = RunConfiguration()
    config.environment_variables = {warm.SETTING: "0"}  # the step's own setting
    run_step(workspace, src, "probe.py")
    step = run_step(workspace, src, "probe.py", runconfig=config)
    assert step.get_details()["start"] == {"warm": False, "why_cold": f"the step asks to start cold "
                                                                      f"({warm.SETTING}=0 in its variables)"}


def marked_config(marker: str, **settings) -> RunConfiguration:
    """A step carrying ``marker`` in its variables: its warm helper starts with them, so the step's
    processes, forked from it, are found by them (``marked``); their command line is the helper's."""
    config = RunConfiguration()
    config.environment_variables = {"WARM_STEP_MARKER": marker}
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def start_marked_sleeper(ws, src, marker: str):
    """A warm sleepy step, once it runs: (the run, its helper's processes). The helper is made ready
    first; what carries the marker beyond its processes then is the step's."""
    run_step(ws, src, "exits.py", "0", runconfig=marked_config(marker))
    helper = marked(marker)
    run = Experiment(ws, "warm").submit(Pipeline(ws, [PythonScriptStep(
        "sleepy.py", source_directory=str(src), allow_reuse=False, runconfig=marked_config(marker))]))
    wait_until(lambda: run.get_steps() and "up" in run.get_steps()[0].get_log_text(), "the step to run")
    assert run.get_steps()[0].get_details()["start"]["warm"]
    assert helper and marked(marker) - helper, "the step's processes are not where the test looks for them"
    return run, helper


def test_cancel_and_time_limit_stop_a_warm_step(workspace, src, tmp_path, warm_on):
    marker = f"warm-cancel-{tmp_path.name}"
    run, helper = start_marked_sleeper(workspace, src, marker)
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Canceled"
    wait_until(lambda: marked(marker) == helper, "the step's processes to go", timeout=15)

    limited = run_step(workspace, src, "sleepy.py", runconfig=marked_config(marker, max_run_duration_seconds=1))
    assert limited.get_status() == "Canceled" and "time limit" in limited.get_details()["error"]["message"]
    assert limited.get_details()["start"]["warm"]
    wait_until(lambda: marked(marker) == helper, "the step's processes to go", timeout=15)


def test_a_helper_killed_mid_step_fails_the_step_clearly_and_is_replaced(workspace, src, tmp_path, warm_on):
    marker = f"warm-helper-{tmp_path.name}"
    run, _ = start_marked_sleeper(workspace, src, marker)
    (helper,) = [h for h in warm.POOL._helpers.values() if h.proc.pid in marked(marker)]
    os.killpg(helper.proc.pid, signal.SIGKILL)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert run.get_status() == "Failed"
    assert "warm-start helper running this step died" in run.get_steps()[0].get_details()["error"]["message"]
    wait_until(lambda: not marked(marker), "the step's processes to go with their helper", timeout=15)
    again = run_step(workspace, src, "exits.py", "0", runconfig=marked_config(marker))
    assert again.get_status() == "Completed" and again.get_details()["start"]["warm"]


def make_venv_with(tmp_path: Path, name: str, source: str, version: str) -> Path:
    """A virtualenv over this interpreter's packages with one package of our own, and its metadata."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    install(site, name, source, version)
    return venv / "bin" / "python"


def install(site: Path, name: str, source: str, version: str) -> None:
    for old in site.glob(f"{name}-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    (site / name).mkdir(exist_ok=True)
    (site / name / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(name + "\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n")


def env_with(python: Path) -> RunConfiguration:
    env = Environment("venv")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = str(python)
    config = RunConfiguration()
    config.environment = env
    return config


def test_a_preloaded_package_upgraded_between_runs_is_imported_afresh(workspace, src, tmp_path, warm_on):
    python = make_venv_with(tmp_path, "fakepkg", "VERSION = '1'\n", "1.0")
    (src / "uses.py").write_text("import fakepkg\nprint('fakepkg', fakepkg.VERSION)\n")
    config = env_with(python)
    run_step(workspace, src, "uses.py", runconfig=config)
    first = run_step(workspace, src, "uses.py", runconfig=config)
    assert first.get_details()["start"]["warm"] and "fakepkg 1" in first.get_log_text()
    install(next(python.parent.parent.glob("lib/python*/site-packages")), "fakepkg", "VERSION = '2'\n", "2.0")
    upgraded = run_step(workspace, src, "uses.py", runconfig=config)
    assert "fakepkg 2" in upgraded.get_log_text()


# Stand-ins with the seeding calls of torch, tensorflow and cupy: each holds a generator seeded at import,
# which a child forked from the helper would repeat unless reseeded.
FAKE_GENERATORS = {
    "torch": """
        import os, random as _random
        _gen = _random.Random(os.urandom(16))
        manual_seed = _gen.seed
        rand = _gen.random
    """,
    "tensorflow": """
        import os, random as _random, types
        _gen = _random.Random(os.urandom(16))
        random = types.SimpleNamespace(set_seed=_gen.seed, uniform=_gen.random)
    """,
    "cupy": "from cupy import random\n",
    "usesnumpy": "import numpy.random  # as pandas and scikit-learn do: its global generator made at import\n",
    "hooked": """
        import os, random
        own = random.Random()
        os.register_at_fork(after_in_child=own.seed)  # a package's own reseeding runs in a forked step
    """,
}
FAKE_CUPY_RANDOM = """
import os, random as _random
_states = {}
def reset_states():
    _states.clear()
def rand():
    if 0 not in _states:
        _states[0] = _random.Random(os.environ.get("CUPY_SEED") or os.urandom(16))
    return _states[0].random()
rand()  # its state made at import
"""


def test_generators_of_preloaded_modules_do_not_repeat_across_warm_steps(workspace, src, tmp_path, warm_on):
    python = make_venv_with(tmp_path, "hooked", FAKE_GENERATORS["hooked"], "1.0")
    site = next(python.parent.parent.glob("lib/python*/site-packages"))
    for name in ("torch", "tensorflow", "cupy", "usesnumpy"):
        install(site, name, FAKE_GENERATORS[name], "1.0")
    (site / "cupy" / "random.py").write_text(FAKE_CUPY_RANDOM)
    (src / "draws.py").write_text(
        "import json, cupy, hooked, numpy, tensorflow, torch, usesnumpy\n"
        "print('DRAWS ' + json.dumps([torch.rand(), tensorflow.random.uniform(), cupy.random.rand(), "
        "hooked.own.random(), float(numpy.random.rand())]))\n")
    steps = [run_step(workspace, src, "draws.py", runconfig=env_with(python)) for _ in range(3)]
    assert all(s.get_details()["start"]["warm"] for s in steps[1:]), [s.get_details()["start"] for s in steps]
    draws = [json.loads(next(ln for ln in s.get_log_text().splitlines() if ln.startswith("DRAWS "))[6:])
             for s in steps]
    for name, values in zip(["torch", "tensorflow", "cupy", "hooked", "numpy"], zip(*draws)):
        assert len(set(values)) == 3, (name, values)


def test_a_step_that_fixes_its_hash_seed_gets_it_warm_too(workspace, src, warm_on):
    (src / "hashes.py").write_text("print('HASH', hash('abc'))\n")
    expected = subprocess.run([sys.executable, "-c", "print('HASH', hash('abc'))"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": "123"}, check=True).stdout.strip()
    run_step(workspace, src, "hashes.py")  # a helper with a random hash seed is ready
    config = RunConfiguration()
    config.environment_variables = {"PYTHONHASHSEED": "123"}
    seeded = [run_step(workspace, src, "hashes.py", runconfig=config) for _ in range(2)]
    for step in seeded:
        assert expected in step.get_log_text().splitlines(), (expected, step.get_log_text())
    assert seeded[1].get_details()["start"]["warm"] is True, seeded[1].get_details()["start"]


def test_what_the_interpreter_reads_from_its_variables_at_start_is_the_steps_own(workspace, src, monkeypatch,
                                                                                 warm_on):
    (src / "flags.py").write_text(
        "import sys, warnings\n"
        "print('FLAGS', sys.flags.optimize, sys.warnoptions, __debug__, sys.get_int_max_str_digits())\n")
    config = RunConfiguration()
    config.environment_variables = {"PYTHONOPTIMIZE": "1", "PYTHONWARNINGS": "error::DeprecationWarning",
                                    "PYTHONINTMAXSTRDIGITS": "640"}
    run_step(workspace, src, "flags.py")  # a helper without them is ready
    cold, hot = both(workspace, src, monkeypatch, "flags.py")
    assert hot.get_log_text() == cold.get_log_text()
    monkeypatch.setenv(warm.SETTING, "0")
    cold = run_step(workspace, src, "flags.py", runconfig=config)
    monkeypatch.setenv(warm.SETTING, "1")
    hot = [run_step(workspace, src, "flags.py", runconfig=config) for _ in range(2)][1]
    assert hot.get_details()["start"]["warm"] is True, hot.get_details()["start"]
    assert "FLAGS 1 ['error::DeprecationWarning'] False 640" in cold.get_log_text(), cold.get_log_text()
    assert hot.get_log_text() == cold.get_log_text()


def test_a_preloaded_module_reads_the_steps_variables_at_import(workspace, src, tmp_path, monkeypatch, warm_on):
    """As numpy's BLAS reads OMP_NUM_THREADS when imported: the value a step (or the process, changed
    meanwhile) gives is the one the module saw."""
    python = make_venv_with(tmp_path, "readsenv", "import os\nTHREADS = os.environ.get('FAKE_THREADS', 'unset')\n",
                            "1.0")
    (src / "threads.py").write_text("import readsenv\nprint('THREADS', readsenv.THREADS)\n")
    plain, variables = env_with(python), env_with(python)
    variables.environment_variables = {"FAKE_THREADS": "1"}
    steps = [run_step(workspace, src, "threads.py", runconfig=c) for c in (plain, plain, variables, variables)]
    monkeypatch.setenv("FAKE_THREADS", "2")  # as a notebook's os.environ["FAKE_THREADS"] = "2"
    steps += [run_step(workspace, src, "threads.py", runconfig=plain) for _ in range(2)]
    seen = [next(ln for ln in s.get_log_text().splitlines() if ln.startswith("THREADS")) for s in steps]
    assert seen == ["THREADS unset"] * 2 + ["THREADS 1"] * 2 + ["THREADS 2"] * 2
    assert [s.get_details()["start"]["warm"] for s in steps[1::2]] == [True] * 3


def test_a_preloaded_module_that_starts_a_thread_makes_its_steps_start_cold(workspace, src, tmp_path, warm_on):
    python = make_venv_with(tmp_path, "threaded", """
        import threading, time
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    """, "1.0")
    (src / "uses_thread.py").write_text("import threaded, threading\nprint('threads', threading.active_count())\n")
    step = run_step(workspace, src, "uses_thread.py", runconfig=env_with(python))
    again = run_step(workspace, src, "uses_thread.py", runconfig=env_with(python))
    for s in (step, again):
        assert s.get_status() == "Completed" and "threads 2" in s.get_log_text()
        assert s.get_details()["start"]["warm"] is False and "thread" in s.get_details()["start"]["why_cold"]


RUNNER = """
import sys
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
ws = Workspace(sys.argv[1])
step = lambda *args: PythonScriptStep("sleepy.py", arguments=list(args), source_directory=sys.argv[2],
                                      allow_reuse=False)
run = Experiment(ws, "warm").submit(Pipeline(ws, [step(sys.argv[3])]))
print(run.id, flush=True)
run.wait_for_completion(timeout_seconds=600)
"""


def marked(marker: str) -> set[int]:
    """Processes whose variables carry ``marker``: the runner, its helper and the warm step's processes."""
    return set(pids_with(marker, where="environ"))


def test_a_runner_killed_with_sigkill_leaves_no_warm_step_or_helper(workspace, src, tmp_path):
    marker = str(tmp_path / "warm-orphan-marker")
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {**os.environ, warm.SETTING: "1", "WARM_TEST_RUNNER": marker}  # its helper inherits this one
    with runner_process([sys.executable, str(tmp_path / "runner.py"), str(workspace.path), str(src), marker],
                        env=env) as runner:
        run_id = runner.stdout.readline().strip()
        wait_until(lambda: working_in(marked(marker), workspace.path), "the warm step to run")
        step = wait_until(lambda: Run.get(Workspace(workspace.path), run_id).get_steps(), "the step's run")[0]
        start = wait_until(lambda: Run.get(Workspace(workspace.path), step.id).get_details().get("start"),
                           "the step's start to be recorded")
        assert start["warm"], start
        assert marked(marker) - working_in(marked(marker), workspace.path) - {runner.pid}  # its helper
        kill_hard(runner)
    wait_until(lambda: not marked(marker), "the step and its helper to die with their runner", timeout=15)
    assert not marked(marker)
    run = Run.get(Workspace(workspace.path), run_id)
    assert run.get_status() == "Failed"
    assert run.get_steps()[0].get_details()["start"]["warm"]


def test_the_monitor_says_a_step_started_warm(workspace, src, warm_on):
    run_step(workspace, src, "exits.py", "0")  # the helper is ready
    run = Experiment(workspace, "warm").submit(Pipeline(workspace, [PythonScriptStep(
        "exits.py", name="quick", arguments=["0"], source_directory=str(src), allow_reuse=False)]))
    monitor = RunMonitor(run)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    wait_until(lambda: "started warm in" in monitor.rows["quick"].note.value, "the monitor to say it started warm")
    stored = RunMonitor(run)  # opened after the end: from the stored rows
    for note in (monitor.rows["quick"].note.value, stored.rows["quick"].note.value):
        assert "Rerun" in note and " · started warm in" in note, note  # beside the planner's reason


def test_asking_to_start_cold_does_not_change_the_reuse_key(workspace, src, warm_on):
    def build(variables):
        config = RunConfiguration()
        config.environment_variables = variables
        return PythonScriptStep("exits.py", name="same", arguments=["0"], source_directory=str(src),
                                runconfig=config)

    first = Experiment(workspace, "warm").submit(Pipeline(workspace, [build({})]))
    first.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    again = Experiment(workspace, "warm").submit(Pipeline(workspace, [build({warm.SETTING: "0"})]))
    again.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    assert again.get_steps()[0].reused


def test_a_script_run_config_starts_warm_and_an_idle_helper_goes_away(workspace, src, monkeypatch, warm_on):
    monkeypatch.setattr(warm, "REAP_SECONDS", 0.2)
    for _ in range(2):
        run = Experiment(workspace, "warm").submit(ScriptRunConfig(str(src), "exits.py", arguments=["0"]))
        run.wait_for_completion(timeout_seconds=WAIT_SECONDS)
    assert run.get_details()["start"]["warm"]
    helper = next(iter(warm.POOL._helpers.values()))
    monkeypatch.setattr(warm, "IDLE_SECONDS", 0.5)
    wait_until(lambda: helper.proc.poll() is not None, "the idle helper to go away", timeout=60)  # a reaper
    # started by an earlier test may be in its last sleep of the old length
    wait_until(lambda: helper not in warm.POOL._helpers.values(), "the pool to drop it")  # (another test's
    # step may have started a new helper meanwhile: the pool need not be empty)


def test_a_helper_replaced_while_a_step_runs_in_it_lets_that_step_finish(workspace, src, tmp_path, warm_on):
    plain_src = tmp_path / "plain"  # a snapshot that imports nothing: its helper preloads nothing
    plain_src.mkdir()
    (plain_src / "plain.py").write_text("import time\nprint('plain started', flush=True)\ntime.sleep(2)\n"
                                        "print('plain done')\n")
    run_step(workspace, plain_src, "plain.py")
    plain = Experiment(workspace, "warm").submit(Pipeline(workspace, [PythonScriptStep(
        "plain.py", name="plain", source_directory=str(plain_src), allow_reuse=False)]))
    wait_until(lambda: plain.get_steps() and "plain started" in plain.get_steps()[0].get_log_text(),
               "the plain step to run in the helper")
    numeric = run_step(workspace, src, "probe.py")  # needs numpy: the helper is replaced meanwhile
    assert "not preloaded" in numeric.get_details()["start"]["why_cold"]
    plain.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    assert numeric.get_status() == "Completed"
    assert plain.get_status() == "Completed" and "plain done" in plain.get_steps()[0].get_log_text()
    assert plain.get_steps()[0].get_details()["start"]["warm"]


def test_the_imports_a_helper_preloads_are_read_from_every_level_of_a_file():
    source = textwrap.dedent("""
        from __future__ import annotations
        import os, numpy.linalg as la
        from pandas.core import frame
        from . import sibling
        from .near import name
        import a.b.c
        def f():
            import sklearn
            class K:
                def g(self):
                    from scipy import stats
        try:
            import torch
        except ImportError:
            pass
    """).encode()
    assert warm.file_imports(source) == {"__future__", "os", "numpy", "pandas", "a", "sklearn", "scipy", "torch"}
    assert warm.file_imports(b"def broken(:\n") == frozenset()


def test_steps_with_their_own_variables_get_helpers_of_their_own_within_a_limit(workspace, src, monkeypatch, warm_on):
    monkeypatch.setattr(warm, "MAX_HELPERS", 2)

    def with_variable(value):
        config = RunConfiguration()
        config.environment_variables = {"OMP_NUM_THREADS": value}  # read by numpy's BLAS when imported
        return config

    procs = []
    for value in ("1", "2", "3"):
        for _ in range(2):
            step = run_step(workspace, src, "probe.py", runconfig=with_variable(value))
        assert step.get_details()["start"]["warm"]
        procs.append(next(h.proc for h in warm.POOL._helpers.values()
                          if f"OMP_NUM_THREADS={value}\n" in helper_environ(h)))
    assert len(warm.POOL._helpers) == 2
    wait_until(lambda: procs[0].poll() is not None, "the least recently used helper to go")
    assert procs[1].poll() is None and procs[2].poll() is None


def helper_environ(helper) -> str:
    return Path(f"/proc/{helper.proc.pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")


def test_a_step_its_helper_could_not_fork_fails_with_the_helper_s_reason(tmp_path):
    """The helper takes a step before it forks it; where the fork then fails (no memory for another
    process), it says so, and the step fails with that reason. A stand-in helper answers as one would."""
    path = str(tmp_path / "socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
        for fd in fds:
            os.close(fd)
        conn.sendall(b'{"accepted": true}\n{"error": "The warm-start helper could not fork the step (no memory)."}\n')
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    helper = types.SimpleNamespace(socket_path=path, lock=threading.Lock(), active=0, retired=False,
                                   last_used=0.0, stop=lambda: None)
    handle = warm.WarmHandle(helper, ["step.py"], str(tmp_path), {}, [])
    assert b"".join(handle.chunks()) == b""
    assert handle.wait() == 1 and handle.error == "The warm-start helper could not fork the step (no memory)."
    assert helper.active == 0
    listener.close()
