"""Hostile input that once locked the workspace, flooded memory or poisoned the cache: a YAML alias bomb,
a 64 MiB line without a newline, a step writing into its input, a committed output changed behind the
store's back. Each is refused or noticed before anything is reused, with a message naming it."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from helpers import WAIT_SECONDS, run_pipeline, steps_by_name
from mlpipe_jupyter import PipelineData, PythonScriptStep
from mlpipe_jupyter.running.events import bus
from mlpipe_jupyter.running.step_output import MAX_EVENT_LINE

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
CLI = [sys.executable, "-m", "mlpipe_jupyter.cli"]


def cli(*args, cwd, timeout=WAIT_SECONDS):
    return subprocess.run([*CLI, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def alias_bomb(src: Path) -> str:
    """Nine levels of ten aliases: 10^9 strings once expanded, a few hundred bytes as written."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join(f"*a{i - 1}" for _ in range(10)) + "]")
    lines += ["version: 1", "description: *a9", "steps:",
              f"  - {{name: s, script: s.py, source_directory: {src}, position: {{x: *a9, y: 0}}}}"]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_anything_is_stored(workspace, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "s.py").write_text("print('never runs')\n")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(src))
    listed = []

    def list_runs_meanwhile():  # another process reading the history is never locked out
        listed.append(cli("runs", cwd=workspace.path, timeout=30))

    reader = threading.Thread(target=list_runs_meanwhile)
    reader.start()
    r = cli("run", str(bomb), cwd=workspace.path)  # expanded it took minutes and gigabytes
    reader.join()
    assert r.returncode == 2
    assert "alias" in r.stderr and "bomb.yaml" in r.stderr and "Traceback" not in r.stderr
    assert listed[0].returncode == 0, listed[0].stderr
    assert workspace._store.list_runs() == []


LONG_LINE = """
import sys
chunk = b"x" * (1 << 20)
for _ in range(64):
    sys.stdout.buffer.write(chunk)   # 64 MiB and not one newline
sys.stdout.buffer.flush()
"""


def test_a_64_mib_line_is_logged_whole_and_cut_in_events(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {"long.py": LONG_LINE})
    seen = []
    unsubscribe = bus.subscribe(lambda e: seen.append(len(e.data["line"])) if e.kind == "log" else None)
    try:
        run = run_pipeline(workspace, [PythonScriptStep("long.py", name="long", source_directory=str(src))])
    finally:
        unsubscribe()
    assert run.get_status() == "Completed", run.get_details().get("error")
    step = steps_by_name(run)["long"]
    log = workspace._store.run_dir(step.id) / "logs" / "std_log.txt"
    assert log.stat().st_size == 64 << 20  # every byte the step printed
    assert seen and max(seen) < MAX_EVENT_LINE + 200  # the event carries the line cut, with a note


WRITES_INPUT = """
import os, stat, sys
target = os.path.join(sys.argv[1], "data.txt")
os.chmod(target, stat.S_IMODE(os.stat(target).st_mode) | 0o200)  # read-only bits do not stop its owner
with open(target, "a") as f:
    f.write("tampered\\n")
print("wrote into my input")
"""


def chain(src):
    data = PipelineData("data")
    make = PythonScriptStep("make.py", name="make", source_directory=str(src), outputs=[data], arguments=[data])
    use = PythonScriptStep("use.py", name="use", source_directory=str(src), inputs=[data], arguments=[data])
    return [make, use]


def test_a_step_writing_into_its_input_fails_and_the_output_is_not_reused(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {
        "make.py": "import os, sys\nopen(os.path.join(sys.argv[1], 'data.txt'), 'w').write('original\\n')\n",
        "use.py": WRITES_INPUT})
    run = run_pipeline(workspace, chain(src))
    steps = steps_by_name(run)
    assert steps["make"].get_status() == "Completed"
    assert steps["use"].get_status() == "Failed"
    error = steps["use"].get_details()["error"]["message"]
    assert "changed its input 'data'" in error and "'make'" in error and "data.txt" in error

    (src / "use.py").write_text("import os, sys\nprint(open(os.path.join(sys.argv[1], 'data.txt')).read())\n")
    again = run_pipeline(workspace, chain(src))
    steps = steps_by_name(again)
    assert again.get_status() == "Completed", again.get_details().get("error")
    assert not steps["make"].reused  # its committed output was taken out of use
    assert "tampered" not in steps["use"].get_log_text() and "original" in steps["use"].get_log_text()


def test_a_committed_output_changed_behind_the_stores_back_is_not_reused(workspace, write_scripts, tmp_path):
    src = write_scripts(tmp_path / "src", {
        "make.py": "import os, sys\nopen(os.path.join(sys.argv[1], 'data.txt'), 'w').write('original\\n')\n",
        "use.py": "import os, sys\nprint(open(os.path.join(sys.argv[1], 'data.txt')).read())\n"})
    first = run_pipeline(workspace, chain(src))
    committed = steps_by_name(first)["make"].get_output_data("data").path / "data.txt"
    committed.chmod(0o644)  # as root could, without even that
    committed.write_text("changed by hand\n")
    again = run_pipeline(workspace, chain(src))
    steps = steps_by_name(again)
    assert not steps["make"].reused
    assert "changed after they were committed" in steps["make"].get_details()["reuse_reason"]
    assert "original" in steps["use"].get_log_text()
