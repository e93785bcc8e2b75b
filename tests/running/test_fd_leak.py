"""A long-lived process (a notebook kernel) runs pipeline after pipeline: it must not gain an open file
descriptor per run, or a day of iterating exhausts its limit."""
import gc
import os

import pytest

from helpers import run_pipeline
from mlpipe_jupyter import Experiment, PipelineData, PythonScriptStep, ScriptRunConfig

RUNS = 20
SLACK = 3  # connections of threads still alive, a helper's socket: a constant, not one per run

SCRIPTS = {
    "produce.py": """
        import os, sys
        from mlpipe_jupyter import Run
        open(os.path.join(sys.argv[2], "x.txt"), "w").write("1")
        Run.get_context().log("m", 1)
    """,
    "consume.py": """
        import os, sys
        print(open(os.path.join(sys.argv[2], "x.txt")).read())
    """,
}


def open_fds() -> dict:
    gc.collect()  # what only the collector would release counts too: it may never run in time
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return fds


def two_steps(src):
    link = PipelineData("link")
    produce = PythonScriptStep("produce.py", name="produce", source_directory=str(src), outputs=[link],
                               arguments=["--out", link], allow_reuse=False)
    consume = PythonScriptStep("consume.py", name="consume", source_directory=str(src), inputs=[link],
                               arguments=["--in", link], allow_reuse=False)
    return [produce, consume]


@pytest.mark.parametrize("warm", ["1", "0"])
@pytest.mark.parametrize("kind", ["pipeline", "script"])
def test_repeated_runs_keep_no_file_descriptors(workspace, tmp_path, write_scripts, monkeypatch, warm, kind):
    monkeypatch.setenv("MLPIPE_WARM_START", warm)
    src = write_scripts(tmp_path / "src", SCRIPTS)
    out = tmp_path / "out"
    out.mkdir()

    def run_once():
        if kind == "pipeline":
            run = run_pipeline(workspace, two_steps(src))
        else:
            config = ScriptRunConfig(source_directory=str(src), script="produce.py", arguments=["--out", str(out)])
            run = Experiment(workspace, "fd").submit(config)
            run.wait_for_completion(show_output=True, raise_on_error=False)
        assert run.get_status() == "Completed", run.get_details().get("error")

    run_once()  # warm-up: helpers, the main thread's connection, imports
    before = open_fds()
    for _ in range(RUNS):
        run_once()
    after = open_fds()

    gained = sorted(target for fd, target in after.items() if before.get(fd) != target)
    assert len(after) - len(before) <= SLACK, f"{RUNS} runs left {len(after) - len(before)} more open: {gained}"
